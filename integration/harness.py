"""Real Envoy + botgate + an echo upstream on 127.0.0.1, started and stopped by PID."""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
import render  # noqa: E402

ENVOY = os.environ.get("ENVOY", str(ROOT / ".venv" / "bin" / "envoy"))
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "botgate.wasm"
BOTGATE = ROOT / "target" / "release" / "botgate"
EXAMPLE_POLICY = ROOT / "envoy" / "policy.example.json"
# The example policy reads its clearance key from this variable; every test Envoy gets it.
TEST_CLEARANCE_KEY = "integration-clearance-key-0123456789abcdef"


def challenge_members(policy):
    """`policy` with `/members` challenged at any score below the block threshold: the page the
    demo, the browser tests and the browser benchmark show the challenges on."""
    policy["tiers"]["challenge"]["conditions"].insert(0, {"bot_score_range": [0.0, 0.85], "endpoint_in": ["/members"]})
    return policy


class lo_alias:
    """`with lo_alias("198.18.0.9"):` adds the address to `lo` (as root, or with passwordless
    sudo) so a test client connects *from* it; removed afterwards."""

    def __init__(self, ip):
        self.ip = ip
        self.sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]

    def __enter__(self):
        subprocess.run([*self.sudo, "ip", "addr", "add", f"{self.ip}/32", "dev", "lo"], check=True,
                       stderr=subprocess.DEVNULL)
        return self.ip

    def __exit__(self, *exc):
        subprocess.run([*self.sudo, "ip", "addr", "del", f"{self.ip}/32", "dev", "lo"], check=False,
                       stderr=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Upstream:
    """The echo upstream, or another server script under integration/ taking PORT then `args`."""

    def __init__(self, port=None, script="upstream.py", args=(), env=None):
        self.port = port or free_port()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "integration" / script), str(self.port), *args],
                                     env={**os.environ, **(env or {})})
        if not wait_port(self.port):
            stop(self.proc)
            raise RuntimeError("upstream did not start")

    def close(self):
        stop(self.proc)


class FileServer:
    """A static file server on 127.0.0.1 (Python's http.server), stopped by PID."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-feeds-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1", "--directory", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            stop(self.proc)
            raise RuntimeError("file server did not start")

    def put(self, name, text):
        (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(self.dir / name)

    def remove(self, name):
        (self.dir / name).unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop(self.proc)


def until(check, timeout=8.0):
    """Polls `check` until it holds or `timeout` seconds pass; its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


