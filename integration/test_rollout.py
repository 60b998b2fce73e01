"""Issue 16 end to end: configurations as Istio and Envoy Gateway load botgate. Their Wasm
settings cannot set `allow_on_headers_stop_iteration`; told so (`envoy.allow_on_headers_stop_
iteration: false`), botgate decides a body-watched request on its body without holding the
headers, and the request is answered, not stalled, with the detector still working."""
import http.client
import json
import socket
import time

from harness import ROOT

TEMPLATE = ROOT / "envoy" / "envoy.template.yaml"
API_CLIENT = {"user-agent": "acme-sync/2.1", "accept": "application/json", "content-type": "application/json",
              "accept-language": "en", "x-forwarded-for": "203.0.113.50"}


def without_stop_iteration(tmp_path):
    """The template as a mesh renders it: the flag unset (false)."""
    text = TEMPLATE.read_text()
    assert "allow_on_headers_stop_iteration: true" in text
    path = tmp_path / "mesh.template.yaml"
    path.write_text(text.replace("allow_on_headers_stop_iteration: true", "allow_on_headers_stop_iteration: false"))
    return path


def answer(e, body, timeout=5):
    """POSTs `body` to a watched path; (status, body) as soon as the answer is read (Envoy may
    close the connection of a local reply later)."""
    c = http.client.HTTPConnection("127.0.0.1", e.port, timeout=timeout)
    try:
        c.request("POST", "/v1/orders", body=body, headers=API_CLIENT)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def detector_blocking(policy):
    policy["bot_detector"] = {**policy["bot_detector"], "action": "block"}
    return policy


def test_a_body_request_is_answered_without_holding_headers_and_the_detector_still_works(envoy_with, example_policy,
                                                                                          tmp_path):
    policy = detector_blocking(example_policy)
    policy["envoy"] = {"allow_on_headers_stop_iteration": False}
    e = envoy_with(policy, template=without_stop_iteration(tmp_path))
    statuses, first = [], None
    for i in range(8):
        started = time.time()
        status, body = answer(e, json.dumps({"item": "sku-1", "qty": 1}))
        assert time.time() - started < 1.0, f"request {i} took {time.time() - started:.1f} s"
        statuses.append(status)
        first = first or body
    assert statuses[0] == 200 and 403 in statuses, statuses
    entries = [x["botgate"] for x in e.access_entries(want=8)]
    assert "fingerprint_repeat" in entries[-1]["reasons"], entries[-1]
    # The upstream had the whole body, and no verdict headers (the headers had gone on first).
    echo = json.loads(first)
    assert echo["body_bytes"] > 0 and not [k for k, _ in echo["headers"] if k.startswith("x-botgate-")], echo


def test_without_being_told_the_same_request_stalls(envoy_with, example_policy, tmp_path):
    """The control: the policy left at its default (headers held) under that configuration hangs
    the request, as the proxy-wasm host stops the body with the headers."""
    e = envoy_with(detector_blocking(example_policy), template=without_stop_iteration(tmp_path))
    try:
        answer(e, json.dumps({"item": "sku-1"}), timeout=2)
        stalled = False
    except (socket.timeout, TimeoutError):
        stalled = True
    assert stalled, "a held request under this configuration was expected to stall"
