"""Issue 15 item 5: `botgate report POLICY.json LOG > report.html`, end to end.

Twenty simulated minutes of JSONL traffic (people browsing from several addresses, plus a scripted
client rotating across ten addresses with the same headers, and one client whose user agent and
path are markup) go through the example policy; the page is opened in headless Chromium from a
file, with the network watched: it must load nothing, log no console error and run no script. The
page and a full-page screenshot are kept as test artifacts (integration/artifacts/report.html and
report.png)."""
import base64
import json
import pathlib
import random
import shutil
import subprocess
import time
from html.parser import HTMLParser

import pytest

from browser import CHROMIUM, Chromium
from harness import BOTGATE, EXAMPLE_POLICY, TEST_CLEARANCE_KEY

ARTIFACTS = pathlib.Path(__file__).resolve().parent / "artifacts"
MINUTES = 20
HOSTILE_UA = "<script>alert(1)</script><img src=x onerror=alert(2)>"

PEOPLE = [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
     "en-GB,en;q=0.9", '"Chromium";v="131", "Google Chrome";v="131"', '"Linux"'),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
     "de-DE,de;q=0.9,en;q=0.8", '"Chromium";v="131", "Google Chrome";v="131"', '"Windows"'),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
     "fr-FR,fr;q=0.9", None, None),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "en-US,en;q=0.5", None, None),
]
PAGES = ["/", "/products", "/products/shoes", "/products/shoes/42", "/products/bags", "/products/bags/7", "/about",
         "/search?q=boots", "/search?q=red+bag", "/cart", "/account", "/blog/spring-sale", "/blog", "/contact",
         "/products/hats/3", "/help/returns"]
ASSETS = ["/static/app.css", "/static/app.js", "/static/logo.svg"]
BOT = {"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/120.0.0.0 Safari/537.36",
       "accept": "application/json", "accept-encoding": "gzip"}


def person(rng, ip, start, ua, lang, ch_ua, platform):
    """One person's visit: pages with think times, each page's assets a moment later."""
    out, t = [], start
    sid = "%016x" % rng.getrandbits(64)
    referer = None
    for n in range(rng.randint(6, 22)):
        page = "/" if n == 0 else rng.choice(PAGES)
        headers = {"user-agent": ua, "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                   "accept-language": lang, "accept-encoding": "gzip, deflate, br",
                   "sec-fetch-mode": "navigate", "sec-fetch-dest": "document",
                   "sec-fetch-site": "same-origin" if referer else "none"}
        if ch_ua:
            headers.update({"sec-ch-ua": ch_ua, "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": platform})
        if referer:
            headers["referer"] = f"https://shop.example{referer}"
        if n:
            headers["cookie"] = f"session_id={sid}"
        status = 404 if rng.random() < 0.04 else 200
        out.append({"t": round(t, 3), "ip": ip, "method": "GET", "path": page, "headers": headers, "status": status})
        if n == 0 or rng.random() < 0.3:
            for k, asset in enumerate(ASSETS):
                sub = {**{h: v for h, v in headers.items() if h not in ("sec-fetch-mode", "sec-fetch-dest")},
                       "accept": "*/*", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "script",
                       "sec-fetch-site": "same-origin", "referer": f"https://shop.example{page}",
                       "cookie": f"session_id={sid}"}
                out.append({"t": round(t + 0.08 + 0.05 * k + rng.random() * 0.05, 3), "ip": ip, "method": "GET",
                            "path": asset, "headers": sub, "status": 200})
        referer = page
        t += rng.lognormvariate(2.8, 0.8)  # a median of ~16 s, now and then a minute or more
        if t > MINUTES * 60:
            break
    return out


