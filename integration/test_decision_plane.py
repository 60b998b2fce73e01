"""Issue 3 end to end: allow conditions, block conditions, endpoint-tier challenges, sessions,
observe mode and per-route rollout, through real Envoy with the example policy."""
import hashlib
import hmac
import json
import time

from harness import echoed

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
CI_KEY = "ci-secret-from-the-environment-42"


def browser(ip, **extra):
    return {"user-agent": CHROME, "accept": "text/html", "accept-language": "en-GB", "x-forwarded-for": ip, **extra}


def start(envoy_with, example_policy, **kw):
    return envoy_with(example_policy, env={"BOTGATE_CI_KEY": CI_KEY}, **kw)


def test_monitoring_needs_cidr_and_user_agent(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    status, _, body = e.get("/health", headers={"user-agent": "uptime-kuma/1.23.4", "x-forwarded-for": "10.0.100.7"})
    assert status == 200
    seen = echoed(body)
    assert seen["x-botgate-tier"] == ["allow"] and seen["x-botgate-reasons"] == ["internal_monitoring"]
    # From outside the monitoring network the same user agent allows nothing: it is a known
    # automation (bot_ua) like any other, challenged on this medium-tier path.
    status, headers, body = e.get("/health", headers={"user-agent": "uptime-kuma/1.23.4", "x-forwarded-for": "203.0.113.7"})
    assert status != 200 and headers.get("x-botgate-challenge"), (status, headers)
    assert "bot_ua" in json.loads(body)["reasons"], body
    assert e.wait_metric("botgate_allowlisted_total", lambda v: v >= 1, condition="internal_monitoring") == 1


def ci_headers(path, key, ts, method="POST"):
    sig = hmac.new(key.encode(), f"{method}\n{path}\n{ts}".encode(), hashlib.sha256).hexdigest()
    return {"user-agent": "deploy-bot/3", "x-forwarded-for": "10.0.200.15", "x-internal-pipeline": "true",
            "x-ci-timestamp": str(ts), "x-ci-signature": f"current:{sig}"}


def test_ci_hmac_from_an_environment_secret_valid_invalid_replayed(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    now = int(time.time())
    good = ci_headers("/deploy?env=prod", CI_KEY, now)
    status, _, body = e.request("POST", "/deploy?env=prod", headers=good, body="{}")
    assert status == 200 and echoed(body)["x-botgate-reasons"] == ["owned_ci_cd"]
    e.request("POST", "/deploy?env=prod", headers=good, body="{}")
    e.request("POST", "/deploy", headers=ci_headers("/deploy", "wrong-key-wrong-key-wrong", now), body="{}")
    e.request("POST", "/deploy", headers=ci_headers("/deploy", CI_KEY, now - 3600), body="{}")
    # Refused CI calls are scored like anyone else, with what failed among the reasons.
    log = [x["botgate"] for x in e.access_entries(want=4)]
    assert [x["tier"] for x in log][0] == "allow"
    assert "ci_signature_replayed" in log[1]["reasons"] and log[1]["tier"] != "allow"
    assert "ci_signature_invalid" in log[2]["reasons"]
    assert "ci_signature_expired" in log[3]["reasons"]
    assert CI_KEY not in e.log_text(), "secrets are never logged"


def test_api_key_consumer_and_its_contract(envoy_with, example_policy):
    example_policy["tiers"]["allow"]["conditions"][1]["criteria"]["keys"][0]["contract"]["max_requests"] = 3
    e = start(envoy_with, example_policy)
    call = {"user-agent": "partner-sync/2", "x-api-key": "demo-partner-key", "x-forwarded-for": "198.51.100.20"}
    results = [e.get("/api/orders", headers=call) for _ in range(4)]
    assert [r[0] for r in results] == [200, 200, 200, 429]
    assert echoed(results[0][2])["x-botgate-reasons"] == ["allowlisted_api_consumer"]
    assert json.loads(results[3][2])["reasons"] == ["api_contract_exceeded"]
    _, _, body = e.get("/api/orders", headers={**call, "x-api-key": "guessed-key"})
    assert "api_key_unknown" in echoed(body)["x-botgate-reasons"][0]
    _, _, body = e.get("/api/orders", headers={**call, "x-forwarded-for": "100.64.1.1"})
    assert "api_key_from_residential_proxy" in echoed(body)["x-botgate-reasons"][0]


def test_threat_intel_blocklist(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    status, headers, body = e.get("/", headers=browser("198.18.7.7"))
    assert status == 403 and headers["x-botgate-verdict"] == ["block"]
    assert json.loads(body)["reasons"] == ["ip_in_threat_intel_blocklist"]
    assert e.wait_metric("botgate_blocked_total", lambda v: v >= 1, tier="block", reason="threat_intel") == 1


def test_impossible_sequence_checkout_without_cart(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    hoarder = browser("203.0.113.90", cookie="session_id=hoarder")
    status, _, body = e.request("POST", "/checkout", headers=hoarder, body="sku=1")
    assert status == 403 and "impossible_request_sequence" in json.loads(body)["reasons"]
    shopper = browser("203.0.113.91", cookie="session_id=shopper")
    assert e.get("/cart", headers=shopper)[0] == 200
    assert e.request("POST", "/checkout", headers=shopper, body="sku=1")[0] == 200
    entry = [x for x in e.access_entries(want=3) if x["status"] == 403][0]["botgate"]
    assert entry["detail"] == "checkout_without_cart"


def test_high_score_is_blocked(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    statuses = []
    for _ in range(12):
        status, _, body = e.request("POST", "/login", headers={"user-agent": "python-requests/2.31",
                                                                "x-forwarded-for": "198.51.100.66"}, body="u=a&p=b")
        statuses.append(status)
    assert 403 in statuses, statuses
    blocked = [x["botgate"] for x in e.access_entries(want=12) if x["status"] == 403][0]
    # Above the band (0.75) is blocked as the stronger neighbour, above 0.85 by the threshold itself.
    above = {"bot_score_above", "score_above_challenge_band"} & set(blocked["reasons"])
    assert above and blocked["score"] > 0.75, blocked


def test_endpoint_tier_selects_the_challenge_and_its_type(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    # Stripped headers (a corporate proxy): ambiguous, about 0.4.
    ambiguous = {"user-agent": CHROME, "x-forwarded-for": "203.0.113.60"}
    assert e.get("/products", headers=ambiguous)[0] == 200, "not challenged at entry (medium tier)"
    status, headers, body = e.get("/login", headers=ambiguous)
    assert status == 401 and headers["x-botgate-challenge"] == ["proof_of_work"], "anonymous: proof of work"
    reply = json.loads(body)
    assert reply["verdict"] == "challenge" and reply["challenge"]["type"] == "proof_of_work"
    signed_in = {**ambiguous, "x-forwarded-for": "203.0.113.61", "cookie": "session_id=bob"}
    status, headers, _ = e.get("/account/settings", headers=signed_in)
    assert status == 401 and headers["x-botgate-challenge"] == ["webauthn_step_up"], "signed in: WebAuthn step-up"
    assert e.wait_metric("botgate_challenges_total", lambda v: v >= 1, type="webauthn_step_up", result="issued") == 1
    human = browser("203.0.113.62")
    assert e.get("/login", headers=human)[0] == 200, "a clean browser is not challenged at /login"


def test_session_cookie_carries_the_session_across_addresses(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    e.get("/cart", headers=browser("203.0.113.70", cookie="session_id=carol"))
    # Same session from a new mobile address: the cart visit still counts.
    status, _, _ = e.request("POST", "/checkout", headers=browser("198.51.100.70", cookie="session_id=carol"), body="x")
    assert status == 200
    log = e.access_entries(want=2)
    assert log[0]["botgate"]["session"] == log[1]["botgate"]["session"]
    assert log[0]["botgate"]["authenticated"] is True


def navigate(ip, cookie=None):
    h = browser(ip, **{"sec-fetch-site": "none", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"})
    return {**h, "cookie": cookie} if cookie else h


def visitor_cookie(headers):
    cookies = [c for c in headers.get("set-cookie", []) if c.startswith("botgate_visitor=")]
    assert len(cookies) == 1, headers
    return cookies[0]


def test_visitor_cookie_keeps_a_rotating_client_in_one_session(envoy_with, example_policy):
    e = start(envoy_with, example_policy)
    status, headers, _ = e.get("/products/1", headers=navigate("203.0.113.90"))
    assert status == 200
    set_cookie = visitor_cookie(headers)
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Max-Age=3600" in set_cookie
    cookie = set_cookie.split(";")[0]
    # A headless browser keeping one context while its proxy pool hands it a new network per page.
    statuses = []
    for i in range(2, 9):
        time.sleep(0.1 + (i * 0.37) % 0.5)  # not on a timer: regular_intervals stays out of it
        status, headers, _ = e.get(f"/products/{i}", headers=navigate(f"{40 + i}.{i * 7}.3.4", cookie))
        statuses.append(status)
        assert "set-cookie" not in headers, "a visitor with the cookie is not handed another"
        if status != 200:
            break
    log = [x["botgate"] for x in e.access_entries(want=1 + len(statuses))]
    assert len({x["session"] for x in log[1:]}) == 1, "one session across every address"
    assert log[0]["session"] != log[1]["session"], "a visitor id of its own, not its address's session"
    assert statuses == [200] * 5 + [401], (statuses, log)
    last = log[-1]
    assert last["action"] == "challenge" and last["challenge"] == "proof_of_work"
    assert "address_hopping" in last["reasons"], last
    assert "address_hopping" in log[-2]["reasons"], "named from the fifth network, before it acts"
    # A forged cookie names nothing: the request is its own address's session, handed a real one.
    forged = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")
    status, headers, _ = e.get("/products/9", headers=navigate("192.0.2.91", forged))
    assert status == 200 and visitor_cookie(headers) != set_cookie
    assert e.access_entries(want=len(log) + 1)[-1]["botgate"]["session"] != last["session"]


def test_global_observe_mode_passes_with_would_verdicts(envoy_with, example_policy):
    example_policy["mode"] = "observe"
    e = start(envoy_with, example_policy)
    status, _, body = e.get("/login", headers={"user-agent": CHROME, "x-forwarded-for": "203.0.113.80"})
    assert status == 200
    seen = echoed(body)
    assert seen["x-botgate-verdict"] == ["would_challenge"] and seen["x-botgate-tier"] == ["challenge"]
    status, _, body = e.get("/", headers=browser("198.18.1.1"))
    assert status == 200 and echoed(body)["x-botgate-verdict"] == ["would_block"]
    assert e.wait_metric("botgate_requests_total", lambda v: v >= 1, outcome="would_challenge") == 1


def test_per_rule_observe(envoy_with, example_policy):
    example_policy["tiers"]["block"]["conditions"][1] = {"ip_in_threat_intel_blocklist": True, "observe": True}
    e = start(envoy_with, example_policy)
    status, _, body = e.get("/", headers=browser("198.18.1.1"))
    assert status == 200 and echoed(body)["x-botgate-verdict"] == ["would_block"]
    status, _, _ = e.request("POST", "/checkout", headers=browser("203.0.113.95"), body="x")
    assert status == 403, "other rules still enforce"


def test_per_route_rollout(envoy_with, example_policy):
    e = start(envoy_with, example_policy, per_route=True)
    blocked_ip = browser("198.18.2.2")
    assert e.get("/", headers=blocked_ip)[0] == 403
    spoofed = {**blocked_ip, "x-botgate-verdict": "allow", "x-botgate-tier": "allow"}
    # FilterConfig disabled: botgate does not run at all; the route strips client verdicts.
    status, _, body = e.get("/healthz", headers=spoofed)
    assert status == 200 and "x-botgate-tier" not in echoed(body) and "x-botgate-verdict" not in echoed(body)
    # The route name "internal" is disabled in the policy's `routes`: botgate still strips them.
    status, _, body = e.get("/internal/metrics", headers=spoofed)
    assert status == 200 and "x-botgate-tier" not in echoed(body) and "x-botgate-verdict" not in echoed(body)
    # Route metadata selects the strict profile: its detector blocks the 4th repeat.
    # (GETs: a POST under /checkout needs a prior GET /cart in the profile's own sessions.)
    hdrs = browser("203.0.113.99", cookie="session_id=dave")
    statuses = [e.get("/checkout/pay", headers=hdrs)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 403], statuses
    entry = [x for x in e.access_entries(want=8) if x["path"] == "/checkout/pay"][-1]["botgate"]
    assert entry["profile"] == "strict" and "fingerprint_repeat" in entry["reasons"]


def test_route_metadata_disables_only_with_a_boolean(envoy_with, example_policy):
    """`filter_metadata.botgate.disabled` must be the boolean true: a string or number (which
    Envoy hands over as bytes) disables nothing."""
    routes = """\
              - name: turned-off
                match: {prefix: "/off"}
                route: {cluster: upstream}
                metadata: {filter_metadata: {botgate: {disabled: true}}}
              - name: as-string
                match: {prefix: "/string"}
                route: {cluster: upstream}
                metadata: {filter_metadata: {botgate: {disabled: "false"}}}
              - name: as-number
                match: {prefix: "/number"}
                route: {cluster: upstream}
                metadata: {filter_metadata: {botgate: {disabled: 0}}}
              - name: default
                match: {prefix: "/"}
                route: {cluster: upstream}
"""
    example_policy["profiles"] = {"same": {}}  # the route is read only when profiles exist
    e = start(envoy_with, example_policy, routes=routes)
    listed = browser("198.18.2.3")
    status, _, body = e.get("/off", headers=listed)
    assert status == 200 and "x-botgate-tier" not in echoed(body)
    for path in ("/string", "/number"):
        assert e.get(path, headers=listed)[0] == 403, path
