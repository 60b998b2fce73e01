#!/usr/bin/env python3
"""`make demo`: Envoy with botgate and envoy/policy.example.json in front of the echo upstream.

Listens on 127.0.0.1:10000 (admin on 9901, upstream on 18080); Ctrl-C stops all of it.
"""
import json
import pathlib
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from harness import EXAMPLE_POLICY, Envoy, Upstream  # noqa: E402

LISTEN, ADMIN, UPSTREAM = 10000, 9901, 18080


def main():
    upstream = Upstream(UPSTREAM)
    policy = json.loads(EXAMPLE_POLICY.read_text())
    envoy = None
    try:
        envoy = Envoy(policy, upstream.port, port=LISTEN, admin=ADMIN)
        print(f"""
botgate demo is running (Envoy {envoy.dir}/envoy.yaml, access log {envoy.access_log})

  curl -si http://127.0.0.1:{LISTEN}/hello -H 'x-forwarded-for: 203.0.113.7'
      -> 200; the upstream's echo shows x-botgate-score / x-botgate-tier / x-botgate-reasons
  for i in $(seq 8); do curl -s -o /dev/null -w '%{{http_code}} ' http://127.0.0.1:{LISTEN}/ -H 'x-forwarded-for: 203.0.113.8'; done
      -> the bot detector flags the 6th identical request (warn: x-botgate-verdict: would_block upstream)
  for i in $(seq 45); do curl -s -o /dev/null -w '%{{http_code}} ' http://127.0.0.1:{LISTEN}/p$i -H 'x-forwarded-for: 203.0.113.9'; done
      -> 429 with retry-after after 40 requests a minute from one client
  curl -s http://127.0.0.1:{ADMIN}/stats/prometheus | grep ^botgate_
  tail -f {envoy.access_log}

Ctrl-C stops Envoy and the upstream.""", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while envoy.proc.poll() is None:
            time.sleep(0.5)
        print("Envoy exited:\n" + envoy.log_text()[-2000:])
    except KeyboardInterrupt:
        pass
    finally:
        if envoy:
            envoy.close()
        upstream.close()


if __name__ == "__main__":
    main()
