"""A real browser for tests: Debian's headless Chromium, driven over the DevTools protocol.

Started and stopped by PID by the test itself, with a throw-away profile; nothing leaves loopback.
"""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "chromium")


def person_user_agent():
    """What this Chromium sends when a person runs it (not "HeadlessChrome")."""
    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    major = next((w.split(".")[0] for w in out.split() if w[:1].isdigit()), "126")
    return f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"


class Chromium:
    """`automation=False` (the default): a person's browser, as far as the page can tell (no
    `navigator.webdriver`, no "Headless" in the user agent). `automation=True`: headless Chromium
    as Puppeteer and Playwright launch it, which botgate's beacon reports."""

    def __init__(self, user_agent=None, lang="en-GB", args=(), automation=False):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-chromium-"))
        if not automation:
            args = ["--disable-blink-features=AutomationControlled", *args]
            user_agent = user_agent or person_user_agent()
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--mute-audio",
                f"--lang={lang}", f"--user-data-dir={self.dir}", "--remote-debugging-port=0",
                "--window-size=1024,768", *args, "about:blank"]
        if user_agent:
            args.insert(1, f"--user-agent={user_agent}")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self._id = 0
        try:
            self.ws = websocket.create_connection(self._page_socket(), timeout=60, suppress_origin=True)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except Exception:
            self.close()
            raise

    def _page_socket(self, timeout=30.0):
        port_file = self.dir / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("chromium has no page target")

    def call(self, method, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.on_event(msg)

    def on_event(self, msg):
        """A DevTools event read past while waiting for an answer (dropped; see subclasses)."""

    def extra_headers(self, headers):
        """Sent with every request from now on (e.g. an `x-forwarded-for` naming a client)."""
        self.call("Network.enable")
        self.call("Network.setExtraHTTPHeaders", headers=headers)

    def navigate(self, url):
        self.call("Page.navigate", url=url)

    def eval(self, expression, user_gesture=False):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, userGesture=user_gesture)
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=60.0):
        """Polls `expression` until it is truthy; returns its value (None on timeout)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = self.eval(expression)
                if value:
                    return value
            except RuntimeError:
                pass  # a navigation replaced the context mid-call
            time.sleep(0.1)
        return None

    def virtual_passkey(self, rp_id, credential_id, pkcs8_private_key):
        """A platform authenticator holding one credential (Chromium's WebAuthn testing API)."""
        self.call("WebAuthn.enable")
        auth = self.call("WebAuthn.addVirtualAuthenticator", options={
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True})
        self.call("WebAuthn.addCredential", authenticatorId=auth["authenticatorId"], credential={
            "credentialId": base64.b64encode(credential_id).decode(), "isResidentCredential": False,
            "rpId": rp_id, "privateKey": base64.b64encode(pkcs8_private_key).decode(), "signCount": 0})

    def set_cookie(self, url, name, value):
        self.call("Network.enable")
        self.call("Network.setCookie", url=url, name=name, value=value)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        pathlib.Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        if self.ws:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
