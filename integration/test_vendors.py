"""Issue 14 end to end: vendor sources asked through Envoy callouts. A local scoring service
speaking the generic JSON adapter's format: its score moves the decision and is named in the
reasons; a slow source is cut off at its timeout and the request still served; garbage and
errors are missing, counted, and open the circuit breaker, which closes again once the source
answers."""
import json
import time
import urllib.request

from harness import Upstream, until

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
           "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
           "accept-encoding": "gzip, deflate, br", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document",
           "sec-fetch-site": "none", "sec-fetch-user": "?1"}
BAD, GOOD = "203.0.113.5", "203.0.113.6"


def with_vendor(policy, timeout_ms=300, cache_seconds=1):
    policy["vendors"] = [{"name": "acme", "type": "http_json", "cluster": "feeds", "path": "/score?ip={ip}",
                          "score_pointer": "/score", "reasons_pointer": "/reasons", "timeout_ms": timeout_ms,
                          "cache_seconds": cache_seconds}]
    return policy


def visit(e, ip, path="/"):
    return e.get(path, headers={**BROWSER, "x-forwarded-for": ip})


def mode(scoring, m):
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{scoring.port}/mode", data=m.encode()), timeout=2)


def test_a_vendor_score_moves_the_decision_and_a_missing_one_does_not(envoy_with, example_policy):
    scoring = Upstream(script="scoring.py", args=(json.dumps({BAD: 0.99}),))
    try:
        e = envoy_with(with_vendor(example_policy), feeds=scoring.port)
        status, headers, body = visit(e, BAD)
        assert status in (401, 403) and b"vendor_acme" in body, (status, body)
        status, _, body = visit(e, GOOD)
        assert status == 200, body
        entries = e.access_entries(want=2)
        assert entries[-1]["botgate"]["vendors"] == [{"name": "acme", "score": 0.05, "reasons": []}], entries[-1]

        # Slow: cut off at the timeout, the request still answered, the source listed as missing.
        mode(scoring, "slow")
        time.sleep(1.1)  # past the cache
        started = time.time()
        status, _, _ = visit(e, GOOD, "/slow")
        assert status == 200 and time.time() - started < 1.2, time.time() - started
        last = e.access_entries(want=3)[-1]["botgate"]
        assert last["vendors"] == [{"name": "acme", "missing": "timeout"}], last
        assert e.wait_metric("botgate_vendor_answers_total", lambda v: v >= 1, vendor="acme", result="timeout") >= 1
    finally:
        scoring.close()


def test_a_failing_source_trips_its_breaker_and_recovers(envoy_with, example_policy):
    scoring = Upstream(script="scoring.py", args=("{}",))
    try:
        e = envoy_with(with_vendor(example_policy, cache_seconds=1), feeds=scoring.port)
        mode(scoring, "garbage")
        for i in range(6):  # one round per client: six clients
            assert visit(e, f"198.51.100.{10 + i}")[0] == 200
        assert e.wait_metric("botgate_vendor_answers_total", lambda v: v >= 5, vendor="acme", result="garbage") >= 5
        asked = int(urllib.request.urlopen(f"http://127.0.0.1:{scoring.port}/count", timeout=2).read())
        for i in range(5):  # the circuit is open: nobody asks the source
            assert visit(e, f"198.51.100.{40 + i}")[0] == 200
        assert int(urllib.request.urlopen(f"http://127.0.0.1:{scoring.port}/count", timeout=2).read()) == asked
        assert e.wait_metric("botgate_vendor_answers_total", lambda v: v >= 5, vendor="acme", result="circuit_open") >= 5
        assert "failed 5 times in a row" in e.log_text()
    finally:
        scoring.close()


def test_a_crowdsec_ban_blocks_through_envoy_and_its_removal_lets_the_address_in(envoy_with, example_policy):
    """Real CrowdSec (Local API on loopback, bouncer key from cscli): a decision added with cscli
    blocks that address; deleted, the address passes again once the cache TTL has run out; a
    captcha decision gets botgate's own challenge."""
    from crowdsec import CrowdSec
    with CrowdSec() as cs:
        example_policy["vendors"] = [{"name": "crowdsec", "type": "crowdsec", "cluster": "feeds",
                                      "api_key": cs.bouncer_key, "timeout_ms": 500, "cache_seconds": 1}]
        e = envoy_with(example_policy, feeds=cs.port)
        assert visit(e, "192.0.2.7")[0] == 200
        cs.ban("192.0.2.7")
        time.sleep(1.2)
        status, _, body = visit(e, "192.0.2.7", "/after-ban")
        assert status == 403 and b"vendor_crowdsec" in body, (status, body)
        last = e.access_entries(want=2)[-1]["botgate"]
        assert last["vendors"][0]["name"] == "crowdsec" and last["vendors"][0]["score"] == 1.0, last
        cs.unban("192.0.2.7")
        time.sleep(1.2)
        assert visit(e, "192.0.2.7", "/after-unban")[0] == 200
        cs.captcha("192.0.2.8")
        status, headers, body = visit(e, "192.0.2.8")
        assert status == 401 and headers["x-botgate-challenge"] == ["proof_of_work"], (status, headers)
        assert b"captcha" not in body.lower()


