"""Issue 12 end to end: detection that holds on traffic it was not built against, through real
Envoy with the example policy."""
import threading
import time

from test_decision_plane import CHROME, CI_KEY

PERSON = "203.0.113.90"


def person_page(e, page, previous):
    headers = {"user-agent": CHROME, "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
               "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "same-origin",
               "sec-ch-ua": '"Chromium";v="126", "Google Chrome";v="126"', "sec-ch-ua-mobile": "?0",
               "sec-ch-ua-platform": '"Windows"', "referer": f"http://shop.test/products/{previous}",
               "x-forwarded-for": PERSON}
    return e.get(f"/products/{page}", headers=headers)[0]


def test_a_flood_is_shed_by_the_global_limit_while_a_person_browses(envoy_with, example_policy):
    """A flood from four hundred addresses, one request each (under the per-client limit),
    in a shape no browser sends, against a global budget of 100 a minute: the person clicking
    through the shop meanwhile is served every page, and the flood is refused by the global limit
    before it spends the budget."""
    example_policy["global_rate_limit"] = {"max_requests": 100, "window_seconds": 60}
    e = envoy_with(example_policy, env={"BOTGATE_CI_KEY": CI_KEY})
    statuses = {}
    lock = threading.Lock()

    def flood(worker):
        for i in range(worker, 400, 8):
            ip = f"198.51.{100 + i // 250}.{i % 250}"
            status = e.get(f"/products/{i % 40}", headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
                                                          "x-forwarded-for": ip})[0]
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=flood, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    pages = []
    page = 0
    while any(t.is_alive() for t in threads) or page < 5:
        pages.append(person_page(e, page + 1, page))
        page += 1
        time.sleep(1.5 + (page * 37 % 10) / 10)
    for t in threads:
        t.join()
    assert pages == [200] * len(pages), f"the person was refused while the flood ran: {pages}"
    assert statuses.get(429, 0) > 250, f"the flood was not shed: {statuses}"
    assert statuses.get(200, 0) < 75, f"the flood spent the budget: {statuses}"
    assert e.wait_metric("botgate_rate_limited_total", lambda v: v > 250, scope="global") > 250


# The silent challenge: the script added to pages, and its beacon.

import gzip  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import urllib.parse  # noqa: E402

import pytest  # noqa: E402

from browser import CHROMIUM, Chromium, person_user_agent  # noqa: E402

needs_chromium = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium is not installed (make system-deps)")
TOKEN = re.compile(rb'<script data-t="([^"]+)"( nonce="([^"]*)")?>')


def page_headers(ip, **extra):
    return {"user-agent": CHROME, "accept": "text/html,application/xhtml+xml", "accept-language": "en-GB,en;q=0.9",
            "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none",
            "x-forwarded-for": ip, **extra}


def beacon_headers(ip, **extra):
    return {"user-agent": CHROME, "accept": "*/*", "accept-language": "en-GB,en;q=0.9", "sec-fetch-site": "same-origin",
            "sec-fetch-mode": "no-cors", "sec-fetch-dest": "empty", "x-forwarded-for": ip, **extra}


def start_example(envoy_with, example_policy):
    return envoy_with(example_policy, env={"BOTGATE_CI_KEY": CI_KEY})


