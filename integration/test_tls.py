"""TLS fingerprints through real Envoy: `tls_inspector` computes each client's JA4, the
`header_mutation` filter of envoy/envoy.template.yaml hands it to botgate in `x-tls-ja4`, and a
browser's user agent on an HTTP library's handshake is challenged at its first request, while a
real browser (Debian's Chromium) on its own handshake is not named."""
import datetime
import http.client
import ipaddress
import json
import shutil
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from browser import CHROMIUM, Chromium
from harness import Envoy, echoed

CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36")
BROWSER_HEADERS = {"user-agent": CHROME_UA, "accept": "application/json", "accept-language": "en-GB,en;q=0.9"}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A throw-away self-signed certificate for shop.test and 127.0.0.1."""
    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("shop.test"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return str(d / "cert.pem"), str(d / "key.pem")


def tls_get(port, path, headers):
    """GET over TLS with Python's own stack (the `ssl` module, as urllib, requests and httpx use),
    SNI shop.test, connected to 127.0.0.1; returns (status, headers, body)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.sock = ctx.wrap_socket(raw, server_hostname="shop.test")

    conn = Conn("shop.test", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def with_automation(policy, clients):
    return {**policy, "tls_fingerprint": {"header": "x-tls-ja4", "automation_clients": clients}}


@pytest.fixture(scope="module")
def ja4(upstream, tls_files):
    """This machine's Python handshake, as Envoy fingerprints it (read from what the upstream got,
    through a botgate that decides nothing)."""
    e = Envoy({}, upstream.port, tls=tls_files)
    try:
        status, _, body = tls_get(e.port, "/whoami", {"user-agent": "botgate-integration-test"})
        assert status == 200, body
        (seen,) = echoed(body)["x-tls-ja4"]
    finally:
        e.close()
    assert seen.startswith("t13") and len(seen) == 36, seen
    return seen


def test_a_browser_user_agent_on_a_python_handshake_is_challenged(envoy_with, example_policy, tls_files, ja4):
    e = envoy_with(with_automation(example_policy, [{"ja4": ja4, "client": "Python ssl (this machine)"}]),
                   tls=tls_files)
    status, headers, body = tls_get(e.port, "/products/7", BROWSER_HEADERS)
    assert status == 401, body
    assert headers["x-botgate-challenge"] == "proof_of_work"
    # An honest Python client is named by its user agent, not by its handshake.
    status, _, body = tls_get(e.port, "/products/8", {**BROWSER_HEADERS, "user-agent": "python-requests/2.34.2"})
    entries = {x["path"]: x for x in e.access_entries(want=2)}
    lying, honest = entries["/products/7"], entries["/products/8"]
    assert "automation_tls" in lying["botgate"]["reasons"] and lying["ja4"] == ja4, lying
    assert "automation_tls" not in honest["botgate"]["reasons"], honest
    assert "http_library_ua" in honest["botgate"]["reasons"], honest


def test_a_client_cannot_hand_botgate_a_fingerprint_of_its_own(envoy_with, example_policy, tls_files, ja4):
    e = envoy_with(with_automation(example_policy, [{"ja4": ja4, "client": "Python ssl (this machine)"}]),
                   tls=tls_files)
    # Over plaintext there is no handshake: a client's own x-tls-ja4 is removed before botgate.
    status, _, body = e.get("/products/9", headers={**BROWSER_HEADERS, "x-tls-ja4": ja4})
    assert status == 200, body
    assert "x-tls-ja4" not in echoed(body), echoed(body)
    # Over TLS, claiming a browser's fingerprint does not replace the real one.
    chrome_like = "t13d1516h2_8daaf6152771_02713d6af862"
    status, _, _ = tls_get(e.port, "/products/10", {**BROWSER_HEADERS, "x-tls-ja4": chrome_like})
    assert status == 401
    entries = {x["path"]: x for x in e.access_entries(want=2)}
    assert "automation_tls" not in entries["/products/9"]["botgate"]["reasons"]
    assert "automation_tls" in entries["/products/10"]["botgate"]["reasons"]


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium is not installed (make system-deps)")
def test_chromium_on_its_own_handshake_is_not_named(envoy_with, example_policy, tls_files, ja4):
    e = envoy_with(with_automation(example_policy, [{"ja4": ja4, "client": "Python ssl (this machine)"}]),
                   tls=tls_files)
    browser = Chromium(user_agent=CHROME_UA, args=["--ignore-certificate-errors"])
    try:
        browser.navigate(f"https://127.0.0.1:{e.port}/products/11")
        assert browser.wait_for("document.body && document.body.innerText.includes('/products/11')", timeout=30), \
            browser.eval("document.documentElement.outerHTML")
    finally:
        browser.close()
    page = [x for x in e.access_entries(want=1) if x["path"] == "/products/11"][0]
    assert page["status"] == "200" or page["status"] == 200, page
    assert page["ja4"].startswith("t13") and page["ja4"].split("_")[1:] != ja4.split("_")[1:], page
    assert "automation_tls" not in page["botgate"]["reasons"], page
    print(json.dumps({"chromium_ja4": page["ja4"], "python_ja4": ja4}))
