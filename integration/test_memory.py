"""Bounded memory: a flood from a million distinct client addresses stays under the caps."""
import os
import shutil
import signal
import subprocess
import time

from harness import ROOT, render

# The test client connects through loopback: the trusted proxy that wrote its x-forwarded-for.
LOCAL_PROXY = ["127.0.0.1/32", "::1/128"]


FLOOD = int(os.environ.get("FLOOD_REQUESTS", "1000000"))
CAP = 10_000


def flood(e, requests):
    """Sends `requests` requests, each from a new address, and waits until Envoy has seen them."""
    wrk = shutil.which("wrk")
    assert wrk, "wrk is required (apt-get install wrk); make test installs it"
    target = e.metric("envoy_http_downstream_rq_total", envoy_http_conn_manager_prefix="ingress") + requests
    env = {**os.environ, "FLOOD_REQUESTS": str(requests)}
    # The script stops sending after `requests` answers; wrk itself only stops on its timer or
    # SIGINT, so it gets a SIGINT once Envoy has counted them all.
    proc = subprocess.Popen([wrk, "-t1", "-c32", "-d900s", "-s", str(ROOT / "integration" / "flood.lua"),
                             f"http://127.0.0.1:{e.port}/"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 900
        while time.time() < deadline and proc.poll() is None:
            if e.metric("envoy_http_downstream_rq_total", envoy_http_conn_manager_prefix="ingress") >= target:
                break
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert e.metric("envoy_http_downstream_rq_total", envoy_http_conn_manager_prefix="ingress") >= target, out
    return out


def test_a_million_client_addresses_keep_the_worker_under_its_caps(envoy_with):
    # Gauges are sums over Envoy's VMs (one per worker plus the main thread's, which serves no
    # requests): with one worker they are that worker's.
    e = envoy_with({
        "ip_rate_limit": {"max_requests": 40, "window_seconds": 60, "trust_proxy_depth": 1, "trusted_proxies": LOCAL_PROXY},
        "bot_detector": {"fingerprint_fields": ["user-agent", "client_ip", "path"], "max_requests_per_window": 5,
                         "action": "block"},
        "limits": {"max_clients": CAP, "max_fingerprints": CAP, "max_bodies": 1000},
    }, routes=render.DIRECT_RESPONSE_ROUTES, access_log="/dev/null")
    # Every table must be full before the early measurement: sessions hold up to 50,000.
    first = max(FLOOD // 10, 100_000)
    out = flood(e, first)
    time.sleep(1.5)
    memory_early = e.metric("botgate_memory_bytes")
    assert min(first, CAP) <= e.metric("botgate_tracked_entries", table="clients") <= CAP
    started = time.time()
    out += flood(e, FLOOD - first)
    elapsed = time.time() - started
    time.sleep(1.5)
    clients = e.metric("botgate_tracked_entries", table="clients")
    fingerprints = e.metric("botgate_tracked_entries", table="fingerprints")
    memory = e.metric("botgate_memory_bytes")
    evicted = e.wait_metric("botgate_evictions_total", lambda v: v >= FLOOD - CAP - 1000, table="clients")
    print(f"\nflood of {FLOOD} addresses ({elapsed:.0f} s for the last {FLOOD - first}): clients {clients:.0f}, "
          f"fingerprints {fingerprints:.0f}, evicted {evicted:.0f}, memory {memory_early / 2**20:.1f} MiB after "
          f"{first} -> {memory / 2**20:.1f} MiB after {FLOOD}")
    assert clients <= CAP and fingerprints <= CAP
    assert evicted >= FLOOD - CAP - 1000, "nearly every address was evicted once the table was full"
    # Once the tables are full, the worker's memory does not grow with more addresses.
    assert memory <= memory_early * 1.10, (memory_early, memory)
    assert memory < 64 * 2**20
    assert e.get("/", headers={"x-forwarded-for": "203.0.113.99"})[0] == 200
