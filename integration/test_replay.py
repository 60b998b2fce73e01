"""Issue 15 end to end: the shipped access log records what the engine reads, and `botgate
replay` run over it with the same policy gives the decisions Envoy made, request by request
(one worker: the replay's one engine sees what Envoy's one worker saw)."""
import json
import subprocess

from harness import BOTGATE, TEST_CLEARANCE_KEY

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BROWSER = {"user-agent": CHROME, "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
           "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none",
           "sec-ch-ua": '"Chromium";v="131", "Google Chrome";v="131"', "sec-ch-ua-mobile": "?0",
           "sec-ch-ua-platform": '"Linux"', "cookie": "theme=dark; sid=secret-value"}


def traffic(e):
    """People browsing, a library client, a listed address, a flood past the per-address limit."""
    sent = 0
    for i in range(6):
        for page in ("/", f"/products/{i}", "/about"):
            e.get(page, headers={**BROWSER, "x-forwarded-for": f"203.0.113.{10 + i}"})
            sent += 1
    for path in ("/", "/login", "/api/items"):
        e.get(path, headers={"user-agent": "python-requests/2.32", "x-forwarded-for": "198.51.100.20"})
        sent += 1
    e.request("POST", "/login", headers={"user-agent": CHROME, "x-forwarded-for": "198.51.100.21"})
    e.get("/", headers={**BROWSER, "x-forwarded-for": "198.18.0.5"})  # in the example's blocklist
    sent += 2
    for i in range(60):
        e.get(f"/items/{i}", headers={**BROWSER, "x-forwarded-for": "198.51.100.30"})
        sent += 1
    return sent


def test_replaying_envoys_access_log_gives_the_decisions_envoy_made(envoy_with, example_policy, tmp_path):
    e = envoy_with(example_policy)
    sent = traffic(e)
    entries = e.access_entries(want=sent, timeout=10)
    assert len(entries) == sent, len(entries)
    first = entries[0]
    assert first["headers"]["user-agent"] == CHROME and first["peer"] == "127.0.0.1", first
    assert first["botgate"]["cookies"] == ["theme", "sid"], first["botgate"]
    assert "secret-value" not in e.access_log.read_text()

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(example_policy))
    env = {"BOTGATE_CLEARANCE_KEY": TEST_CLEARANCE_KEY, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(BOTGATE), "replay", str(policy), str(e.access_log), "--decisions"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == sent, run.stderr
    differ = [(x["line"], x["path"], x["recorded"], x["outcome"]) for x in lines if x["recorded"] != x["outcome"]]
    assert not differ, differ
    outcomes = {x["outcome"] for x in lines}
    assert {"pass", "challenge", "block", "rate_limited"} <= outcomes, outcomes

    # The summary says the same, and a stricter policy's changes are listed request by request.
    summary = json.loads(subprocess.run([str(BOTGATE), "replay", str(policy), str(e.access_log)],
                                        capture_output=True, text=True, timeout=60, env=env).stdout)
    assert summary["recorded"] == {"compared": sent, "same_outcome": sent}, summary
    assert summary["top_clients"][0]["client"] in ("198.51.100.30", "198.51.100.20"), summary["top_clients"]
    stricter = dict(example_policy, ip_rate_limit={**example_policy["ip_rate_limit"], "max_requests": 20})
    (tmp_path / "stricter.json").write_text(json.dumps(stricter))
    compared = subprocess.run([str(BOTGATE), "replay", str(policy), str(e.access_log), "--compare",
                               str(tmp_path / "stricter.json")], capture_output=True, text=True, timeout=60, env=env)
    *changes, total = [json.loads(line) for line in compared.stdout.splitlines()]
    assert total["changed"] == len(changes) > 0, compared.stdout[-2000:]
    assert all(c["client"] == "198.51.100.30" and c["to"] == "rate_limited" for c in changes), changes[:3]
