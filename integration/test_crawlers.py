"""Issue 13 end to end: crawler claims verified through Envoy's HTTP callouts to a real DNS server
(unbound) over DNS over HTTPS, with the example policy."""
import threading
import time

from harness import echoed
from resolver import Unbound

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# Outside the example policy's threat list (198.18.0.0/15), which blocks an unproven claim first.
GENUINE, UNCONFIRMED, ELSEWHERE, NO_PTR, SLOW = "192.0.2.71", "192.0.2.72", "192.0.2.73", "192.0.2.74", "93.184.216.5"
ZONES = dict(
    ptr={GENUINE: "crawl-192-0-2-71.googlebot.com", UNCONFIRMED: "crawl-192-0-2-72.googlebot.com",
         ELSEWHERE: "crawl.evilgooglebot.com"},
    # The genuine name forward-confirms; the second PTR's name points elsewhere.
    a={"crawl-192-0-2-71.googlebot.com": GENUINE, "crawl-192-0-2-72.googlebot.com": "192.0.2.99"},
)


def with_resolver(policy, timeout_ms=800):
    policy["dns_over_https"] = {"cluster": "doh", "timeout_ms": timeout_ms}
    return policy


def crawl(e, ip, path="/sitemap.xml"):
    return e.get(path, headers={"user-agent": GOOGLEBOT, "accept": "*/*", "accept-encoding": "gzip",
                                "x-forwarded-for": ip})


def test_a_genuine_googlebot_is_allowed_and_an_impersonator_blocked(envoy_with, example_policy):
    """FCrDNS through unbound: the genuine crawler is served without scoring and labelled upstream;
    a PTR that does not forward-confirm, a PTR under another domain and no PTR at all are
    impersonations, answered 403 with the reason, counted, and logged."""
    with Unbound(**ZONES) as dns:
        e = envoy_with(with_resolver(example_policy), doh=dns.port)
        status, _, body = crawl(e, GENUINE)
        assert status == 200, body
        seen = echoed(body)
        assert seen["x-botgate-tier"] == ["allow"]
        assert seen["x-botgate-reasons"] == ["verified_search_crawler"]
        assert seen["x-botgate-bot"] == ['googlebot;operator="Google";purpose=search;verified=fcrdns']
        for ip in (UNCONFIRMED, ELSEWHERE, NO_PTR):
            status, _, body = crawl(e, ip)
            assert status == 403 and b"crawler_impersonation" in body, (ip, status, body)
        assert e.wait_metric("botgate_crawler_impersonation_total", lambda v: v == 3, crawler="googlebot") == 3
        assert e.wait_metric("botgate_crawler_requests_total", lambda v: v == 1, crawler="googlebot",
                             verified="fcrdns") == 1
        entries = e.access_entries(want=4)
        bots = [x["botgate"].get("bot") for x in entries]
        assert bots[0] == {"name": "googlebot", "operator": "Google", "purpose": "search", "verified": "fcrdns"}
        assert all(b["verified"] == "none" for b in bots[1:]), bots
        assert "crawler_impersonation" in e.log_text()


def test_answers_are_cached_so_the_resolver_is_asked_once_per_address(envoy_with, example_policy):
    """Eight concurrent requests and then more from one crawler cost one lookup; with the resolver
    stopped afterwards, the cached answer still serves it."""
    with Unbound(**ZONES) as dns:
        e = envoy_with(with_resolver(example_policy), doh=dns.port)
        statuses = []
        threads = [threading.Thread(target=lambda i=i: statuses.append(crawl(e, GENUINE, f"/p/{i}")[0]))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 8
        dns.close()
        assert crawl(e, GENUINE, "/after")[0] == 200
        answered = e.wait_metric("botgate_callouts_total", lambda v: v >= 1, service="dns", result="answered")
        assert answered == 1, answered
        assert e.metric("botgate_callouts_total", service="dns", result="failed") == 0


def test_a_resolver_that_is_down_or_slow_leaves_the_crawler_unverified_within_the_timeout(envoy_with,
                                                                                          example_policy):
    """Nothing listens on the resolver's port, then the resolver cannot get an answer in time: the
    claimed crawler is neither allowed nor blocked as an impersonator, and its request is answered
    within the configured timeout; the failures are counted."""
    e = envoy_with(with_resolver(example_policy, timeout_ms=400))
    status, _, body = crawl(e, GENUINE, "/products/1")
    assert status not in (403,) and b"crawler_impersonation" not in body, (status, body)
    with Unbound(**ZONES, silent_reverse="184.93.in-addr.arpa") as dns:
        e = envoy_with(with_resolver(example_policy, timeout_ms=400), doh=dns.port)
        started = time.time()
        status, _, body = crawl(e, SLOW, "/products/1")
        elapsed = time.time() - started
        assert elapsed < 1.5, elapsed
        assert status != 403 and b"crawler_impersonation" not in body, (status, body)
        if status == 200:
            assert "crawler_unverified" in echoed(body)["x-botgate-reasons"][0]
        assert e.wait_metric("botgate_callouts_total", lambda v: v >= 1, service="dns", result="failed") == 1
