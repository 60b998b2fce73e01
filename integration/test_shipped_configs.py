"""The configurations shipped for users are checked without a Docker engine or a cluster."""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

from harness import ROOT, WASM, ENVOY, BOTGATE

sys.path.insert(0, str(ROOT / "envoy"))
import render  # noqa: E402

yaml = pytest.importorskip("yaml")


def test_rendered_envoy_configs_are_current_and_valid():
    policy = (ROOT / "envoy" / "policy.example.json").read_text()
    for name, per_route in [("envoy.yaml", False), ("envoy.per-route.yaml", True)]:
        shipped = (ROOT / "envoy" / name).read_text()
        assert shipped == render.render(policy, per_route=per_route), f"run `make envoy-config`: {name} is stale"
        # Envoy's own validation (no listener is opened).
        r = subprocess.run([ENVOY, "--mode", "validate", "-c", str(ROOT / "envoy" / name)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_compose_file_points_at_real_files():
    compose = yaml.safe_load((ROOT / "envoy" / "docker-compose.yaml").read_text())
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = (ROOT / "envoy" / volume.split(":")[0]).resolve()
            assert source.exists() or source == WASM.resolve(), f"{volume}: missing {source}"
    # Debian's docker-compose (installed by `make system-deps`) validates it without an engine.
    compose_cli = shutil.which("docker-compose")
    assert compose_cli, "docker-compose is not installed (make system-deps)"
    r = subprocess.run([compose_cli, "-f", str(ROOT / "envoy" / "docker-compose.yaml"), "config", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dockerfile = (ROOT / "envoy" / "Dockerfile.plugin").read_text()
    assert "plugin.wasm" in dockerfile and str(WASM.relative_to(ROOT)) in dockerfile


def test_alert_rules_and_dashboard_query_metrics_botgate_exports():
    """Every metric an alert or a dashboard panel reads is one botgate defines (in the counters
    table, or named where it is counted: a feed's, a vendor's), with a label value it sets."""
    import fnmatch
    import re
    sources = sorted((ROOT / "src").rglob("*.rs"))
    exported = {re.sub(r"\{[^}]*\}", "*", n) for f in sources for n in re.findall(r'"(botgate_[\w.{}]+)', f.read_text())}
    rules = yaml.safe_load((ROOT / "envoy" / "prometheus" / "botgate-alerts.yml").read_text())
    dashboard = json.loads((ROOT / "envoy" / "grafana" / "botgate-dashboard.json").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) > 20
    for expr in exprs:
        for name, labels in re.findall(r'(botgate_\w+)(?:\{([^}]*)\})?', expr):
            name = re.sub(r"_(bucket|sum|count)$", "", name) if name.endswith(("_bucket", "_sum", "_count")) else name
            series = [n for n in exported if fnmatch.fnmatch(name, n.split(".")[0])]
            assert series, f"{name} is not a botgate metric"
            for key, op, value in re.findall(r'(\w+)(=|!=)"([^"]*)"', labels):
                if op == "=":
                    assert any(f".{key}.{value}." in n + "." or f".{key}.*" in n for n in series), \
                        f"{name}{{{key}={value!r}}} is never set"


def test_the_compose_harness_envoy_configuration_runs_as_shipped(tmp_path):
    """The compose file runs envoy/envoy.yaml as it is in the repository (host network, ports
    10000 and 9901, the upstream on 18080, the wasm at its repository path): the same file, run
    here by the tests' Envoy from the repository root, answers with botgate's verdict."""
    import urllib.request
    from harness import Upstream, stop, wait_port
    compose = yaml.safe_load((ROOT / "envoy" / "docker-compose.yaml").read_text())
    assert "./envoy.yaml:/etc/envoy/envoy.yaml:ro" in compose["services"]["envoy"]["volumes"]
    assert compose["services"]["envoy"]["working_dir"] == "/srv/botgate"
    upstream = Upstream(port=18080)
    envoy = subprocess.Popen([ENVOY, "-c", str(ROOT / "envoy" / "envoy.yaml"), "--concurrency", "2",
                              "--disable-hot-restart", "--log-path", str(tmp_path / "envoy.log")],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port(10000, 30), (tmp_path / "envoy.log").read_text()[-2000:]
        req = urllib.request.Request("http://127.0.0.1:10000/", headers={
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            "accept": "application/json", "accept-language": "en"})
        with urllib.request.urlopen(req, timeout=5) as r:
            echo = json.loads(r.read())
        assert any(k == "x-botgate-score" for k, _ in echo["headers"]), echo
    finally:
        stop(envoy)
        upstream.close()
