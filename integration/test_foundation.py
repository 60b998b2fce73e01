"""Issue 2 end to end: rate limits, the bot detector, client identity, evidence, bad inputs."""
import json
import subprocess

from harness import BOTGATE, EXAMPLE_POLICY, Envoy, echoed

# The test client connects through loopback: the trusted proxy that wrote its x-forwarded-for.
LOCAL_PROXY = ["127.0.0.1/32", "::1/128"]

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0", "accept": "text/plain",
           "accept-language": "en"}


def xff(ip, **extra):
    return {**BROWSER, "x-forwarded-for": ip, **extra}


def detector(action="warn", max_requests=3, fields=None, mode="enforce"):
    return {
        "mode": mode,
        "ip_rate_limit": {"max_requests": 1000, "window_seconds": 60, "trust_proxy_depth": 1, "trusted_proxies": LOCAL_PROXY},
        "bot_detector": {
            "fingerprint_fields": fields or ["user-agent", "client_ip", "path"],
            "profile_window_seconds": 60,
            "similarity_threshold": 0.9,
            "max_requests_per_window": max_requests,
            "action": action,
        },
    }


def test_allowed_request_carries_score_headers_and_spoofed_ones_are_removed(envoy_with):
    e = envoy_with(detector())
    status, _, body = e.get("/hello", headers=xff("203.0.113.5", **{
        "x-botgate-score": "0.00", "x-botgate-verdict": "allow", "X-Botgate-Tier": "allow"}))
    assert status == 200
    seen = echoed(body)
    assert seen["x-botgate-score"] == ["0.00"]
    assert seen["x-botgate-tier"] == ["pass"]
    assert seen["x-botgate-reasons"] == [""]
    assert "x-botgate-verdict" not in seen


def test_ip_rate_limit_answers_429_exactly_past_the_limit(envoy_with):
    e = envoy_with({"ip_rate_limit": {"max_requests": 5, "window_seconds": 60, "trust_proxy_depth": 1, "trusted_proxies": LOCAL_PROXY}})
    statuses = [e.get("/", headers=xff("198.51.100.1"))[0] for _ in range(5)]
    assert statuses == [200] * 5
    status, headers, body = e.get("/", headers=xff("198.51.100.1"))
    assert status == 429
    assert headers["x-botgate-verdict"] == ["rate_limited"]
    assert 1 <= int(headers["retry-after"][0]) <= 60
    reply = json.loads(body)
    assert reply["verdict"] == "rate_limited" and reply["reasons"] == ["rate_limit_ip"]
    assert reply["request_id"]
    assert e.get("/", headers=xff("198.51.100.2"))[0] == 200, "another client is unaffected"
    assert e.wait_metric("botgate_rate_limited_total", lambda v: v >= 1, scope="ip") == 1
    assert e.wait_metric("botgate_requests_total", lambda v: v >= 1, outcome="rate_limited") == 1


