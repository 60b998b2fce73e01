"""Debian's Prometheus on 127.0.0.1, scraping Envoys' /stats/prometheus every second with the
shipped alert rules; started and stopped by PID."""
import json
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from harness import free_port, stop

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    def __init__(self, admin_ports, rules_text):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-prom-"))
        self.port = free_port()
        (self.dir / "rules.yml").write_text(rules_text)
        targets = ", ".join(f'"127.0.0.1:{p}"' for p in admin_ports)
        (self.dir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n"
            "- job_name: envoy\n"
            "  metrics_path: /stats/prometheus\n"
            f"  static_configs: [{{targets: [{targets}]}}]\n")
        self.log = open(self.dir / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("prometheus did not become ready: " + (self.dir / "prometheus.log").read_text()[-2000:])

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        """The instant vector `expr` gives now: [(labels, value)]."""
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "scalar"), data
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def until(self, expr, predicate, timeout=30):
        """Polls `expr` until `predicate(result)` holds (the first samples take a few seconds)."""
        deadline = time.time() + timeout
        result = self.query(expr)
        while not predicate(result) and time.time() < deadline:
            time.sleep(0.5)
            result = self.query(expr)
        return result

    def alerts(self):
        return self.api("alerts")["alerts"]

    def close(self):
        stop(self.proc)
        self.log.close()
