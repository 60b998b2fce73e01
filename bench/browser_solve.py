#!/usr/bin/env python3
"""How long a real browser takes to pass the proof-of-work interstitial at difficulty 4.

Starts Envoy + botgate (example policy, /members challenged) and the echo upstream on loopback,
then for each round a fresh headless Chromium profile navigates to /members, solves in its Web
Workers and lands on the upstream page. Reports, per round and as median (min–max):
  - solve: the page's own measure, from starting the workers to the solution (the `ms` it sends);
  - issue→verify: botgate's measure (its solve-time histogram), from issuing the puzzle to
    checking the solution: page load, worker start-up and the solve;
  - hashes/s: 16^difficulty expected hashes over the page's solve time (luck makes single rounds
    swing several-fold; the median over rounds is the figure to read).
    BROWSER_ROUNDS=15 bench/browser_solve.py     (default 9)
"""
import json
import os
import pathlib
import statistics
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "integration"))
from browser import Chromium  # noqa: E402
from harness import EXAMPLE_POLICY, Envoy, Upstream, challenge_members  # noqa: E402

ROUNDS = int(os.environ.get("BROWSER_ROUNDS", "9"))
# Headless Chromium names itself in its user agent, which raises the score and with it the
# difficulty (one more at 0.6); a desktop Chrome's user agent keeps the base difficulty.
DESKTOP_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"

DIFFICULTY = 4


def main():
    policy = challenge_members(json.loads(EXAMPLE_POLICY.read_text()))
    policy["tiers"]["challenge"]["proof_of_work"]["difficulty"] = DIFFICULTY
    upstream = Upstream()
    envoy = Envoy(policy, upstream.port)
    rows = []
    try:
        for i in range(ROUNDS):
            browser = Chromium(user_agent=DESKTOP_CHROME)
            try:
                # A client address per round (the policy trusts one proxy hop): a new anonymous
                # session, challenged afresh rather than remembered as cleared.
                browser.extra_headers({"x-forwarded-for": f"203.0.113.{10 + i}"})
                browser.navigate(f"http://127.0.0.1:{envoy.port}/members?round={i}")
                if not browser.wait_for("document.getElementById('asked') !== null", timeout=180):
                    raise RuntimeError(f"round {i}: the browser did not reach the upstream page")
            finally:
                browser.close()
            verifies = []
            for _ in range(30):
                entries = envoy.access_entries(want=1)
                verifies = [x for x in entries if x["path"].startswith("/.well-known/botgate/verify")]
                if len(verifies) > i:
                    break
            if len(verifies) <= i:
                raise RuntimeError(f"round {i}: no new verify in the access log (was the page challenged?)")
            verify = verifies[i]
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(verify["path"]).query)
            page_ms, difficulty = int(query["ms"][0]), int(query["challenge"][0].split(".")[2])
            if difficulty != DIFFICULTY:
                raise RuntimeError(f"round {i}: difficulty {difficulty}, not {DIFFICULTY} (score too high?)")
            rows.append((page_ms, verify["botgate"]["solve_ms"]))
            print(f"round {i + 1}: solve {page_ms} ms, issue→verify {verify['botgate']['solve_ms']} ms", flush=True)
    finally:
        envoy.close()
        upstream.close()

    def summary(values):
        return f"{statistics.median(values):.0f} ({min(values)}–{max(values)})"

    page, server = [r[0] for r in rows], [r[1] for r in rows]
    rate = [16 ** DIFFICULTY / (ms / 1000) for ms in page if ms > 0]
    lines = [
        f"Browser proof of work at difficulty {DIFFICULTY}, headless Chromium, {ROUNDS} rounds: median (min–max)",
        "",
        "| measure | ms |",
        "|---|---|",
        f"| solve (page: workers started → solution) | {summary(page)} |",
        f"| issue → verify (botgate: puzzle issued → solution checked) | {summary(server)} |",
        f"| expected hashes per second (16^{DIFFICULTY} ÷ solve) | {statistics.median(rate):.0f} |",
    ]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "browser.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
