"""Issue 15 end to end: real Envoy and Debian's real Prometheus scraping /stats/prometheus. After
known traffic every dashboard query and alert expression answers through Prometheus's HTTP API
with the expected series, the score histogram has the policy's bands as bucket edges, and the
policy-drift alert fires for the Envoy whose policy is not the repository's."""
import json
import re
import subprocess

from harness import BOTGATE, EXAMPLE_POLICY, ROOT
from prometheus import Prometheus

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BROWSER = {"user-agent": CHROME, "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
           "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none"}
DASHBOARD = ROOT / "envoy" / "grafana" / "botgate-dashboard.json"
RULES = ROOT / "envoy" / "prometheus" / "botgate-alerts.yml"


def repo_hash():
    out = subprocess.run([str(BOTGATE), "lint", str(EXAMPLE_POLICY)], capture_output=True, text=True).stdout
    return re.search(r"hash ([0-9a-f]{16})", out).group(1)


def traffic(e):
    for i in range(5):
        assert e.get(f"/p/{i}", headers={**BROWSER, "x-forwarded-for": f"203.0.113.{20 + i}"})[0] == 200
    bot = {"user-agent": "python-requests/2.32", "accept": "text/html", "x-forwarded-for": "198.51.100.40"}
    assert e.get("/", headers=bot)[0] in (401, 403)  # challenged
    # That client says it was stopped wrongly, from the challenge page's own form.
    assert e.post("/.well-known/botgate/report?id=r1", headers={**bot, "sec-fetch-site": "same-origin"})[0] == 200
    assert e.get("/", headers={**BROWSER, "x-forwarded-for": "198.18.0.5"})[0] == 403  # listed
    statuses = [e.get(f"/i/{i}", headers={**BROWSER, "x-forwarded-for": "198.51.100.41"})[0] for i in range(45)]
    assert 429 in statuses


def test_the_dashboard_and_alerts_answer_through_real_prometheus(envoy_with, example_policy):
    ours = envoy_with(example_policy)
    drifted = envoy_with({**example_policy, "ip_rate_limit": {**example_policy["ip_rate_limit"], "max_requests": 41}})
    # The shipped rules, with their `for` periods cut so a test can see them fire.
    rules = re.sub(r"for: \d+[smh]", "for: 0s", RULES.read_text())
    prom = Prometheus([ours.admin, drifted.admin], rules)
    try:
        # Both Envoys scraped once before the traffic, so every counter's rise is seen.
        assert len(prom.until("up == 1", lambda r: len(r) == 2)) == 2
        traffic(ours)
        ours.wait_metric("botgate_false_positive_reports_total", lambda v: v >= 1)
        panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in json.loads(DASHBOARD.read_text())["panels"]}

        outcomes = prom.until(panels["Requests by outcome"][0],
                              lambda r: {"pass", "challenge", "block", "rate_limited"} <= {m.get("outcome") for m, v in r if v > 0})
        assert {"pass", "challenge", "block", "rate_limited"} <= {m.get("outcome") for m, v in outcomes if v > 0}, outcomes
        buckets = prom.until(panels["Score distribution"][0], lambda r: {"300", "750"} <= {m.get("le") for m, _ in r})
        assert {"300", "750"} <= {m.get("le") for m, _ in buckets}, "the policy's bands are bucket edges"
        tiers = prom.until(panels["Blocked by tier"][0],
                           lambda r: {"block", "rate_limit", "challenge"} <= {m.get("tier") for m, v in r if v > 0})
        assert {"block", "rate_limit", "challenge"} <= {m.get("tier") for m, v in tiers if v > 0}, tiers
        reports = prom.until(panels["False-positive reports (24h)"][0], lambda r: r and r[0][1] > 0)
        assert reports and reports[0][1] > 0, reports
        loaded = prom.until(panels["Policy loaded"][0], lambda r: len(r) == 2)
        hashes = {m["hash"] for m, v in loaded if v > 0}
        assert repo_hash() in hashes and len(hashes) == 2, (hashes, repo_hash())
        # Every panel's query is valid PromQL over names botgate exports.
        for title, exprs in panels.items():
            for expr in exprs:
                prom.query(expr)

        # Every alert expression evaluates; the drift alert fires for the other Envoy only.
        import yaml
        for rule in (r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]):
            prom.query(rule["expr"])
        drift = other = None
        for _ in range(60):
            alerts = prom.alerts()
            drift = [a for a in alerts if a["labels"]["alertname"] == "BotgatePolicyDrift" and a["state"] == "firing"]
            other = [a for a in alerts if a["labels"]["alertname"] == "BotgateFalsePositiveReports"]
            if drift:
                break
            import time
            time.sleep(0.5)
        assert drift and {a["labels"]["hash"] for a in drift} == hashes - {repo_hash()}, alerts
        assert not other, "one report is not an alert"
    finally:
        prom.close()
