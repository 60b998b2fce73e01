"""A local vendor scoring service speaking the generic adapter's format, for the tests:
GET /score?ip=A → {"score": S, "reasons": [...]}; POST /mode with "ok", "slow", "garbage" or
"error" changes how it answers; GET /count says how many scores it was asked for.
Usage: scoring.py PORT '{"203.0.113.5": 0.99}'"""
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCORES = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
STATE = {"mode": "ok", "count": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/count":
            return self.reply(200, str(STATE["count"]).encode())
        ip = urllib.parse.parse_qs(url.query).get("ip", [""])[0]
        with LOCK:
            STATE["count"] += 1
            mode = STATE["mode"]
        if mode == "slow":
            time.sleep(1.5)
        if mode == "garbage":
            return self.reply(200, b"<html>oops</html>", "text/html")
        if mode == "error":
            return self.reply(503, b'{"error": "overloaded"}')
        score = SCORES.get(ip, 0.05)
        self.reply(200, json.dumps({"score": score, "reasons": ["known_bad"] if score > 0.5 else []}).encode())

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        with LOCK:
            STATE["mode"] = self.rfile.read(n).decode().strip()
        self.reply(200, b"ok")


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
