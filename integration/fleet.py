"""Debian's redis-server and webdis (its HTTP front end) on 127.0.0.1, for the fleet's shared
counts; started and stopped by PID."""
import json
import pathlib
import shutil
import subprocess
import tempfile

from harness import free_port, stop, wait_port

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
WEBDIS = shutil.which("webdis") or "/usr/bin/webdis"


class Redis:
    def __init__(self, port=None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-redis-"))
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(self.port, 10), "redis-server did not start"

    def close(self):
        stop(self.proc)


class Webdis:
    def __init__(self, redis_port, port=None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-webdis-"))
        self.port = port or free_port()
        config = {"redis_host": "127.0.0.1", "redis_port": redis_port, "http_host": "127.0.0.1",
                  "http_port": self.port, "threads": 2, "daemonize": False, "database": 0,
                  "verbosity": 1, "logfile": str(self.dir / "webdis.log")}
        (self.dir / "webdis.json").write_text(json.dumps(config))
        self.proc = subprocess.Popen([WEBDIS, str(self.dir / "webdis.json")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(self.port, 10), "webdis did not start"

    def close(self):
        stop(self.proc)
