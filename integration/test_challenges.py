"""Issue 4 end to end through real Envoy: proof of work for API clients (solved with
`botgate pow solve`), single use across workers, clearance tokens minted by `botgate token mint`
and by hand (the documented algorithm), refused when forged, expired or re-scoped, WebAuthn step-up
for signed-in sessions, the seed's scripted bot and real user, and the challenge metrics."""
import base64
import hashlib
import hmac
import json
import subprocess
import time

from harness import BOTGATE, TEST_CLEARANCE_KEY, echoed

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"


def ambiguous(ip, **extra):
    """A browser behind a proxy that strips accept and accept-language: a score near 0.4."""
    return {"user-agent": CHROME, "x-forwarded-for": ip, **extra}


def botgate(*args, env=None):
    r = subprocess.run([str(BOTGATE), *args], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", **(env or {})})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def challenge_of(status, headers, body):
    assert status == 401, body
    assert headers["x-botgate-challenge"] == ["proof_of_work"], headers
    c = json.loads(body)["challenge"]
    assert headers["x-botgate-pow-challenge"] == [c["challenge"]]
    return c


def solve(c):
    return botgate("pow", "solve", c["challenge"])


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_by_hand(claims, key=TEST_CLEARANCE_KEY, header=None):
    """HS256 as a backend would write it, without botgate (README: minting a clearance token)."""
    h = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    sig = hmac.new(key.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def test_api_client_solves_with_the_cli_and_is_cleared(envoy_with, example_policy):
    e = envoy_with(example_policy)
    ip = "203.0.113.80"
    c = challenge_of(*e.post("/login", headers=ambiguous(ip), body=b"user=a"))
    assert c["difficulty"] == 4 and c["expires_in"] == 300
    solution = solve(c)
    status, headers, body = e.post("/login", body=b"user=a", headers=ambiguous(
        ip, **{"x-botgate-pow-challenge": c["challenge"], "x-botgate-pow-solution": solution}))
    assert status == 200, body
    seen = echoed(body)
    assert "x-botgate-pow-solution" not in seen and "pow_passed" in seen["x-botgate-reasons"][0]
    cookie = headers["set-cookie"][0]
    assert cookie.startswith("botgate_clearance=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = headers["x-botgate-clearance"][0]
    # The next call with the token in the header is not challenged (and the header is not passed on).
    status, _, body = e.post("/login", body=b"user=a", headers=ambiguous(ip, **{"x-botgate-clearance": token}))
    assert status == 200 and "x-botgate-clearance" not in echoed(body)
    assert e.wait_metric("botgate_challenges_total", lambda v: v >= 1, type="proof_of_work", result="passed") == 1
    assert e.metric("botgate_challenges_total", type="proof_of_work", result="issued") == 1
    assert e.wait_metric("botgate_challenge_solve_ms_count", lambda v: v >= 1) == 1
    entry = [x for x in e.access_entries(want=3) if x["botgate"] and "pow_passed" in x["botgate"]["reasons"]][0]
    assert entry["botgate"]["solve_ms"] >= 0


def test_a_solved_challenge_cannot_be_replayed_on_any_worker(envoy_with, example_policy):
    e = envoy_with(example_policy, concurrency=2)
    c = challenge_of(*e.post("/login", headers=ambiguous("203.0.113.81"), body=b"x"))
    sub = {"x-botgate-pow-challenge": c["challenge"], "x-botgate-pow-solution": solve(c)}
    assert e.post("/login", headers=ambiguous("203.0.113.81", **sub), body=b"x")[0] == 200
    # The same client replays it over new connections, which the kernel spreads over both
    # workers: whichever worker sees it, the spent puzzle earns nothing (the worker that saw the
    # pass knows it as this session's own reload; the other finds the nonce spent).
    replayed = 0
    for i in range(24):
        status, headers, body = e.post("/login", headers=ambiguous("203.0.113.81", **sub), body=b"x")
        reasons = echoed(body)["x-botgate-reasons"][0].split(",") if status == 200 else json.loads(body)["reasons"]
        assert "pow_passed" not in reasons and {"pow_replayed", "pow_already_passed"} & set(reasons), (status, body)
        replayed += "pow_replayed" in reasons
        if replayed and i >= 7:
            break
    assert replayed >= 1, "the other worker saw the nonce as spent"
    assert e.wait_metric("botgate_challenge_failures_total", lambda v: v >= replayed, reason="replayed") == replayed
    # Another session cannot use it at all: a puzzle is bound to the session it was issued to,
    # and someone else's is a no-op (nothing counts against the sender).
    status, _, body = e.post("/login", headers=ambiguous("203.0.113.100", **sub), body=b"x")
    assert status == 401 and "pow_wrong_client" in json.loads(body)["reasons"], body


def test_tokens_from_the_cli_pass_and_forged_expired_rescoped_ones_do_not(envoy_with, example_policy):
    """A backend that ran its own step-up mints the token for the signed-in session botgate named
    (`token_session` in the challenge, `x-botgate-session` upstream)."""
    e = envoy_with(example_policy)
    ip = "203.0.113.90"
    bnd = botgate("token", "binding", CHROME, ip)
    now = int(time.time())
    cases = ["cli", "by hand", "forged", "expired", "re-scoped", "other client", "other session", "alg none"]
    for i, name in enumerate(cases):
        signed_in = ambiguous(ip, cookie=f"session_id=user-{i}")
        status, _, body = e.post("/login", body=b"x", headers=signed_in)
        sid = json.loads(body)["challenge"]["token_session"]
        claims = {"iat": now, "exp": now + 600, "scope": "session", "sid": sid, "amr": "webauthn", "bnd": bnd}
        token = {
            "cli": lambda: botgate("token", "mint", "--session", sid, "--binding", bnd, "--amr", "webauthn",
                                   env={"BOTGATE_CLEARANCE_KEY": TEST_CLEARANCE_KEY}),
            "by hand": lambda: mint_by_hand(claims),
            "forged": lambda: mint_by_hand(claims, key="some-other-key-0123456789abcdef-0000"),
            "expired": lambda: mint_by_hand({**claims, "iat": now - 7200, "exp": now - 3600}),
            "re-scoped": lambda: mint_by_hand({**claims, "scope": "global"}),
            "other client": lambda: mint_by_hand({**claims, "bnd": "0000000000000000"}),
            "other session": lambda: mint_by_hand({**claims, "sid": "0123456789abcdef"}),
            "alg none": lambda: mint_by_hand(claims, header={"alg": "none"}).rsplit(".", 1)[0] + ".",
        }[name]()
        status, headers, _ = e.post("/login", body=b"x",
                                    headers={**signed_in, "cookie": f"session_id=user-{i}; botgate_clearance={token}"})
        want = 200 if name in ("cli", "by hand") else 401
        assert status == want, f"{name}: {status} {headers}"
    assert e.wait_metric("botgate_clearance_total", lambda v: v >= 6, result="refused") == 6


def test_scripted_bot_fails_its_challenge_and_is_blocked(envoy_with, example_policy):
    """Seed 004: the scripted bot at /login with an ambiguous score is challenged, fails, and its
    session is blocked."""
    e = envoy_with(example_policy)
    ip = "203.0.113.91"
    c = challenge_of(*e.post("/login", headers=ambiguous(ip), body=b"u=1"))
    statuses = []
    for _ in range(3):
        status, headers, body = e.post("/login", body=b"u=1", headers=ambiguous(
            ip, **{"x-botgate-pow-challenge": c["challenge"], "x-botgate-pow-solution": "42"}))
        statuses.append(status)
        if status == 401:
            c = json.loads(body)["challenge"]
    assert statuses == [401, 401, 403], statuses
    status, headers, body = e.get("/products", headers=ambiguous(ip))
    assert status == 403 and "challenge_failed" in json.loads(body)["reasons"]
    assert e.wait_metric("botgate_blocked_total", lambda v: v >= 2, reason="challenge_failed") >= 2
    assert e.metric("botgate_challenges_total", type="proof_of_work", result="failed") == 3


def test_real_user_clears_once_and_is_not_challenged_again(envoy_with, example_policy):
    """Seed 004: the real user with an ambiguous score clears the challenge once and is not
    challenged again for the token's lifetime."""
    e = envoy_with(example_policy)
    ip = "203.0.113.92"
    c = challenge_of(*e.post("/login", headers=ambiguous(ip), body=b"u=1"))
    status, headers, _ = e.post("/login", body=b"u=1", headers=ambiguous(
        ip, **{"x-botgate-pow-challenge": c["challenge"], "x-botgate-pow-solution": solve(c)}))
    assert status == 200
    cookie = headers["set-cookie"][0].split(";")[0]
    for method, path in [("POST", "/login"), ("GET", "/cart"), ("POST", "/checkout"), ("GET", "/account/orders"),
                         ("POST", "/login")]:
        status, _, body = e.request(method, path, body=b"u=1" if method == "POST" else None,
                                    headers=ambiguous(ip, cookie=cookie))
        assert status == 200, (path, body)


def test_signed_in_sessions_step_up_with_webauthn(envoy_with, example_policy):
    e = envoy_with(example_policy)
    ip = "203.0.113.93"
    alice = ambiguous(ip, cookie="session_id=alice-7")
    status, headers, body = e.post("/login", headers=alice, body=b"x")
    assert status == 401 and headers["x-botgate-challenge"] == ["webauthn_step_up"]
    c = json.loads(body)["challenge"]
    assert c["options_url"] == "/auth/webauthn/options" and c["verify_url"] == "/auth/webauthn/verify"
    assert c["fallback"] == "proof_of_work"
    # A browser gets the step-up page, whose script calls the backend.
    status, headers, body = e.post("/login", headers={**alice, "accept": "text/html"}, body=b"x")
    assert status == 401 and b"stepup.js" in body and b"data-verify=\"/auth/webauthn/verify\"" in body
    assert "script-src 'self'" in headers["content-security-policy"][0]
    # The backend's verify endpoint learns what its token must carry, and mints it.
    status, _, body = e.post("/auth/webauthn/verify", headers=alice, body=b"{}")
    seen = echoed(body)
    sid, bnd = seen["x-botgate-session"][0], seen["x-botgate-binding"][0]
    token = botgate("token", "mint", "--session", sid, "--binding", bnd,
                    env={"BOTGATE_CLEARANCE_KEY": TEST_CLEARANCE_KEY})
    status, _, _ = e.post("/login", headers={**alice, "cookie": f"session_id=alice-7; botgate_clearance={token}"},
                          body=b"x")
    assert status == 200
    assert e.wait_metric("botgate_challenges_total", lambda v: v >= 1, type="webauthn_step_up", result="passed") == 1
    # Client-sent step-up headers never reach the backend.
    _, _, body = e.post("/auth/webauthn/verify", body=b"{}", headers={**alice, "x-botgate-session": "forged"})
    assert echoed(body)["x-botgate-session"] == [sid]


def test_interstitial_and_assets_for_a_plain_http_client(envoy_with, example_policy, upstream):
    """A client without JavaScript gets the page and never reaches the upstream."""
    e = envoy_with(example_policy)
    ip = "203.0.113.94"
    nav = {"user-agent": CHROME, "accept": "text/html", "x-forwarded-for": ip}
    for _ in range(3):
        status, headers, body = e.get("/login?next=/orders", headers=nav)
        assert status == 401 and b"<noscript>" in body and b"challenge.js" in body
        assert headers["content-type"][0].startswith("text/html")
        assert b"echo" not in body
    for asset, kind in [("challenge.js", "javascript"), ("worker.js", "javascript"), ("style.css", "css")]:
        status, headers, body = e.get(f"/.well-known/botgate/{asset}", headers=nav)
        assert status == 200 and kind in headers["content-type"][0], asset
    # Envoy normalises the dot segments away: botgate serves no file outside its assets.
    status, _, body = e.get("/.well-known/botgate/../../etc/passwd", headers=nav)
    assert status != 500 and b"root:" not in body
