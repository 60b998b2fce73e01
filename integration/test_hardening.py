"""The decision plane under hostile clients, through real Envoy with the shipped example policy:
a higher score never gets a softer answer, a client cannot choose its address, nobody can get
another user blocked, and botgate's own endpoints are no bypass."""
import json

from harness import echoed, lo_alias

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