def test_a_page_carries_the_script_and_a_forged_or_replayed_beacon_is_refused(envoy_with, example_policy):
    e = start_example(envoy_with, example_policy)
    ip = "203.0.113.91"
    status, headers, body = e.get("/products/1", headers=page_headers(ip))
    assert status == 200
    found = TOKEN.search(body)
    assert found, body[:400]
    assert body.index(b"<script data-t=") < body.index(b"</head>"), "the script goes in the head"
    assert "content-length" not in headers or int(headers["content-length"][0]) == len(body)
    token = found.group(1).decode()
    # The page handed a visitor cookie: the beacon is that session's, and comes back with it.
    cookie = headers["set-cookie"][0].split(";")[0]

    def own(ip, **kw):
        return beacon_headers(ip, cookie=cookie, **kw)
    beacon = f"/.well-known/botgate/beacon?t={urllib.parse.quote(token)}&a=0"
    forged = f"/.well-known/botgate/beacon?t={urllib.parse.quote(token[:-3] + 'AAA')}&a=0"
    status, _, reply = e.post(forged, headers=own(ip))
    assert (status, b"beacon_forged" in reply) == (403, True)
    other = own("198.51.100.7")  # the cookie, lifted to another network
    assert e.post(beacon, headers=other)[0] == 403, "another client's beacon"
    assert e.post(beacon, headers=own(ip))[0] == 204
    status, _, reply = e.post(beacon, headers=own(ip))
    assert (status, b"beacon_replayed" in reply) == (403, True)
    cross = own(ip, **{"sec-fetch-site": "cross-site"})
    assert e.post(beacon, headers=cross)[0] == 403
    assert e.wait_metric("botgate_beacon_total", lambda v: v >= 1, result="accepted") == 1
    assert e.wait_metric("botgate_beacon_total", lambda v: v >= 4, result="refused") == 4


def test_non_html_compressed_and_csp_refusing_pages_are_left_alone(envoy_with, example_policy):
    e = start_example(envoy_with, example_policy)
    ip = "203.0.113.93"
    # JSON for a navigation, a gzip page, a page whose policy allows only its own script files.
    status, _, body = e.get("/api/products", headers=page_headers(ip, accept="application/json"))
    assert status == 200 and b"data-t=" not in body
    status, headers, body = e.get("/products/2?gz=1", headers=page_headers(ip))
    assert status == 200 and headers["content-encoding"] == ["gzip"]
    assert b"Hello from the upstream" in gzip.decompress(body), "the compressed page is intact"
    csp = urllib.parse.quote("default-src 'self'; script-src 'self'")
    status, _, body = e.get(f"/products/3?csp={csp}", headers=page_headers(ip))
    assert status == 200 and b"data-t=" not in body and b"Hello from the upstream" in body
    assert e.wait_metric("botgate_beacon_total", lambda v: v >= 2, result="skipped") >= 2


def person(**kw):
    """Chromium as a person's browser: not driven by WebDriver, a normal Chrome user agent."""
    return Chromium(**kw)


@needs_chromium
def test_a_browser_runs_the_script_under_the_sites_own_csp_and_its_beacon_arrives(envoy_with, example_policy):
    e = start_example(envoy_with, example_policy)
    base = f"http://127.0.0.1:{e.port}"
    b = person()
    try:
        b.extra_headers({"x-forwarded-for": "203.0.113.94"})
        for i, csp in enumerate(["", "script-src 'nonce-Zm9vYmFy' 'strict-dynamic'; object-src 'none'",
                                 "default-src 'self'; script-src 'self' 'unsafe-inline'"]):
            query = f"?csp={urllib.parse.quote(csp)}" if csp else ""
            b.navigate(f"{base}/products/{i}{query}")
            assert b.wait_for("document.getElementById('asked') !== null", timeout=30), "the page rendered"
            assert b.eval("document.querySelector('script[data-t]') !== null"), f"no script in page {i}"
            e.wait_metric("botgate_beacon_total", lambda v: v >= i + 1, timeout=10, result="accepted")
        beacons = [(entry["path"][-6:], entry["status"], entry["botgate"]["reasons"], entry["botgate"].get("detail")) for entry in e.access_entries(want=6)
                   if "beacon" in entry["path"]]
        assert e.metric("botgate_beacon_total", result="accepted") == 3, beacons
        assert e.metric("botgate_beacon_total", result="automation") == 0
        b.navigate(f"{base}/products/9")
        assert b.wait_for("document.getElementById('asked') !== null", timeout=30), "still served"
    finally:
        b.close()


