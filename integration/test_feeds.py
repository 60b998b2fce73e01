"""Issue 13, live feeds end to end: Envoy fetches a threat-intel list and a crawler's published
ranges from a local file server through the `feeds` cluster, one worker fetching for all; a new
list takes effect without a restart, and a broken, missing or too-wide update keeps the last good
list while its age and the failed refreshes show in the metrics."""
import json

from harness import FileServer, echoed, until

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def visit(e, ip):
    return e.get("/", headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", "accept": "text/html",
                               "x-forwarded-for": ip})


def blocked(e, ip):
    status, _, body = visit(e, ip)
    return status == 403 and b"ip_in_threat_intel_blocklist" in body


def test_a_blocklist_feed_refreshes_without_restart_and_keeps_the_last_good_list(envoy_with, example_policy):
    with FileServer() as feeds:
        feeds.put("drop.txt", "# test DROP list\n203.0.113.0/24 ; SBL1\n")
        example_policy["threat_intel"]["blocklists"].append(
            {"name": "drop", "source": {"cluster": "feeds", "path": "/drop.txt", "refresh_seconds": 1}})
        e = envoy_with(example_policy, feeds=feeds.port, concurrency=2)
        assert until(lambda: blocked(e, "203.0.113.5")), "the fetched list blocks"
        # Every worker has it (on its next tick), whichever fetched it.
        assert until(lambda: all(blocked(e, "203.0.113.5") for _ in range(8)))
        assert e.wait_metric("botgate_feed_entries", lambda v: v == 1, feed="drop") == 1
        assert e.metric("botgate_feed_refreshes_total", feed="drop", result="ok") >= 1
        assert not blocked(e, "198.51.100.7")

        # A broken update and a missing file: refused whole, the last good list stays.
        feeds.put("drop.txt", "<html><body>502 Bad Gateway</body></html>\n")
        assert e.wait_metric("botgate_feed_refreshes_total", lambda v: v >= 1, timeout=8, feed="drop",
                             result="refused") >= 1
        assert blocked(e, "203.0.113.5")
        feeds.remove("drop.txt")
        assert e.wait_metric("botgate_feed_refreshes_total", lambda v: v >= 1, timeout=8, feed="drop",
                             result="failed") >= 1
        assert blocked(e, "203.0.113.5")
        assert e.wait_metric("botgate_feed_age_seconds", lambda v: v >= 2, timeout=8, feed="drop") >= 2, \
            "the list's age grows while refreshes fail"
        assert "keeping the last good list" in e.log_text()

        # A good update again: the new list replaces the old one, without a restart.
        feeds.put("drop.txt", "198.51.100.0/24\n")
        assert until(lambda: blocked(e, "198.51.100.7"))
        assert until(lambda: not blocked(e, "203.0.113.5"))
        assert e.wait_metric("botgate_feed_age_seconds", lambda v: v <= 2, timeout=8, feed="drop") <= 2


def test_a_crawler_is_verified_by_ranges_fetched_in_googles_json_format(envoy_with, example_policy):
    """No resolver runs: a Googlebot inside the fetched ranges is allowed by them; outside them it
    is an impersonator once the ranges are known; a too-wide update is refused."""
    with FileServer() as feeds:
        feeds.put("googlebot.json", json.dumps(
            {"creationTime": "2026-11-27T00:00:00", "prefixes": [{"ipv4Prefix": "192.0.2.64/27"},
                                                                  {"ipv6Prefix": "2001:db8:4801::/64"}]}))
        example_policy["crawlers"] = {"definitions": [
            {"name": "googlebot", "source": {"cluster": "feeds", "path": "/googlebot.json", "refresh_seconds": 1}}]}
        example_policy.pop("dns_over_https", None)  # ranges are the only proof here

        def crawl(ip):
            return e.get("/sitemap.xml", headers={"user-agent": GOOGLEBOT, "accept": "*/*", "x-forwarded-for": ip})

        e = envoy_with(example_policy, feeds=feeds.port)
        assert until(lambda: crawl("192.0.2.70")[0] == 200)
        status, _, body = crawl("192.0.2.70")
        assert echoed(body)["x-botgate-bot"] == ['googlebot;operator="Google";purpose=search;verified=published_ranges']
        status, _, body = crawl("192.0.2.10")
        assert status == 403 and b"crawler_impersonation" in body, (status, body)

        feeds.put("googlebot.json", json.dumps({"prefixes": [{"ipv4Prefix": "192.0.0.0/8"}]}))
        assert e.wait_metric("botgate_feed_refreshes_total", lambda v: v >= 1, timeout=8, feed="googlebot",
                             result="refused") >= 1
        assert crawl("192.0.2.70")[0] == 200
        status, _, body = crawl("192.0.2.10")
        assert status == 403, "a refused update lets nobody new in"


def test_a_verified_crawler_is_held_to_the_origins_robots_txt(envoy_with, example_policy):
    """robots.txt fetched through a cluster: a verified Googlebot is refused a disallowed path and
    served the rest; a new file applies without a restart."""
    with FileServer() as origin:
        origin.put("robots.txt", "User-agent: *\nDisallow: /private/\n\nUser-agent: Googlebot\nDisallow: /search\n")
        example_policy.pop("dns_over_https", None)
        example_policy["crawlers"] = {
            "definitions": [{"name": "googlebot", "ranges": ["192.0.2.64/27"]}],
            "robots_txt": {"cluster": "feeds", "refresh_seconds": 1}}
        e = envoy_with(example_policy, feeds=origin.port)

        def crawl(path):
            return e.get(path, headers={"user-agent": GOOGLEBOT, "accept": "*/*", "x-forwarded-for": "192.0.2.70"})

        assert until(lambda: crawl("/search?q=1")[0] == 403)
        status, _, body = crawl("/search?q=1")
        assert b"robots_disallowed" in body, body
        assert crawl("/private/page")[0] == 200, "Googlebot's own group replaces the * group"
        assert e.wait_metric("botgate_crawler_robots_disallowed_total", lambda v: v >= 2, crawler="googlebot") >= 2
        origin.put("robots.txt", "User-agent: Googlebot\nAllow: /\n")
        assert until(lambda: crawl("/search?q=1")[0] == 200)


def test_a_feed_that_never_loads_shows_as_failing_and_ageing(envoy_with, example_policy):
    """A misspelt cluster: every attempt counts as failed, and the list's age grows from the
    start, so an alert on age fires as it would for a feed that stopped."""
    example_policy["threat_intel"]["blocklists"].append(
        {"name": "typo", "source": {"cluster": "no-such-cluster", "path": "/drop.txt", "refresh_seconds": 1}})
    e = envoy_with(example_policy)
    assert e.wait_metric("botgate_feed_refreshes_total", lambda v: v >= 1, timeout=8, feed="typo",
                         result="failed") >= 1
    assert e.wait_metric("botgate_feed_age_seconds", lambda v: v >= 2, timeout=8, feed="typo") >= 2
    assert "cannot call cluster" in e.log_text()
