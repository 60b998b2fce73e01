#!/usr/bin/env python3
"""A site backend that does WebAuthn step-up for botgate, as a real one would.

    python3 integration/webauthn_backend.py PORT ORIGIN CREDENTIAL_ID_B64URL PUBLIC_KEY_PEM_FILE

POST /auth/webauthn/options   assertion options: a fresh challenge, rpId from ORIGIN, the credential
POST /auth/webauthn/verify    checks the assertion (type, challenge, origin, rpId hash, user
                              presence, ES256 signature over authenticatorData || SHA-256(clientData))
                              and, if it holds, mints botgate's clearance token from the
                              x-botgate-session / x-botgate-binding headers botgate added, as the
                              README shows, and sets it as the botgate_clearance cookie.
anything else                 a small HTML page (the protected content).

The clearance key comes from BOTGATE_CLEARANCE_KEY, as botgate's does.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PORT, ORIGIN, CRED_ID = int(sys.argv[1]), sys.argv[2], sys.argv[3]
PUBLIC_KEY = serialization.load_pem_public_key(open(sys.argv[4], "rb").read())
RP_ID = urllib.parse.urlsplit(ORIGIN).hostname
KEY = os.environ["BOTGATE_CLEARANCE_KEY"].encode()
CHALLENGES = set()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(sid, bnd):
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "current"}).encode())
    body = b64(json.dumps({"iat": now, "exp": now + 1800, "scope": "session", "amr": "webauthn",
                           "sid": sid, "bnd": bnd}).encode())
    sig = b64(hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def verify(assertion):
    r = assertion["response"]
    client_data_raw = unb64(r["clientDataJSON"])
    client = json.loads(client_data_raw)
    if client.get("type") != "webauthn.get" or client.get("origin") != ORIGIN:
        return "wrong type or origin"
    if client.get("challenge") not in CHALLENGES:
        return "unknown challenge"
    CHALLENGES.discard(client["challenge"])
    auth = unb64(r["authenticatorData"])
    if auth[:32] != hashlib.sha256(RP_ID.encode()).digest() or not auth[32] & 0x01:
        return "wrong rpId or no user presence"
    if assertion.get("id") != CRED_ID:
        return "unknown credential"
    try:
        PUBLIC_KEY.verify(unb64(r["signature"]), auth + hashlib.sha256(client_data_raw).digest(),
                          ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "bad signature"
    return None


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, ctype="application/json", extra=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/auth/webauthn/options":
            challenge = b64(secrets.token_bytes(32))
            CHALLENGES.add(challenge)
            options = {"challenge": challenge, "rpId": RP_ID, "timeout": 60000, "userVerification": "preferred",
                       "allowCredentials": [{"type": "public-key", "id": CRED_ID}]}
            return self._send(200, json.dumps({"publicKey": options}))
        if self.path == "/auth/webauthn/verify":
            problem = verify(json.loads(body or b"{}"))
            if problem:
                return self._send(401, json.dumps({"error": problem}))
            sid, bnd = self.headers.get("x-botgate-session"), self.headers.get("x-botgate-binding")
            if not sid or not bnd:
                return self._send(500, json.dumps({"error": "botgate did not name the session"}))
            cookie = f"botgate_clearance={mint(sid, bnd)}; Path=/; HttpOnly; SameSite=Lax"
            return self._send(200, json.dumps({"ok": True}), extra=[("set-cookie", cookie)])
        self.do_GET()

    def do_GET(self):
        self._send(200, f"<!doctype html><title>members</title><p id=asked>{self.path}</p>", "text/html; charset=utf-8")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", PORT), Backend).serve_forever()
