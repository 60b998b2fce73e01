#!/usr/bin/env python3
"""`make fleet`: a fleet on loopback. Redis (behind webdis, its HTTP front end), two Envoys with
botgate sharing fleet-wide state (per-address limits, single-use solutions, failed sessions) on
127.0.0.1:10001 and :10002 (admins 9902 and 9903), and the demo upstream on 18081. Ctrl-C (or
SIGTERM) stops all of it.
"""
import json
import os
import secrets
import signal
import sys
import time
import pathlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fleet import Redis, Webdis  # noqa: E402
from harness import BOTGATE, EXAMPLE_POLICY, Envoy, Upstream, challenge_members, free_port  # noqa: E402

PORTS, ADMINS, UPSTREAM = (10001, 10002), (9902, 9903), 18081


def policy():
    p = json.loads(EXAMPLE_POLICY.read_text())
    challenge_members(p)
    p["fleet"] = {"cluster": "fleet", "timeout_ms": 300}
    p["ip_rate_limit"]["fleet"] = True
    return p


def main():
    # One clearance key for the fleet: its Envoys verify each other's puzzles and tokens.
    key = os.environ.get("BOTGATE_CLEARANCE_KEY") or secrets.token_hex(32)
    redis = webdis = upstream = None
    envoys = []
    try:
        redis = Redis(port=free_port())
        webdis = Webdis(redis.port)
        upstream = Upstream(UPSTREAM)
        for port, admin in zip(PORTS, ADMINS):
            envoys.append(Envoy(policy(), upstream.port, port=port, admin=admin, concurrency=2,
                                fleet=webdis.port, env={"BOTGATE_CLEARANCE_KEY": key}))
        a, b = PORTS
        ua = "-A 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' -H 'accept-language: en'"
        print(f"""
botgate fleet demo is running: Envoys on 127.0.0.1:{a} and :{b} (two workers each), Redis on
{redis.port} behind webdis on {webdis.port}, the upstream on {UPSTREAM}.

One per-address limit for the whole fleet (40 a minute): alternate between the Envoys and the
limit still holds, about 40 pass, then 429 with rate_limit_fleet:
  for i in $(seq 60); do p=$(( i % 2 ? {a} : {b} )); curl -s -o /dev/null -w '%{{http_code}} ' http://127.0.0.1:$p/p$i -H 'x-forwarded-for: 203.0.113.9' {ua}; sleep 0.1; done

A solution is spent once in the fleet: solve a puzzle from one Envoy, it clears there; sent to the
other it is a replay (pow_replayed):
  C=$(curl -s http://127.0.0.1:{a}/hello -H 'x-forwarded-for: 203.0.113.8' | python3 -c 'import json,sys; print(json.load(sys.stdin)["challenge"]["challenge"])')
  S=$({BOTGATE} pow solve $C)
  curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{a}/hello -H 'x-forwarded-for: 203.0.113.8' -H "x-botgate-pow-challenge: $C" -H "x-botgate-pow-solution: $S"
  curl -s http://127.0.0.1:{b}/hello -H 'x-forwarded-for: 203.0.113.8' -H "x-botgate-pow-challenge: $C" -H "x-botgate-pow-solution: $S"

A client that fails its puzzles on one Envoy is blocked on both within a second:
  for i in 1 2 3; do C=$(curl -s http://127.0.0.1:{a}/hello -H 'x-forwarded-for: 203.0.113.7' | python3 -c 'import json,sys; print(json.load(sys.stdin).get("challenge",{{}}).get("challenge",""))'); \\
    curl -s -o /dev/null -w '%{{http_code}} ' http://127.0.0.1:{a}/hello -H 'x-forwarded-for: 203.0.113.7' -H "x-botgate-pow-challenge: $C" -H 'x-botgate-pow-solution: 42'; done; sleep 1.5
  curl -s http://127.0.0.1:{b}/hello -H 'x-forwarded-for: 203.0.113.7'

Stop Redis (kill {redis.proc.pid}) to see the fleet degrade: each Envoy's own limits, solutions single use per
Envoy from puzzles younger than 30 s; botgate_fleet_* on http://127.0.0.1:{ADMINS[0]}/stats/prometheus.

Ctrl-C stops the Envoys, webdis, Redis and the upstream.""", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(e.proc.poll() is None for e in envoys):
            time.sleep(0.5)
        print("an Envoy exited:\n" + "".join(e.log_text()[-2000:] for e in envoys))
    except KeyboardInterrupt:
        pass
    finally:
        for e in envoys:
            e.close()
        for s in (webdis, redis, upstream):
            if s:
                s.close()


if __name__ == "__main__":
    main()