@needs_chromium
def test_headless_chromium_driven_by_automation_is_caught_by_its_beacon(envoy_with, example_policy):
    """Headless Chromium with a normal Chrome user agent (no giveaway in its headers), driven over
    the DevTools protocol as Puppeteer and Playwright drive it: its first page is served, its
    beacon reports automation, and its next page is refused."""
    e = start_example(envoy_with, example_policy)
    base = f"http://127.0.0.1:{e.port}"
    b = Chromium(user_agent=person_user_agent(), automation=True)
    try:
        b.extra_headers({"x-forwarded-for": "203.0.113.95"})
        b.navigate(f"{base}/products/1")
        assert b.wait_for("document.getElementById('asked') !== null", timeout=30)
        e.wait_metric("botgate_beacon_total", lambda v: v >= 1, timeout=10, result="automation")
        b.navigate(f"{base}/products/2")
        assert b.wait_for("document.body && document.body.innerText.includes('block')", timeout=30), \
            b.eval("document.documentElement.outerHTML")
        log = e.access_entries(want=4)
        reasons = [r for entry in log for r in entry["botgate"]["reasons"]]
        assert "automation_reported" in reasons, log
    finally:
        b.close()


# Slow rotating scrapers seen as one campaign.

def landing_headers(ip, cookie=None, **extra):
    return page_headers(ip, **({"cookie": cookie} if cookie else {}), **extra)


def test_a_scraper_rotating_addresses_is_seen_as_one_campaign(envoy_with, example_policy):
    """An HTTP client with Chrome's typed-navigation headers copied verbatim, through a
    residential pool: a new address (and network) every three pages, its cookies dropped with
    each, so every address is a new session of three ordinary-looking pages. What the sessions
    share, their shape and the way each one opens, makes them one campaign: from about the eighth
    address on, each is asked for a proof of work, and the access log names one campaign for all
    of them. A person in the same browser's shape arriving from a search result is served."""
    e = start_example(envoy_with, example_policy)
    asked = []
    for a in range(20):
        ip = f"{20 + a}.{a}.7.9"
        cookie = None
        for p in range(3):
            status, headers, _ = e.get(f"/products/{a * 3 + p}", headers=landing_headers(ip, cookie))
            for set_cookie in headers.get("set-cookie", []):
                cookie = set_cookie.split(";")[0]
            if headers.get("x-botgate-challenge") == ["proof_of_work"]:
                asked.append((a, p))
    assert (0, 0) not in asked and (1, 0) not in asked, f"a couple of bookmarks are no campaign: {asked}"
    assert [(a, 0) for a in range(10, 20)] == [x for x in asked if x[1] == 0 and x[0] >= 10], asked
    search = landing_headers("203.0.113.99", **{"sec-fetch-site": "cross-site", "referer": "https://www.google.com/"})
    assert e.get("/products/900", headers=search)[0] == 200
    entries = e.access_entries(want=61)
    named = [entry["botgate"] for entry in entries if "campaign_landings" in entry["botgate"]["reasons"]]
    assert len(named) >= 30, entries[-3:]
    assert len({n.get("campaign") for n in named}) == 1 and named[0].get("campaign"), named[:2]
    assert entries[-1]["botgate"].get("campaign") is None, entries[-1]


CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(CHROMEDRIVER is None or shutil.which(CHROMIUM) is None,
                    reason="chromium-driver is not installed (make system-deps)")
def test_headless_chromium_driven_by_selenium_is_caught_on_its_own(envoy_with, example_policy):
    """Selenium driving headless Chromium through chromedriver, as a scraping script would, with a
    normal Chrome user agent and language (nothing in its headers gives it away): its first page is
    served, the script botgate added to it reports the automation, and its next page is blocked."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    e = start_example(envoy_with, example_policy)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM)
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", f"--user-agent={person_user_agent()}",
                "--lang=en-GB"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"x-forwarded-for": "203.0.113.96"}})
        driver.get(f"http://127.0.0.1:{e.port}/products/1")
        assert driver.find_element("id", "asked"), "the first page is served"
        e.wait_metric("botgate_beacon_total", lambda v: v >= 1, timeout=10, result="automation")
        driver.get(f"http://127.0.0.1:{e.port}/products/2")
        assert "block" in driver.find_element("tag name", "body").text, driver.page_source[:500]
        reasons = [r for entry in e.access_entries(want=4) for r in entry["botgate"]["reasons"]]
        assert "automation_reported" in reasons
    finally:
        driver.quit()
