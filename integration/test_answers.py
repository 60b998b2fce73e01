"""Issue 17 item 4 end to end: graduated answers in real Envoy. A tarpitted refusal arrives after
its delay, and under a flood only `max_delayed` requests are held (the rest answered at once, so
Envoy is never held hostage); a throttled request over the rate limit reaches the upstream after
its delay; a decoy is a plausible 200, recorded as a decoy in the access log."""
import concurrent.futures
import time

LISTED = "198.18.0.5"  # in the example policy's blocklist
BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
           "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
           "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none"}


def answered_by(policy, answer):
    for rule in policy["tiers"]["block"]["conditions"]:
        if "ip_in_threat_intel_blocklist" in rule:
            rule["answer"] = answer
    return policy


def timed(e, path, ip):
    started = time.time()
    status, _, body = e.get(path, headers={**BROWSER, "x-forwarded-for": ip})
    return status, time.time() - started, body


def test_a_tarpit_answers_after_its_delay_and_holds_no_more_than_its_bound(envoy_with, example_policy):
    policy = answered_by(example_policy, "tarpit")
    policy["answers"] = {"tarpit_ms": 1500, "max_delayed": 4}
    e = envoy_with(policy)
    status, took, _ = timed(e, "/", LISTED)
    assert status == 403 and 1.4 <= took < 3.0, (status, took)
    # Twelve listed clients at once: four held (max_delayed), the rest answered at once.
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: timed(e, f"/f/{i}", f"198.18.1.{i + 1}"), range(12)))
    held = [t for s, t, _ in results if t >= 1.4]
    assert all(s == 403 for s, _, _ in results), results
    assert len(held) == 4, [round(t, 2) for _, t, _ in results]
    assert e.wait_metric("botgate_answers_total", lambda v: v >= 8, answer="delay_full", mode="enforce") >= 8
    # One client at once: one held, its others answered at once.
    time.sleep(1.6)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: timed(e, f"/g/{i}", "198.18.2.1"), range(4)))
    assert len([t for _, t, _ in results if t >= 1.4]) == 1, [round(t, 2) for _, t, _ in results]
    assert e.wait_metric("botgate_answers_total", lambda v: v >= 1, answer="tarpit", mode="enforce") >= 1


def test_a_throttled_request_reaches_the_upstream_after_its_delay(envoy_with, example_policy):
    example_policy["ip_rate_limit"].update({"max_requests": 3, "answer": "throttle"})
    example_policy["answers"] = {"throttle_ms": 1000}
    e = envoy_with(example_policy)
    times = [timed(e, f"/p/{i}", "203.0.113.60") for i in range(5)]
    assert all(s == 200 for s, _, _ in times), times
    assert all(t < 0.5 for _, t, _ in times[:3]) and all(0.9 <= t < 2.5 for _, t, _ in times[3:]), \
        [round(t, 2) for _, t, _ in times]
    assert b"Hello from the upstream" in times[-1][2]
    entry = e.access_entries(want=5)[-1]["botgate"]
    assert entry["outcome"] == "rate_limited" and entry["answer"] == "throttle", entry


def test_a_decoy_is_served_and_recorded(envoy_with, example_policy):
    e = envoy_with(answered_by(example_policy, "decoy"))
    status, headers, body = e.get("/products", headers={**BROWSER, "x-forwarded-for": LISTED})
    assert status == 200 and b"<h1>Catalogue</h1>" in body and b"botgate" not in body.lower(), body
    assert not [h for h in headers if h.startswith("x-botgate")], headers
    entry = e.access_entries(want=1)[-1]["botgate"]
    assert entry["action"] == "block" and entry["answer"] == "decoy", entry
    assert e.wait_metric("botgate_answers_total", lambda v: v >= 1, answer="decoy", mode="enforce") >= 1
