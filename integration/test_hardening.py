"""The decision plane under hostile clients, through real Envoy with the shipped example policy:
a higher score never gets a softer answer, a client cannot choose its address, nobody can get
another user blocked, and botgate's own endpoints are no bypass."""
import json
import shutil

import pytest

from harness import challenge_members, echoed, lo_alias

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"


def test_python_requests_on_login_in_the_band_gap_is_blocked_not_passed(envoy_with, example_policy):
    e = envoy_with(example_policy)
    client = {"user-agent": "python-requests/2.32.3", "accept": "*/*", "accept-encoding": "gzip, deflate",
              "x-forwarded-for": "203.0.113.140"}
    answers = []
    for _ in range(6):
        status, headers, body = e.post("/login", body="user=a&password=b", headers=client)
        answers.append(status)
        assert status != 200, f"passed upstream: {headers}"
        if status == 403:
            reasons = json.loads(body)["reasons"]
            if "score_above_challenge_band" in reasons:
                break
    assert "score_above_challenge_band" in reasons, answers


def test_a_client_connecting_from_a_listed_address_cannot_claim_an_internal_one(envoy_with, example_policy):
    e = envoy_with(example_policy)
    spoof = {"user-agent": "uptime-kuma/1.23.16", "x-forwarded-for": "10.0.100.7"}
    with lo_alias("198.18.0.9") as listed:
        status, headers, body = e.get("/health", headers=spoof, source=listed)
    assert status == 403, (status, body)
    assert headers["x-botgate-verdict"] == ["block"]
    assert "ip_in_threat_intel_blocklist" in json.loads(body)["reasons"]
    entry = [a for a in e.access_entries() if a["botgate"]][-1]["botgate"]
    assert entry["client_ip"] == "198.18.0.9"
    # From the trusted local proxy, the same forwarded hop is believed.
    status, _, body = e.get("/health", headers=spoof)
    assert status == 200 and echoed(body)["x-botgate-tier"] == ["allow"]
    assert e.wait_metric("botgate_xff_untrusted_total", lambda v: v >= 1) == 1


def visitor(ip, **extra):
    return {"user-agent": CHROME, "accept": "text/html", "sec-fetch-mode": "navigate", "x-forwarded-for": ip, **extra}


def test_a_cross_site_chain_through_botgates_endpoints_cannot_get_a_visitor_blocked(envoy_with, example_policy):
    e = envoy_with(challenge_members(example_policy))
    ip = "203.0.113.150"
    status, _, _ = e.get("/members", headers=visitor(ip))
    assert status == 401
    # An attacker's page sends the victim's browser through /verify with junk, each answer a
    # redirect into the next hop, and through /pow: every hop is cross-site.
    junk = ("/.well-known/botgate/verify?challenge=v1.x.4.1.b.sig&solution=1"
            "&return=%2F.well-known%2Fbotgate%2Fverify%3Fchallenge%3Dx%26solution%3D1")
    for _ in range(6):
        for path in (junk, "/.well-known/botgate/pow?return=%2F"):
            status, _, body = e.get(path, headers=visitor(ip, **{"sec-fetch-site": "cross-site"}))
            assert status == 403 and "cross_site_request" in json.loads(body)["reasons"], body
    # Same-origin junk is a no-op too, and never redirects back into botgate's endpoints.
    status, headers, _ = e.get(junk, headers=visitor(ip, **{"sec-fetch-site": "same-origin"}))
    assert status == 401 and "location" not in headers
    status, headers, body = e.get("/members", headers=visitor(ip))
    assert status == 401 and headers["x-botgate-challenge"] == ["proof_of_work"], "challenged, not blocked"
    assert e.wait_metric("botgate_challenge_ignored_total", lambda v: v >= 6, reason="cross_site") >= 6
    assert e.metric("botgate_blocked_total", reason="challenge_failed") == 0


def test_botgates_endpoints_are_rate_limited_and_refuse_listed_addresses(envoy_with, example_policy):
    e = envoy_with(challenge_members(example_policy))
    own = {"sec-fetch-site": "same-origin"}
    status, _, body = e.get("/.well-known/botgate/pow?return=%2F", headers=visitor("198.18.0.77", **own))
    assert status == 403 and "ip_in_threat_intel_blocklist" in json.loads(body)["reasons"]
    ip = "203.0.113.151"
    answers = [e.get(f"/.well-known/botgate/verify?challenge=v1.{i}.4.1.b.sig&solution=1",
                     headers=visitor(ip, **own))[0] for i in range(45)]
    assert answers.count(429) == 5, answers
    assert e.get("/.well-known/botgate/pow?return=%2F", headers=visitor(ip, **own))[0] == 429
    # Static assets are not counted with a client's pages (botgate's own included: they hold no
    # state), as the browser fetches them; the same path asked for as a page is a page.
    script = visitor(ip, **{"accept": "*/*", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "script"})
    assert e.get("/.well-known/botgate/challenge.js", headers=script)[0] == 200
    assert e.get("/.well-known/botgate/challenge.js", headers=visitor(ip))[0] == 429


def test_a_policy_without_clearance_keys_is_challenged_and_passed_in_chromium(envoy_with, example_policy):
    from browser import CHROMIUM, Chromium
    if shutil.which(CHROMIUM) is None:
        pytest.skip("chromium is not installed (make system-deps)")
    policy = challenge_members(example_policy)
    del policy["tiers"]["challenge"]["clearance_token"]["keys"]
    # Two workers: the generated key must be one for the whole Envoy (a puzzle issued by one
    # worker is checked by whichever takes the /verify navigation).
    e = envoy_with(policy, concurrency=2)
    assert e.log_text().count("generated a random key for this Envoy") == 1, e.log_text()[-3000:]
    browser = Chromium()
    try:
        base = f"http://127.0.0.1:{e.port}"
        for tab in range(1, 4):
            browser.navigate(f"{base}/members?tab={tab}")
            landed = browser.wait_for("document.getElementById('asked') && document.getElementById('echo').textContent",
                                      timeout=120)
            assert landed, browser.eval("document.documentElement.outerHTML")
            assert json.loads(landed)["path"] == f"/members?tab={tab}"
        assert e.wait_metric("botgate_challenges_total", lambda v: v >= 1, type="proof_of_work", result="passed") == 1
        assert e.metric("botgate_challenges_total", type="proof_of_work", result="issued") == 1, \
            "solved once, then cleared on every worker"
    finally:
        browser.close()
