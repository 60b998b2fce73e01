"""Challenges in a real browser (Debian's headless Chromium) through real Envoy.

The proof-of-work interstitial: the protected page loads, solves in Web Workers, lands on the
upstream page, and the next navigation is not challenged. WebAuthn step-up: a signed-in session
gets the step-up page, Chromium's virtual authenticator signs the backend's challenge, the backend
verifies it and mints the clearance token. Screenshots of both pages are kept as test artifacts
(integration/artifacts/)."""
import base64
import json
import pathlib
import secrets
import shutil

import pytest

from browser import CHROMIUM, Chromium
from harness import TEST_CLEARANCE_KEY, Envoy, Upstream, challenge_members, free_port

ARTIFACTS = pathlib.Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium is not installed (make system-deps)")


def solve_in_browser(e, browser, path):
    """Navigates to `path` on Envoy; returns (interstitial seen, landed page's echo)."""
    base = f"http://127.0.0.1:{e.port}"
    browser.navigate(base + path)
    saw_page = browser.wait_for("document.getElementById('botgate') !== null || "
                                "document.getElementById('asked') !== null", timeout=30)
    interstitial = bool(browser.eval("document.getElementById('botgate') !== null"))
    landed = browser.wait_for("document.getElementById('asked') && document.getElementById('echo').textContent",
                              timeout=120)
    assert saw_page and landed, browser.eval("document.documentElement.outerHTML")
    return interstitial, json.loads(landed)


def test_browser_solves_the_interstitial_and_is_not_asked_again(envoy_with, example_policy):
    e = envoy_with(challenge_members(example_policy))
    browser = Chromium()
    try:
        base = f"http://127.0.0.1:{e.port}"
        browser.navigate(base + "/members?tab=1")
        assert browser.wait_for("document.getElementById('progress') !== null", timeout=30), \
            browser.eval("document.documentElement.outerHTML")
        ARTIFACTS.mkdir(exist_ok=True)
        browser.screenshot(ARTIFACTS / "interstitial.png")

        landed = browser.wait_for("document.getElementById('asked') && document.getElementById('echo').textContent",
                                  timeout=120)
        assert landed, browser.eval("document.documentElement.outerHTML")
        echo = json.loads(landed)
        assert echo["path"] == "/members?tab=1", "continued to the page first asked for, with its query"
        headers = dict(echo["headers"])
        assert "cleared" in headers["x-botgate-reasons"] and headers["x-botgate-tier"] == "pass", headers
        assert "botgate_clearance=" in headers.get("cookie", ""), "the clearance cookie is sent upstream as set"

        interstitial, echo = solve_in_browser(e, browser, "/members?tab=2")
        assert not interstitial, "the next navigation is not challenged"
        assert echo["path"] == "/members?tab=2"
        assert "botgate_visitor=" in dict(echo["headers"]).get("cookie", ""), "the browser keeps its visitor cookie"

        assert e.wait_metric("botgate_challenges_total", lambda v: v >= 1, type="proof_of_work", result="passed") == 1
        assert e.metric("botgate_challenges_total", type="proof_of_work", result="issued") == 1
        solved = [x["botgate"] for x in e.access_entries(want=6)
                  if x["botgate"] and "pow_passed" in x["botgate"]["reasons"]]
        assert len(solved) == 1 and solved[0]["solve_ms"] > 0
        verify = [x for x in e.access_entries(want=6) if x["path"].startswith("/.well-known/botgate/verify")][0]
        difficulty = int(verify["path"].split("challenge=")[1].split(".")[2])
        assert difficulty in (4, 5), "the base, or one more for a headless browser's higher score"
        (ARTIFACTS / "browser-solve.json").write_text(json.dumps({"difficulty": difficulty,
                                                                  "solve_ms": solved[0]["solve_ms"]}))
    finally:
        browser.close()


def test_a_page_without_javascript_never_reaches_the_upstream(envoy_with, example_policy):
    e = envoy_with(challenge_members(example_policy))
    for _ in range(3):
        status, headers, body = e.get("/members", headers={"accept": "text/html", "user-agent": "Mozilla/5.0",
                                                           "x-forwarded-for": "203.0.113.200"})
        assert status == 401 and b"Hello from the upstream" not in body
    assert e.wait_metric("botgate_requests_total", lambda v: v >= 3, outcome="challenge") == 3


def test_signed_in_browser_steps_up_with_a_passkey(example_policy, tmp_path):
    """The step-up page in Chromium with a virtual authenticator, against a backend that really
    verifies the assertion and mints the clearance token from botgate's headers."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "passkey.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    cred_id = secrets.token_bytes(16)
    port = free_port()
    origin = f"http://localhost:{port}"
    cred_b64url = base64.urlsafe_b64encode(cred_id).rstrip(b"=").decode()
    backend = Upstream(script="webauthn_backend.py", args=(origin, cred_b64url, str(pem)),
                       env={"BOTGATE_CLEARANCE_KEY": TEST_CLEARANCE_KEY})
    e = browser = None
    try:
        e = Envoy(challenge_members(example_policy), backend.port, port=port)
        browser = Chromium()
        browser.virtual_passkey("localhost", cred_id, pkcs8)
        browser.set_cookie(origin + "/", "session_id", "alice-session")
        browser.navigate(origin + "/members?tab=security")
        assert browser.wait_for("document.getElementById('go') !== null", timeout=30), \
            browser.eval("document.documentElement.outerHTML")
        ARTIFACTS.mkdir(exist_ok=True)
        browser.screenshot(ARTIFACTS / "step-up.png")
        browser.eval("document.getElementById('go').click()", user_gesture=True)
        landed = browser.wait_for("document.getElementById('asked') && document.getElementById('asked').textContent",
                                  timeout=60)
        assert landed == "/members?tab=security", (landed, browser.eval("document.body.innerText"))
        assert e.wait_metric("botgate_challenges_total", lambda v: v >= 1, type="webauthn_step_up",
                             result="passed") == 1
        assert e.metric("botgate_challenges_total", type="webauthn_step_up", result="issued") == 1
        # The next navigation goes straight through.
        browser.navigate(origin + "/members?tab=orders")
        assert browser.wait_for("document.getElementById('asked') && document.getElementById('asked').textContent",
                                timeout=30) == "/members?tab=orders"
        assert e.metric("botgate_challenges_total", type="webauthn_step_up", result="issued") == 1
    finally:
        if browser:
            browser.close()
        if e:
            e.close()
        backend.close()
