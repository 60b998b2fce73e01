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
