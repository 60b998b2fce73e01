"""Debian's CrowdSec Local API on loopback for the tests (no agent, no Central API), with a
bouncer key and decisions added and removed through `cscli`; started and stopped by PID."""
import pathlib
import shutil
import subprocess
import tempfile

from harness import free_port, stop, wait_port

CROWDSEC = shutil.which("crowdsec") or "/usr/bin/crowdsec"
CSCLI = shutil.which("cscli") or "/usr/bin/cscli"

CONFIG = """common: {{daemonize: false, log_media: stdout, log_level: info, working_dir: .}}
config_paths:
  config_dir: {dir}/
  data_dir: {dir}/data/
  simulation_path: /etc/crowdsec/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: {dir}/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
db_config: {{type: sqlite, db_path: {dir}/data/crowdsec.db}}
api:
  client: {{credentials_path: {dir}/local_api_credentials.yaml}}
  server: {{listen_uri: "127.0.0.1:{port}", profiles_path: /etc/crowdsec/profiles.yaml, trusted_ips: [127.0.0.1]}}
prometheus: {{enabled: false}}
"""


class CrowdSec:
    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-crowdsec-"))
        (self.dir / "data").mkdir()
        self.port = free_port()
        self.config = self.dir / "config.yaml"
        self.config.write_text(CONFIG.format(dir=self.dir, port=self.port))
        (self.dir / "local_api_credentials.yaml").write_text(f"url: http://127.0.0.1:{self.port}\n")
        self.cscli("machines", "add", "botgate-tests", "--auto", "-f", str(self.dir / "local_api_credentials.yaml"),
                   "--force")
        self.log = open(self.dir / "crowdsec.log", "w")
        self.proc = subprocess.Popen([CROWDSEC, "-c", str(self.config), "-no-cs"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if not wait_port(self.port, 10):
            self.close()
            raise RuntimeError((self.dir / "crowdsec.log").read_text())
        self.bouncer_key = self.cscli("bouncers", "add", "botgate", "-o", "raw").strip()

    def cscli(self, *args):
        return subprocess.run([CSCLI, "-c", str(self.config), *args], check=True, capture_output=True,
                              text=True, timeout=20).stdout

    def ban(self, ip):
        self.cscli("decisions", "add", "--ip", ip, "--duration", "1h", "--type", "ban")

    def captcha(self, ip):
        self.cscli("decisions", "add", "--ip", ip, "--duration", "1h", "--type", "captcha")

    def unban(self, ip):
        self.cscli("decisions", "delete", "--ip", ip)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        stop(self.proc)
        self.log.close()
