#!/usr/bin/env python3
"""`make demo`: Envoy with botgate and envoy/policy.example.json in front of the echo upstream.

Listens on 127.0.0.1:10000 (admin on 9901, upstream on 18080); Ctrl-C stops all of it.
"""
import json
import os
import pathlib
import secrets
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from harness import BOTGATE, EXAMPLE_POLICY, Envoy, Upstream, challenge_members  # noqa: E402

LISTEN, ADMIN, UPSTREAM = 10000, 9901, 18080
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def main():
    upstream = Upstream(UPSTREAM)
    policy = json.loads(EXAMPLE_POLICY.read_text())
    # The clearance key signs puzzles and tokens; a demo gets a fresh one unless you bring yours.
    key = os.environ.get("BOTGATE_CLEARANCE_KEY") or secrets.token_hex(32)
    # The demo adds one page that always asks browsers for a proof of work, to show the interstitial.
    challenge_members(policy)
    envoy = None
    try:
        envoy = Envoy(policy, upstream.port, port=LISTEN, admin=ADMIN, env={"BOTGATE_CLEARANCE_KEY": key})
        b = f"-A '{BROWSER}' -H 'accept-language: en'"
        print(f"""
botgate demo is running (Envoy {envoy.dir}/envoy.yaml, access log {envoy.access_log})

A browser-like request passes; the upstream's echo shows the x-botgate-* headers botgate added:
  curl -s http://127.0.0.1:{LISTEN}/hello -H 'x-forwarded-for: 203.0.113.7' {b}

Plain curl looks like an HTTP library with no accept-language: challenged with a proof of work
(401, JSON). Solve it with the CLI and retry with the solution; the answer carries a clearance cookie:
  C=$(curl -s http://127.0.0.1:{LISTEN}/hello -H 'x-forwarded-for: 203.0.113.8' | python3 -c 'import json,sys; print(json.load(sys.stdin)["challenge"]["challenge"])')
  curl -si http://127.0.0.1:{LISTEN}/hello -H 'x-forwarded-for: 203.0.113.8' -H "x-botgate-pow-challenge: $C" \
    -H "x-botgate-pow-solution: $({BOTGATE} pow solve $C)"

Open http://127.0.0.1:{LISTEN}/members in a browser: the interstitial (the demo challenges this page at any
score), solved by your browser in a few seconds, then the upstream's page; the next visit goes straight
through. This demo's clearance key is BOTGATE_CLEARANCE_KEY={key}

40 requests a minute per client, then 429 with retry-after:
  for i in $(seq 45); do curl -s -o /dev/null -w '%{{http_code}} ' http://127.0.0.1:{LISTEN}/p$i -H 'x-forwarded-for: 203.0.113.9' {b}; done

Near-duplicate prompts to an AI endpoint: the 6th is flagged (warn mode: x-botgate-verdict: would_block upstream):
  for w in one two three four five six; do curl -s http://127.0.0.1:{LISTEN}/v1/chat -H 'x-forwarded-for: 203.0.113.10' {b} \\
    -d "{{\\"model\\":\\"m\\",\\"prompt\\":\\"summarise the internal refund policy for our enterprise customers, list every exception the support team may grant and quote the exact thresholds above which a manager must approve, attempt {{$w}}\\"}}" | grep -o '"x-botgate-verdict", "[a-z_]*"'; done

A client in the example threat-intel list is blocked (403):
  curl -si http://127.0.0.1:{LISTEN}/ -H 'x-forwarded-for: 198.18.0.1' {b}

Evidence: curl -s http://127.0.0.1:{ADMIN}/stats/prometheus | grep ^botgate_   and   tail -f {envoy.access_log}

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
