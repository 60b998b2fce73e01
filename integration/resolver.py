"""A real DNS server on loopback for crawler verification: unbound, answering the test's zones,
with DNS over HTTPS (RFC 8484) over h2c on one port, started and stopped by PID.

    with Unbound(ptr={"192.0.2.71": "crawl-192-0-2-71.googlebot.com"},
                 a={"crawl-192-0-2-71.googlebot.com": "192.0.2.71"}) as dns:
        envoy_with(policy, doh=dns.port)

Names outside the given records are NXDOMAIN (static zones), so nothing ever leaves the host.
`silent_reverse`: a reverse zone forwarded to a UDP socket that never answers, for a resolver
that is slow to say anything.
"""
import pathlib
import shutil
import socket
import subprocess
import tempfile

from harness import free_port, stop, wait_port

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


class Unbound:
    def __init__(self, ptr=None, a=None, silent_reverse=None, port=None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="botgate-dns-"))
        self.port = port or free_port()
        self.ptr, self.a = ptr or {}, a or {}
        self.silent = None
        lines = [
            "server:",
            f"  interface: 127.0.0.1@{self.port}",
            f"  port: {self.port}",
            f"  https-port: {self.port}",
            "  http-notls-downstream: yes",
            '  http-endpoint: "/dns-query"',
            "  do-daemonize: no", "  use-syslog: no", f'  logfile: "{self.dir}/unbound.log"',
            '  username: ""', '  chroot: ""', f'  directory: "{self.dir}"', '  pidfile: ""',
            "  do-ip6: no", "  access-control: 127.0.0.0/8 allow", '  module-config: "iterator"',
            "  do-not-query-localhost: no",
        ]
        zones = set()
        for ip, name in self.ptr.items():
            zones.add(".".join(reversed(ip.split(".")[:2])) + ".in-addr.arpa.")
            lines.append(f'  local-data-ptr: "{ip} {name}."')
        for name, ip in self.a.items():
            zones.add(".".join(name.split(".")[-2:]) + ".")
            lines.append(f'  local-data: "{name}. 300 IN A {ip}"')
        for z in sorted(zones):
            lines.append(f'  local-zone: "{z}" static')
        if silent_reverse:
            self.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.silent.bind(("127.0.0.1", 0))
            lines += ["forward-zone:", f'  name: "{silent_reverse}."',
                      f"  forward-addr: 127.0.0.1@{self.silent.getsockname()[1]}"]
        lines += ["remote-control:", "  control-enable: no"]
        (self.dir / "unbound.conf").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(self.dir / "unbound.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port, 10):
            self.close()
            raise RuntimeError(f"unbound did not start: {(self.dir / 'unbound.log').read_text(errors='replace')}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        stop(self.proc)
        if self.silent:
            self.silent.close()
