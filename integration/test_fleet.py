"""Issue 17 item 1 end to end: two Envoys share per-address counts through a real Redis (behind
webdis). A client alternating between them is limited at the fleet-wide rate, within about a
second's traffic; a person is not; with Redis stopped each Envoy's own limit still applies and
the failed syncs are counted; when it is back the fleet converges."""
import time

from fleet import Redis, Webdis

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
           "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
           "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none"}


def fleet_policy(policy, fleet=True):
    policy["ip_rate_limit"].update({"max_requests": 20, "window_seconds": 60, "fleet": fleet})
    policy["global_rate_limit"] = {"max_requests": 100000, "window_seconds": 60}
    policy["fleet"] = {"cluster": "fleet", "timeout_ms": 300}
    return policy


def alternate(envoys, ip, n, gap=0.1):
    """`n` pages from `ip`, alternating between the Envoys; how many the rate limits let by
    (a page the scoring challenges instead still counts as let by)."""
    admitted = 0
    for i in range(n):
        status = envoys[i % len(envoys)].get(f"/p/{i}", headers={**BROWSER, "x-forwarded-for": ip})[0]
        admitted += status != 429
        time.sleep(gap)
    return admitted


def test_a_client_alternating_between_two_envoys_is_limited_at_the_fleet_rate(envoy_with, example_policy):
    redis = Redis()
    webdis = Webdis(redis.port)
    try:
        # Two workers each: four workers count their own and meet in Redis.
        a = envoy_with(fleet_policy(dict(example_policy)), fleet=webdis.port, concurrency=2)
        b = envoy_with(fleet_policy(dict(example_policy)), fleet=webdis.port, concurrency=2)
        # 40 pages over 4 s, half on each: each Envoy alone would let all 40 through (20 each).
        passed = alternate([a, b], "203.0.113.80", 40)
        assert 20 <= passed <= 30, passed
        assert a.wait_metric("botgate_rate_limited_total", lambda v: v >= 1, scope="fleet") >= 1
        assert a.metric("botgate_fleet_sync_total", result="ok") >= 1
        # A person reading a few pages on both is not limited.
        assert alternate([a, b], "203.0.113.81", 8, gap=0.05) == 8

        # Redis down: syncs fail and are counted; each worker's own limit still applies (20 a
        # worker: at most 40 of 50 on Envoy A's two).
        redis.close()
        assert 20 <= alternate([a], "203.0.113.82", 50, gap=0.02) <= 40
        assert a.wait_metric("botgate_fleet_sync_total", lambda v: v >= 1, timeout=5, result="failed") >= 1

        # Back: the fleet converges (the counts kept while it was down are sent too).
        redis.start()
        time.sleep(2.5)
        passed = alternate([a, b], "203.0.113.83", 40)
        assert 20 <= passed <= 30, passed
    finally:
        webdis.close()
        redis.close()


def test_without_the_fleet_the_same_client_gets_each_envoys_budget(envoy_with, example_policy):
    """The control: per-worker limits alone let the alternating client through twice over."""
    a = envoy_with(fleet_policy(dict(example_policy), fleet=False))
    b = envoy_with(fleet_policy(dict(example_policy), fleet=False))
    assert alternate([a, b], "203.0.113.84", 40, gap=0.02) == 40
