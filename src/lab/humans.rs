//! Simulated people: how they move between pages, where their requests come from, what their
//! browsers fetch besides documents, and one visit.

use super::clients::*;
use crate::engine::Engine;

/// How a person moves between pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Browsing {
    /// Lands from outside, then follows the site's links.
    Links,
    /// Opens every page from another site: search results, a forum thread, a comparison site.
    FromOutside,
    /// Opens every page from bookmarks, typed or pasted addresses.
    Typed,
}

/// Where a person's requests come from during a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Network {
    /// One address throughout.
    Steady,
    /// Wi-Fi, then the carrier (or back): a second network once, mid-visit.
    Switches,
    /// A carrier's CGNAT or a company's egress without address pairing: four addresses in two
    /// networks, a different one from page to page.
    EgressPool,
    /// A free VPN or proxy extension whose exit changes every 3-8 pages.
    RotatingVpn,
    /// iCloud Private Relay: an egress address shared with many other Apple users, now and then
    /// a new one mid-visit.
    Relay,
    /// Tor: an exit shared with everyone on it, a new circuit (exit) every ten minutes or so.
    Tor,
}

impl Network {
    pub(super) fn kind(self) -> &'static str {
        match self {
            Network::Steady => "on one network",
            Network::Switches => "switching network mid-visit (Wi-Fi, mobile)",
            Network::EgressPool => "behind an unpaired egress pool (CGNAT, corporate)",
            Network::RotatingVpn => "behind a VPN whose exit changes every 3-8 pages",
            Network::Relay => "behind iCloud Private Relay (shared egress)",
            Network::Tor => "using Tor Browser (shared exits, 20% JavaScript off)",
        }
    }
}

/// What a person's browser fetches besides the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rendering {
    /// Returning visitor: scripts, styles and images come from the browser's cache.
    pub(super) warm_cache: bool,
    /// Reader mode, NoScript, a text browser: no scripts run, so no XHR.
    pub(super) no_script: bool,
}

/// The page's own requests after a navigation to `page` (`first`: the session's first page).
pub(super) fn render(
    e: &mut Engine,
    c: &Client,
    rng: &mut Rng,
    r: Rendering,
    page: &str,
    first: bool,
    now: u64,
) -> bool {
    let mut hit = false;
    let mut t = now + 80;
    if !r.warm_cache {
        if first {
            for (kind, path) in [(Sub::Style, "/static/app.3f9a.css"), (Sub::Script, "/static/app.c41d.js")] {
                hit |= sub(e, c, kind, path, page, t);
                t += 20 + rng.below(80);
            }
            hit |= sub(e, c, Sub::Image, "/static/logo.svg", page, t);
            t += 20 + rng.below(80);
        }
        if let Some(id) = page.strip_prefix("/products/") {
            hit |= sub(e, c, Sub::Image, &format!("/img/p{id}.webp"), page, t);
            t += 20 + rng.below(80);
        }
    }
    // The site's scripts ask its API for the cart on every page, and for recommendations on
    // some: the same call page after page, as shops' headers do.
    if !r.no_script {
        hit |= sub(e, c, Sub::Xhr, "/api/cart-count", page, t + rng.below(400));
        if rng.chance(0.3) {
            hit |= sub(e, c, Sub::Xhr, "/api/recommendations", page, t + 200 + rng.below(400));
        }
    }
    hit
}