class Envoy:
    """One Envoy with botgate and `policy` (dict or JSON text) in front of `upstream_port`."""

    def __init__(self, policy, upstream_port, concurrency=1, template=None, wait=True, port=None, admin=None,
                 per_route=False, env=None, routes=None, access_log=None, tls=None, doh=None,
                 feeds=None, fleet=None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-it-"))
        self.port, self.admin = port or free_port(), admin or free_port()
        self.access_log = pathlib.Path(access_log) if access_log else self.dir / "access.log"
        self.log = self.dir / "envoy.log"
        config = render.render(policy, self.port, self.admin, upstream_port, str(WASM), str(self.access_log),
                               template=template, per_route=per_route, routes=routes, tls=tls,
                               doh=doh or free_port(), feeds=feeds or free_port(),
                               fleet=fleet or free_port())
        (self.dir / "envoy.yaml").write_text(config)
        self.proc = subprocess.Popen(
            [ENVOY, "-c", str(self.dir / "envoy.yaml"), "--concurrency", str(concurrency),
             "--disable-hot-restart", "--file-flush-interval-msec", "100", "--log-level", "info",
             "--log-path", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "BOTGATE_CLEARANCE_KEY": TEST_CLEARANCE_KEY, **(env or {})})
        if wait and not self.wait_ready():
            out = self.log_text()
            self.close()
            raise RuntimeError(f"envoy did not become ready:\n{out[-4000:]}")

    @classmethod
    def attach(cls, port, admin=None):
        """An Envoy something else started (a demo): its HTTP client and evidence, no process."""
        e = cls.__new__(cls)
        e.port, e.admin, e.proc = port, admin, None
        return e

    def wait_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200 and wait_port(self.port, 1):
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def exit_code(self, timeout=30.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self):
        stop(self.proc)

    # --- HTTP -------------------------------------------------------------------------------
    def request(self, method="GET", path="/", headers=None, body=None, timeout=10, source=None):
        """Sends one HTTP/1.1 request with raw bytes; returns (status, headers dict of lists, body).
        `source`: the address to connect from (an alias on `lo`, see `lo_alias`)."""
        head = [f"{method} {path} HTTP/1.1".encode(), b"host: app.test"]
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            head.append((k.encode() if isinstance(k, str) else k) + b": " + (v.encode() if isinstance(v, str) else v))
        if body is not None:
            body = body.encode() if isinstance(body, str) else body
            head.append(b"content-length: " + str(len(body)).encode())
        head.append(b"connection: close")
        raw = b"\r\n".join(head) + b"\r\n\r\n" + (body or b"")
        src = (source, 0) if source else None
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout, source_address=src) as s:
            s.sendall(raw)
            data = b""
            while not complete(data, method):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return parse_response(data)

    def get(self, path="/", **kw):
        return self.request("GET", path, **kw)

    def post(self, path="/", body=b"", **kw):
        return self.request("POST", path, body=body, **kw)

    # --- Evidence -----------------------------------------------------------------------------
    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats/prometheus", timeout=5) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        """The value of one Prometheus series (0 when absent)."""
        want = {k: str(v) for k, v in labels.items()}
        for line in self.stats().splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
            if all(got.get(k) == v for k, v in want.items()):
                return float(m.group(4))
        return 0.0

    def wait_metric(self, name, predicate, timeout=5.0, **labels):
        """Counters are flushed on botgate's 1 s tick: poll until `predicate(value)`."""
        deadline = time.time() + timeout
        value = self.metric(name, **labels)
        while not predicate(value) and time.time() < deadline:
            time.sleep(0.2)
            value = self.metric(name, **labels)
        return value

    def access_entries(self, timeout=3.0, want=1):
        """Parsed access-log lines, each with its botgate decision parsed too."""
        deadline = time.time() + timeout
        while True:
            lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
            if len(lines) >= want or time.time() > deadline:
                break
            time.sleep(0.1)
        out = []
        for line in lines:
            entry = json.loads(line)
            raw = entry.get("botgate")
            entry["botgate"] = json.loads(raw) if raw and raw != "-" else None
            out.append(entry)
        return out


def complete(data, method):
    """Whether `data` holds a whole response (its content-length or last chunk read): Envoy
    closes a local reply's connection only after its delayed-close timeout, a second later."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.lower().split(b"\r\n")
    status = lines[0].split()[1] if len(lines[0].split()) > 1 else b""
    if method == "HEAD" or status in (b"204", b"304") or status.startswith(b"1"):
        return True
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip() == b"content-length":
            return len(body) >= int(v.strip() or 0)
        if k.strip() == b"transfer-encoding" and b"chunked" in v:
            return body.endswith(b"0\r\n\r\n")
    return False


def parse_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.setdefault(k.decode().strip().lower(), []).append(v.decode(errors="replace").strip())
    if "chunked" in ",".join(headers.get("transfer-encoding", [])):
        body = dechunk(body)
    return status, headers, body


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def echoed(body):
    """Headers the upstream received, as a dict of lists."""
    if body.lstrip().startswith(b"<"):
        body = body.split(b"id=echo>", 1)[1].split(b"</script>", 1)[0]
    data = json.loads(body)
    out = {}
    for k, v in data["headers"]:
        out.setdefault(k, []).append(v)
    return out
