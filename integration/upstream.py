#!/usr/bin/env python3
"""A demo upstream: answers every request with what it received, as JSON.

    python3 integration/upstream.py PORT

Tests read the headers botgate added (`x-botgate-*`) from the echo.
"""
import gzip
import html
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2].split("?")[0] or 200)
        else:
            status = 200
        echo = {
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_bytes": len(body),
        }
        if "text/html" in (self.headers.get("accept") or ""):
            # The echo rides along for tests; a browser shows the page.
            safe = json.dumps(echo).replace("<", "\\u003c")
            out = (f"<!doctype html><html><head><title>demo upstream</title></head><body>"
                   f"<h1>Hello from the upstream</h1><p id=asked>You asked for {html.escape(self.path)}</p>"
                   f"<script type=application/json id=echo>{safe}</script></body></html>").encode()
            ctype = "text/html; charset=utf-8"
        else:
            out = json.dumps(echo).encode()
            ctype = "application/json"
        # Tests ask for the site's own headers: `?csp=` (a Content-Security-Policy), `?gz=1`
        # (the page gzip-compressed).
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        extra = [("content-security-policy", v) for v in query.get("csp", [])]
        if query.get("gz") == ["1"]:
            out = gzip.compress(out)
            extra.append(("content-encoding", "gzip"))
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