def test_a_source_that_is_down_is_missing_and_its_breaker_closes_when_it_is_back(envoy_with, example_policy):
    """Two sources, one of them down (its cluster's port closed): decisions come from the other,
    the dead one is counted and skipped once its breaker opens; served again, the breaker closes
    after its open period and the source answers."""
    scoring = Upstream(script="scoring.py", args=(json.dumps({BAD: 0.99}),))
    try:
        policy = with_vendor(example_policy, cache_seconds=1)
        policy["vendors"].append({"name": "dead", "type": "http_json", "cluster": "doh", "path": "/score?ip={ip}",
                                  "score_pointer": "/score", "timeout_ms": 300, "cache_seconds": 1})
        e = envoy_with(policy, feeds=scoring.port)  # the doh cluster's port: nobody listens
        status, _, body = visit(e, BAD)
        assert status in (401, 403) and b"vendor_acme" in body, (status, body)
        for i in range(6):
            assert visit(e, f"198.51.100.{60 + i}")[0] == 200
        last = e.access_entries(want=7)[-1]["botgate"]["vendors"]
        assert last[0]["name"] == "acme" and "score" in last[0] and last[1]["name"] == "dead" and "missing" in last[1], last
        assert e.wait_metric("botgate_vendor_answers_total", lambda v: v >= 1, vendor="dead", result="circuit_open") >= 1

        # acme fails until its breaker opens, then answers again after the open period (30 s).
        mode(scoring, "error")
        for i in range(6):
            visit(e, f"198.51.100.{80 + i}")
        assert e.wait_metric("botgate_vendor_answers_total", lambda v: v >= 1, vendor="acme", result="circuit_open") >= 1
        mode(scoring, "ok")
        time.sleep(31)
        answered = e.metric("botgate_vendor_answers_total", vendor="acme", result="answered")
        status, _, body = visit(e, BAD, "/back")
        assert status in (401, 403) and b"vendor_acme" in body, (status, body)
        assert e.wait_metric("botgate_vendor_answers_total", lambda v: v > answered, vendor="acme",
                             result="answered") > answered
    finally:
        scoring.close()


def test_crowdsec_in_stream_mode_blocks_from_decisions_kept_in_shared_data(envoy_with, example_policy):
    """Stream mode: one worker fetches CrowdSec's decisions stream every second and shares it;
    a ban added with cscli blocks the address on every worker without a callout per client, and
    its removal lets it in at the next refresh."""
    from crowdsec import CrowdSec

    with CrowdSec() as cs:
        example_policy["vendors"] = [{"name": "crowdsec", "type": "crowdsec", "cluster": "feeds",
                                      "api_key": cs.bouncer_key, "stream": True, "refresh_seconds": 1}]
        e = envoy_with(example_policy, feeds=cs.port, concurrency=2)
        assert visit(e, "192.0.2.17")[0] == 200
        cs.ban("192.0.2.17")
        # Each worker loads the shared decisions on its own tick: within a second of each other,
        # every worker refuses it (a run of visits on new connections, spread over both).
        assert until(lambda: all(visit(e, "192.0.2.17")[0] == 403 for _ in range(6)), timeout=10), \
            "every worker has the decisions"
        assert e.metric("botgate_vendor_answers_total", vendor="crowdsec", result="answered") == 0, "no callouts"
        assert e.wait_metric("botgate_feed_refreshes_total", lambda v: v >= 1, feed="crowdsec", result="ok") >= 1
        cs.unban("192.0.2.17")
        # The ban is lifted at the next refresh (the session's score, raised by the blocked
        # requests, decays on its own: the vendor no longer names the address).
        assert until(lambda: b"vendor_crowdsec" not in visit(e, "192.0.2.17")[2], timeout=10)


def test_a_score_band_asks_only_about_the_requests_botgate_is_unsure_of(envoy_with, example_policy):
    """`score_band: [0.3, 0.75]`: a browser's page goes on without a callout (counted as skipped);
    a script naming a browser's user agent but sending nothing else is asked about, and the
    vendor's score decides it."""
    scoring = Upstream(script="scoring.py", args=(json.dumps({BAD: 0.99}),))
    try:
        policy = with_vendor(example_policy)
        policy["vendor_signals"] = {"score_band": [0.3, 0.75]}
        e = envoy_with(policy, feeds=scoring.port)
        count = lambda: int(urllib.request.urlopen(f"http://127.0.0.1:{scoring.port}/count", timeout=2).read())
        assert visit(e, BAD)[0] == 200
        assert count() == 0
        assert e.wait_metric("botgate_vendor_skipped_total", lambda v: v >= 1, reason="score_band") >= 1
        status, _, body = e.get("/", headers={"user-agent": BROWSER["user-agent"], "x-forwarded-for": BAD})
        assert count() == 1 and status in (401, 403) and b"vendor_acme" in body, (status, body)
    finally:
        scoring.close()