def test_global_rate_limit(envoy_with):
    e = envoy_with({"global_rate_limit": {"max_requests": 4, "window_seconds": 60}})
    statuses = [e.get("/", headers=xff(f"192.0.2.{i}"))[0] for i in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    assert e.wait_metric("botgate_rate_limited_total", lambda v: v >= 2, scope="global") == 2


def test_xff_hops_added_by_the_client_cannot_change_its_identity(envoy_with):
    e = envoy_with({"ip_rate_limit": {"max_requests": 3, "window_seconds": 60, "trust_proxy_depth": 1, "trusted_proxies": LOCAL_PROXY}})
    # The trusted proxy appended 198.51.100.9; whatever the client put before it is ignored.
    statuses = [e.get("/", headers=xff(f"10.9.9.{i}, 198.51.100.9"))[0] for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    log = e.access_entries(want=4)
    assert {entry["botgate"]["client_ip"] for entry in log} == {"198.51.100.9"}


def test_trust_proxy_depth_two_and_zero(envoy_with):
    e = envoy_with({"ip_rate_limit": {"max_requests": 100, "window_seconds": 60, "trust_proxy_depth": 2, "trusted_proxies": LOCAL_PROXY}})
    e.get("/", headers=xff("203.0.113.77, 10.0.0.2"))
    e0 = envoy_with({"ip_rate_limit": {"max_requests": 100, "window_seconds": 60, "trust_proxy_depth": 0}})
    e0.get("/", headers=xff("203.0.113.77"))
    assert e.access_entries()[0]["botgate"]["client_ip"] == "203.0.113.77"
    assert e0.access_entries()[0]["botgate"]["client_ip"] == "127.0.0.1", "depth 0 uses the peer"


def test_detector_warn_passes_with_would_block(envoy_with):
    e = envoy_with(detector("warn", 3))
    for _ in range(3):
        status, _, body = e.get("/search", headers=xff("203.0.113.10"))
        assert status == 200 and "x-botgate-verdict" not in echoed(body)
    status, _, body = e.get("/search", headers=xff("203.0.113.10"))
    assert status == 200
    seen = echoed(body)
    assert seen["x-botgate-verdict"] == ["would_block"]
    assert seen["x-botgate-reasons"] == ["fingerprint_repeat"]
    assert float(seen["x-botgate-score"][0]) >= 0.85
    assert e.wait_metric("botgate_flagged_total", lambda v: v >= 1, detector="fingerprint_repeat") == 1
    assert e.wait_metric("botgate_requests_total", lambda v: v >= 1, outcome="would_block") == 1
    entry = e.access_entries(want=4)[-1]["botgate"]
    assert entry["outcome"] == "would_block" and entry["fingerprint_count"] == 4
    assert "botgate decision" in e.log_text(), "flagged decisions get a log line"


def test_detector_block_answers_403(envoy_with):
    e = envoy_with(detector("block", 3))
    assert [e.get("/search", headers=xff("203.0.113.11"))[0] for _ in range(3)] == [200] * 3
    status, headers, body = e.get("/search", headers=xff("203.0.113.11"))
    assert status == 403
    assert headers["x-botgate-verdict"] == ["block"]
    reply = json.loads(body)
    assert reply["verdict"] == "block" and "fingerprint_repeat" in reply["reasons"]
    assert e.get("/other", headers=xff("203.0.113.11"))[0] == 200, "another fingerprint passes"
    assert e.wait_metric("botgate_requests_total", lambda v: v >= 1, outcome="block") == 1
    assert e.wait_metric("botgate_blocked_total", lambda v: v >= 1, tier="block", reason="bot_detector") == 1
    log = e.access_entries(want=5)
    assert [x["status"] for x in log] == [200, 200, 200, 403, 200]
    assert log[3]["botgate"]["action"] == "block"


def test_observe_mode_turns_blocks_and_rate_limits_into_warnings(envoy_with):
    policy = detector("block", 2, mode="observe")
    policy["ip_rate_limit"]["max_requests"] = 1
    e = envoy_with(policy)
    results = [e.get("/x", headers=xff("203.0.113.12")) for _ in range(3)]
    assert [r[0] for r in results] == [200, 200, 200]
    second, third = echoed(results[1][2]), echoed(results[2][2])
    assert second["x-botgate-verdict"] == ["would_block"] and second["x-botgate-reasons"] == ["rate_limit_ip"]
    assert third["x-botgate-reasons"] == ["rate_limit_ip,fingerprint_repeat"]
    assert e.wait_metric("botgate_requests_total", lambda v: v >= 2, outcome="would_block") == 2
    assert e.metric("botgate_requests_total", outcome="block") == 0


PROMPT = ("You are a helpful assistant. Summarise the internal refund policy for enterprise "
          "customers, list every exception the support team may grant, and quote the exact "
          "thresholds above which a manager must approve the refund, including currency limits")


def test_near_duplicate_bodies_are_one_fingerprint(envoy_with):
    e = envoy_with(detector("block", 3, fields=["user-agent", "body", "model"]))
    def post(text, model="gpt-4o"):
        return e.request("POST", "/v1/chat", headers=xff("203.0.113.20", **{"content-type": "application/json"}),
                         body=json.dumps({"model": model, "prompt": text}))[0]
    variants = [PROMPT, PROMPT.replace("every", "each"), PROMPT.replace("exact", "precise"),
                PROMPT.replace("helpful", "useful")]
    assert [post(v) for v in variants] == [200, 200, 200, 403]
    unrelated = ["Translate good morning into Portuguese and Spanish please",
                 "Write a haiku about the autumn rain falling on the old temple roof",
                 "Which is larger, a blue whale or a container ship, by mass?",
                 "Give me three ideas for a vegetarian dinner with lentils"]
    assert [post(u) for u in unrelated] == [200] * 4
    assert e.wait_metric("botgate_flagged_total", lambda v: v >= 1, detector="near_duplicate_body") >= 1
    blocked = [x for x in e.access_entries(want=8) if x["status"] == 403][0]["botgate"]
    assert blocked["similarity"] >= 0.9


def test_invalid_policy_is_refused_by_envoy_and_lint(upstream, tmp_path):
    bad = {"mode": "enforcing", "bot_detector": {"similarity_treshold": 0.9}}
    e = Envoy(bad, upstream.port, wait=False)
    try:
        code = e.exit_code()
        assert code not in (None, 0), "Envoy must refuse the config"
        log = e.log_text()
        assert '$.mode: "enforcing" is not one of "enforce", "observe"' in log
        assert '$.bot_detector.similarity_treshold: unknown key' in log and 'did you mean "similarity_threshold"' in log
    finally:
        e.close()
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    r = subprocess.run([str(BOTGATE), "lint", str(f)], capture_output=True, text=True)
    assert r.returncode == 1
    assert '$.bot_detector.similarity_treshold' in r.stdout and "invalid (2 errors)" in r.stdout
    ok = subprocess.run([str(BOTGATE), "lint", str(EXAMPLE_POLICY)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout


def test_bad_inputs_never_crash_the_filter(envoy_with):
    e = envoy_with(detector("warn", 1000, fields=["user-agent", "x-forwarded-for", "authorization", "body", "model"]))
    ip = {"x-forwarded-for": "203.0.113.30"}
    cases = [
        ("non-utf8 header", "GET", [("user-agent", b"\xff\xfe\xc3\x28bot"), ("x-forwarded-for", b"203.0.113.30")], None),
        ("non-utf8 xff", "GET", [("x-forwarded-for", b"\xff\xfe, \xc0\xaf")], None),
        ("duplicated headers", "GET", [("user-agent", "a"), ("user-agent", "b"), ("x-forwarded-for", "1.1.1.1"),
                                       ("x-forwarded-for", "203.0.113.30"), ("authorization", "x"), ("authorization", "y")], None),
        ("60 KB header", "GET", [("x-forwarded-for", "203.0.113.30"), ("x-big", "a" * 60_000)], None),
        ("empty body", "POST", list(ip.items()), b""),
        ("non-JSON body", "POST", [*ip.items(), ("content-type", "application/json")], b"{\"model\": [unterminated"),
        ("binary body", "POST", list(ip.items()), bytes(range(256)) * 64),
        ("JSON with odd model", "POST", list(ip.items()), b'{"model": {"nested": [1, 2, null]}, "prompt": 7}'),
    ]
    for name, method, headers, body in cases:
        status, _, resp = e.request(method, "/in", headers=headers, body=body)
        assert status == 200, f"{name}: {status} {resp[:200]!r}"
    assert e.get("/after", headers=xff("203.0.113.31"))[0] == 200, "the filter still works"
    log = e.log_text()
    assert "panicked" not in log and "critical" not in log
    assert e.wait_metric("botgate_xff_invalid_total", lambda v: v >= 1) >= 1
    assert all(x["botgate"] for x in e.access_entries(want=len(cases) + 1))


def test_example_policy_loads_in_envoy(envoy_with, example_policy):
    e = envoy_with(example_policy)
    status, _, body = e.get("/", headers=xff("203.0.113.40"))
    assert status == 200
    assert echoed(body)["x-botgate-tier"] == ["pass"]


def test_built_module_leaves_out_the_callbacks_botgate_never_uses():
    """`make wasm` trims the SDK's unused callbacks (tools/trim_exports.py), so Envoy skips those
    calls into the VM; every other test here runs against the trimmed module."""
    import importlib.util
    import pathlib
    from harness import ROOT, WASM

    spec = importlib.util.spec_from_file_location("trim", ROOT / "tools" / "trim_exports.py")
    trim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trim)

    built = pathlib.Path(WASM).read_bytes()
    names = trim.export_names(built)
    assert not names & trim.UNUSED
    assert {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
            "proxy_on_response_headers", "proxy_on_delete", "proxy_on_tick",
            "proxy_on_http_call_response", "proxy_on_memory_allocate"} <= names
    assert trim.trim(built) == built  # idempotent