def traffic(seed=15):
    rng = random.Random(seed)
    lines = []
    for i in range(18):
        ua, lang, ch_ua, platform = PEOPLE[i % len(PEOPLE)]
        ip = f"203.0.113.{20 + i}" if i < 12 else f"2001:db8:{i:x}::{7 + i}"
        lines += person(rng, ip, rng.uniform(0, MINUTES * 60 - 240), ua, lang, ch_ua, platform)
    # The campaign: one script, the same headers, six addresses in turn, a request every ~1.2 s
    # from minute 4; from minute 7 it backs off to one every ~3 s and rotates through four more
    # addresses, until minute 17.
    t, n = 240.0, 0
    while t < 17 * 60:
        slow = t >= 7 * 60
        pool = 10 if slow else 6
        ip = f"198.51.100.{101 + n % pool}"
        lines.append({"t": round(t, 3), "ip": ip, "method": "GET", "path": f"/api/products/{1000 + n}",
                      "headers": BOT, "status": 404 if n % 9 == 0 else 200})
        n += 1
        t += (3.0 if slow else 1.2) + rng.uniform(-0.03, 0.03)
    # A client whose user agent and path are markup.
    for k in range(3):
        lines.append({"t": 600.0 + k, "ip": "192.0.2.66", "method": "GET",
                      "path": "/\"><svg onload=alert(3)>", "headers": {"user-agent": HOSTILE_UA}})
    lines.sort(key=lambda x: x["t"])
    return lines


class Fetching(HTMLParser):
    """Elements and attributes that would make a browser fetch something."""
    TAGS = {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source", "image", "use", "base"}
    ATTRS = {"src", "href", "srcset", "xlink:href", "action", "formaction", "poster", "data", "background"}

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in self.TAGS:
            self.found.append(tag)
        for name, value in attrs:
            if name in self.ATTRS or name.startswith("on") or (name == "style" and "url(" in (value or "")):
                self.found.append(f"{tag} {name}={value!r}")


class WatchedChromium(Chromium):
    """Chromium that keeps the DevTools events it reads past (requests, console, exceptions)."""

    def __init__(self, **kw):
        self.events = []
        super().__init__(**kw)

    def on_event(self, msg):
        self.events.append(msg)

    def of(self, method):
        return [e["params"] for e in self.events if e["method"] == method]


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium is not installed (make system-deps)")
def test_the_report_is_a_page_that_loads_nothing_and_shows_the_campaign(tmp_path):
    log = tmp_path / "traffic.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in traffic()))
    env = {"BOTGATE_CLEARANCE_KEY": TEST_CLEARANCE_KEY, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(BOTGATE), "report", str(EXAMPLE_POLICY), str(log)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    page = run.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / "report.html"
    out.write_text(page)

    # What the page says, read as text.
    assert "<script" not in page and "<img" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    fetching = Fetching()
    fetching.feed(page)
    assert not fetching.found, fetching.found
    assert "url(" not in page and "@import" not in page
    assert "198.51.100.101" in page and "198.51.100.110" in page, "the campaign's addresses are listed"
    assert "named a campaign by the engine" in page or "client shape" in page

    browser = WatchedChromium()
    try:
        browser.call("Network.enable")
        browser.call("Log.enable")
        browser.navigate(out.as_uri())
        assert browser.wait_for("document.readyState === 'complete' && document.title", timeout=30)
        assert browser.eval("document.querySelectorAll('script').length") == 0
        assert browser.eval("document.querySelectorAll('#campaigns article').length") >= 1
        text = browser.eval("document.body.innerText")
        assert HOSTILE_UA in text, "the hostile user agent is shown as text"
        width = 1280
        height = browser.eval("Math.ceil(document.documentElement.scrollHeight)")
        browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        height = browser.eval("Math.ceil(document.documentElement.scrollHeight)")
        browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        time.sleep(0.5)
        browser.call("Runtime.evaluate", expression="1")  # collects the events so far
        data = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})["data"]
        (ARTIFACTS / "report.png").write_bytes(base64.b64decode(data))

        requests = [r["request"]["url"] for r in browser.of("Network.requestWillBeSent")]
        assert requests == [out.as_uri()], f"the page fetched something: {requests}"
        errors = [e for e in browser.of("Log.entryAdded") if e["entry"]["level"] == "error"]
        errors += [e for e in browser.of("Runtime.consoleAPICalled") if e["type"] in ("error", "assert")]
        errors += browser.of("Runtime.exceptionThrown")
        assert not errors, errors
    finally:
        browser.close()