/// One person's visit; `(challenged or blocked, kind of visitor)`.
pub(super) fn human(e: &mut Engine, rng: &mut Rng, id: u64, start: u64) -> (bool, &'static str) {
    let stripped = rng.chance(0.002);
    let mut c = Client::browser(rng, 20 + id % 60, stripped);
    // Older Safari sends no fetch metadata; some people turn the referer off, a few all cookies.
    c.manner.sec_fetch = !rng.chance(0.03);
    c.manner.referer = !rng.chance(0.05);
    c.keeps_cookies = !rng.chance(0.005);
    let safari = c.headers.iter().any(|(k, v)| k == "user-agent" && v.contains("Version/"));
    let network = match rng.below(1000) {
        0..=39 => Network::Switches,
        40..=49 => Network::EgressPool,
        50..=52 => Network::RotatingVpn,
        53..=57 => Network::Tor,
        _ if safari && rng.chance(0.2) => Network::Relay,
        _ => Network::Steady,
    };
    // A privacy extension that switches the user agent (to another browser's) on 1% of the
    // others: the page's script then sees an engine that is not the one the user agent names.
    let switcher = network == Network::Steady && !safari && rng.chance(0.01);
    if switcher {
        for (k, v) in c.headers.iter_mut() {
            if k == "user-agent" {
                *v = if v.contains("Firefox") {
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
                } else {
                    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
                }
                .to_string();
            }
        }
        c.script = Some(crate::challenge::beacon::traits::ENGINE_MISMATCH);
    }
    // Everyone on Tor Browser looks alike: Firefox ESR's user agent, US English, no hints.
    if network == Network::Tor {
        c.headers.retain(|(k, _)| !k.starts_with("sec-ch-"));
        for (k, v) in c.headers.iter_mut() {
            match k.as_str() {
                "user-agent" => *v = TOR_BROWSER.to_string(),
                "accept-language" => *v = "en-US,en;q=0.5".to_string(),
                k if k == TLS_HEADER => *v = FIREFOX_JA4.to_string(),
                _ => {}
            }
        }
    }
    let shared = |rng: &mut Rng| match network {
        Network::Relay => format!("172.225.{}.{}", rng.below(4), 1 + rng.below(64)),
        _ => format!("185.220.{}.{}", 100 + rng.below(2), 1 + rng.below(32)),
    };
    if matches!(network, Network::Relay | Network::Tor) {
        c = c.moved(shared(rng), true);
    }
    let nets = [(20 + id % 60, rng.below(256)), (20 + (id + 1) % 60, rng.below(256))];
    let pool: Vec<String> = (0..4)
        .map(|i| {
            let (a, b) = nets.get(i % 2).copied().unwrap_or((20, 0));
            format!("{a}.{b}.{}.{}", rng.below(256), 1 + rng.below(254))
        })
        .collect();
    let switch_at = 1 + rng.below(6);
    let mut vpn_left = 3 + rng.below(6);
    let no_script = rng.chance(if network == Network::Tor { 0.2 } else { 0.03 });
    let r = Rendering { warm_cache: rng.chance(0.35), no_script };
    if r.no_script {
        c.script = None;
    }
    let browsing = match rng.below(100) {
        0..=84 => Browsing::Links,
        85..=94 => Browsing::FromOutside,
        _ => Browsing::Typed,
    };
    let outside = pick(rng, OUTSIDE, "https://www.google.com/");
    let landing = match rng.below(3) {
        0 => From::Nowhere,
        _ => From::Outside(outside),
    };
    let mut now = start;
    let mut hit = false;
    // Whole visits from outside are short: a few results or bookmarks, then maybe the links.
    let pages = 3 + rng.below(20);
    let outside_pages = match browsing {
        Browsing::Links => 1,
        Browsing::FromOutside => 2 + rng.below(9),
        Browsing::Typed => 2 + rng.below(5),
    };
    let then_links = rng.chance(0.5);
    let pages = if browsing == Browsing::Links || then_links { pages.max(outside_pages) } else { outside_pages };
    let logs_in = rng.chance(0.3);
    let buys = logs_in && rng.chance(0.3);
    let mut prev = String::new();
    for step in 0..pages {
        let path = match rng.below(10) {
            0 => "/".to_string(),
            1 | 2 => "/products".to_string(),
            3..=7 => format!("/products/{}", rng.below(5_000)),
            8 => format!("/search?q=item{}", rng.below(300)),
            _ if rng.chance(0.2) => "/does-not-exist".to_string(),
            _ => "/products".to_string(),
        };
        let from = match (step, browsing) {
            (0, _) => landing,
            (s, _) if s >= outside_pages => From::Page(&prev),
            (_, Browsing::Links) => From::Page(&prev),
            (_, Browsing::FromOutside) => From::Outside(outside),
            (_, Browsing::Typed) => From::Nowhere,
        };
        let status = if path == "/does-not-exist" { 404 } else { 200 };
        let moved_to = match network {
            Network::Steady => None,
            Network::Switches => (step == switch_at).then(|| elsewhere(rng)),
            Network::EgressPool => pool.get(rng.below(4) as usize).cloned(),
            Network::RotatingVpn if vpn_left == 0 => {
                vpn_left = 3 + rng.below(6);
                Some(elsewhere(rng))
            }
            Network::RotatingVpn => {
                vpn_left -= 1;
                None
            }
            Network::Relay => rng.chance(0.05).then(|| shared(rng)),
            Network::Tor => rng.chance(0.08).then(|| shared(rng)),
        };
        if let Some(ip) = moved_to {
            c = c.moved(ip, true);
        }
        hit |= nav(e, &c, &path, from, now, status);
        hit |= render(e, &c, rng, r, &path, step == 0, now);
        // Tabs opened from a list of results follow each other quickly.
        now += if browsing == Browsing::FromOutside && rng.chance(0.5) { 300 + rng.below(2_000) } else { rng.think() };
        prev = path;
        if logs_in && step == 1 {
            hit |= nav(e, &c, "/login", From::Page(&prev), now, 200);
            now += rng.think();
            let form = c.nav_headers(From::Page("/login"));
            if rng.chance(0.1) {
                hit |= send_with(e, &c, ("POST", "/login"), &form, b"user=me&pw=typo", now, 401);
                now += rng.think();
            }
            hit |= send_with(e, &c, ("POST", "/login"), &form, b"user=me&pw=right", now, 200);
            c.cookie = Some(format!("h{id}"));
            now += rng.think();
        }
    }
    if buys {
        hit |= nav(e, &c, "/cart", From::Page(&prev), now, 200);
        now += rng.think();
        let form = c.nav_headers(From::Page("/cart"));
        hit |= send_with(e, &c, ("POST", "/checkout"), &form, b"pay=1", now, 200);
    }
    let kind = if stripped {
        "behind a header-stripping proxy"
    } else if network != Network::Steady {
        network.kind()
    } else if switcher {
        "switching their user agent (privacy extension)"
    } else if !c.keeps_cookies {
        "blocking all cookies"
    } else if !c.manner.sec_fetch {
        "older browser, no sec-fetch-*"
    } else if r.warm_cache && r.no_script {
        "cached assets and no scripts (reader, NoScript)"
    } else {
        match browsing {
            Browsing::Links => "following links",
            Browsing::FromOutside => "opening every page from another site",
            Browsing::Typed => "opening every page from bookmarks/typed",
        }
    };
    if hit && std::env::var_os("BOTGATE_SIMULATE_DEBUG").is_some() {
        eprintln!("^ a person {kind}, keeping cookies: {}", c.keeps_cookies);
    }
    (hit, kind)
}
