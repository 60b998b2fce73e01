//! The simulator's clients: a seeded random source, the browsers and TLS stacks they present,
//! and how a client's requests are built and sent through the engine.

use crate::decision::record::Verdict;
use crate::engine::{drive, Engine};
use crate::request::head::Head;
use std::cell::RefCell;

/// xorshift64*: small, fast and reproducible from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// Think time in ms: mostly seconds, sometimes a minute.
    pub(super) fn think(&mut self) -> u64 {
        let base = 1_500 + self.below(12_000);
        if self.chance(0.15) {
            base + self.below(60_000)
        } else {
            base
        }
    }
}

/// Chromium's client hints: brands, platform, mobile.
pub(super) type Hints = (&'static str, &'static str, &'static str);

/// Browsers by share of traffic (a judgement from public browser-share figures, fixed before the
/// figures were read): user agent, client hints (brands, platform, mobile) for Chromium ones,
/// share.
pub(super) const BROWSERS: &[(&str, Option<Hints>, u64)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        Some(("\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\"", "\"Windows\"", "?0")),
        28,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
        Some(("\"Chromium\";v=\"125\", \"Google Chrome\";v=\"125\"", "\"macOS\"", "?0")),
        8,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        Some(("\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\"", "\"Android\"", "?1")),
        20,
    ),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", None, 18),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", None, 5),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        Some(("\"Chromium\";v=\"126\", \"Microsoft Edge\";v=\"126\"", "\"Windows\"", "?0")),
        6,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", None, 2),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", None, 3),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        Some(("\"Chromium\";v=\"121\", \"Samsung Internet\";v=\"25\"", "\"Android\"", "?1")),
        3,
    ),
];
/// Tor Browser: Firefox ESR's user agent and language for everyone, whatever their system.
pub(super) const TOR_BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0";
/// TLS fingerprints (JA4), as Envoy's `tls_inspector` computes them and a `header_mutation`
/// filter hands them to botgate in `x-tls-ja4` (the example policy's header). Chrome's and the
/// libraries' were measured through Envoy 1.40 here; Firefox's, Safari's, Go's and the
/// middlebox's are stand-ins (not measured here): what matters to the engine is only that they
/// are not on the example policy's automation list.
pub(super) const CHROME_JA4: &str = "t13d1517h2_8daaf6152771_63ff51340b64";
pub(super) const FIREFOX_JA4: &str = "t13d1717h2_5b57614c22b0_0000000000f1";
pub(super) const SAFARI_JA4: &str = "t13d2014h2_a09f3c656075_0000000000a1";
/// A TLS-intercepting corporate proxy terminates the browser's TLS and opens its own.
pub(super) const MIDDLEBOX_JA4: &str = "t13d1310h1_000000000bc0_0000000000bc";
pub(super) const REQUESTS_JA4: &str = "t13d1812h1_85036bcba153_b26ce05bbdd6";
pub(super) const HTTPX_JA4: &str = "t13d181100_85036bcba153_d41ae481755e";
pub(super) const NODE_JA4: &str = "t13d5911h1_a33745022dd6_1f22a2ca17c4";
pub(super) const GO_JA4: &str = "t13d1312h2_0000000000c0_0000000000c0";
pub(super) const TLS_HEADER: &str = "x-tls-ja4";

pub(super) fn browser_ja4(ua: &str) -> &'static str {
    if ua.contains("Chrome/") {
        CHROME_JA4
    } else if ua.contains("Firefox/") {
        FIREFOX_JA4
    } else {
        SAFARI_JA4
    }
}

pub(super) const LANGS: &[&str] =
    &["en-GB,en;q=0.9", "en-US,en;q=0.9", "de-DE,de;q=0.8", "fr-FR,fr;q=0.9", "pt-PT,pt;q=0.9"];
pub(super) const HTML_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
pub(super) const SITE: &str = "https://shop.test";
/// Where people come from when they arrive from outside.
pub(super) const OUTSIDE: &[&str] =
    &["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.reddit.com/"];

/// How a navigation was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum From<'a> {
    /// Typed, bookmarked, pasted, opened from another app, or a script's `goto`.
    Nowhere,
    /// A link on another site (a search result, a forum post, a price comparison).
    Outside(&'a str),
    /// A link on this site's page at that path.
    Page(&'a str),
}

/// What a page fetches for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sub {
    Script,
    Style,
    Image,
    Xhr,
}

/// How a client's requests look beyond its identity headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Manner {
    /// Sends `sec-fetch-*` (every current browser; not older Safari, not HTTP libraries).
    pub(super) sec_fetch: bool,
    /// Sends `referer` (privacy settings and extensions can turn it off).
    pub(super) referer: bool,
    /// A proxy strips everything but the user agent.
    pub(super) stripped: bool,
}

pub(super) const BROWSER: Manner = Manner { sec_fetch: true, referer: true, stripped: false };

pub(super) struct Client {
    pub(super) ip: String,
    pub(super) headers: Vec<(String, String)>,
    /// The signed-in session cookie's value.
    pub(super) cookie: Option<String>,
    pub(super) manner: Manner,
    /// Keeps the cookies it is handed (browsers, HTTP clients with a cookie jar).
    pub(super) keeps_cookies: bool,
    /// The visitor cookie (`name=value`) it was handed, when it keeps cookies.
    pub(super) visitor: RefCell<Option<String>>,
    /// Runs the pages' scripts, and what botgate's beacon then reports (trait bits); `None`:
    /// runs none (an HTTP client, JavaScript off).
    pub(super) script: Option<u16>,
}

impl Client {
    /// A browser at a random address in `prefix`.0.0.0/8.
    pub(super) fn browser(rng: &mut Rng, prefix: u64, stripped: bool) -> Client {
        let ip = ip(rng, prefix);
        let (ua, hints, _) = weighted(rng, BROWSERS, |b| b.2).unwrap_or(("Mozilla/5.0", None, 1));
        let ja4 = if stripped { MIDDLEBOX_JA4 } else { browser_ja4(ua) };
        let mut headers = vec![("user-agent".to_string(), ua.to_string()), (TLS_HEADER.into(), ja4.into())];
        if !stripped {
            headers.push(("accept-language".into(), pick(rng, LANGS, "en").to_string()));
            if let Some((brands, platform, mobile)) = hints {
                headers.push(("sec-ch-ua".into(), brands.into()));
                headers.push(("sec-ch-ua-platform".into(), platform.into()));
                headers.push(("sec-ch-ua-mobile".into(), mobile.into()));
            }
        }
        let manner = Manner { stripped, ..BROWSER };
        Client { ip, headers, cookie: None, manner, keeps_cookies: true, visitor: RefCell::new(None), script: Some(0) }
    }

    /// The same client at another address; `keep`: its cookies go with it.
    pub(super) fn moved(&self, ip: String, keep: bool) -> Client {
        let visitor = if keep { self.visitor.borrow().clone() } else { None };
        Client {
            ip,
            headers: self.headers.clone(),
            cookie: self.cookie.clone(),
            manner: self.manner,
            keeps_cookies: self.keeps_cookies,
            visitor: RefCell::new(visitor),
            script: self.script,
        }
    }

    pub(super) fn tool(ip: String, ua: &str) -> Client {
        let manner = Manner { sec_fetch: false, referer: false, stripped: false };
        Client {
            ip,
            headers: vec![
                ("user-agent".into(), ua.into()),
                ("accept".into(), "*/*".into()),
                (TLS_HEADER.into(), REQUESTS_JA4.into()),
            ],
            cookie: None,
            manner,
            keeps_cookies: false,
            visitor: RefCell::new(None),
            script: None,
        }
    }

    pub(super) fn head(&self, method: &str, path: &str, extra: &[(&str, String)]) -> Head {
        let mut head = Head::from_pairs([
            (":method", method),
            (":path", path),
            (":authority", "shop.test"),
            ("x-forwarded-for", &self.ip),
        ]);
        for (k, v) in &self.headers {
            head.push(k.as_bytes(), v.as_bytes());
        }
        if !self.manner.stripped {
            for (k, v) in extra {
                head.push(k.as_bytes(), v.as_bytes());
            }
        }
        let session = self.cookie.as_ref().map(|c| format!("session_id={c}"));
        let cookies: Vec<String> = session.into_iter().chain(self.visitor.borrow().clone()).collect();
        if !cookies.is_empty() {
            head.push(b"cookie", cookies.join("; ").as_bytes());
        }
        // The example policy's trusted proxy (a local one) wrote the forwarded hop.
        head.peer = "127.0.0.1".parse().ok();
        head
    }

    /// The headers of a navigation (or, for `method` POST, a form submission).
    pub(super) fn nav_headers(&self, from: From<'_>) -> Vec<(&'static str, String)> {
        let mut h = vec![("accept", HTML_ACCEPT.to_string())];
        let m = self.manner;
        if m.sec_fetch {
            let site = match from {
                From::Nowhere => "none",
                From::Outside(_) => "cross-site",
                From::Page(_) => "same-origin",
            };
            h.push(("sec-fetch-site", site.into()));
            h.push(("sec-fetch-mode", "navigate".into()));
            h.push(("sec-fetch-dest", "document".into()));
            h.push(("sec-fetch-user", "?1".into()));
            h.push(("upgrade-insecure-requests", "1".into()));
        }
        match from {
            From::Outside(url) if m.referer => h.push(("referer", url.into())),
            From::Page(page) if m.referer => h.push(("referer", format!("{SITE}{page}"))),
            _ => {}
        }
        h
    }

    pub(super) fn sub_headers(&self, kind: Sub, page: &str) -> Vec<(&'static str, String)> {
        let (accept, mode, dest) = match kind {
            Sub::Script => ("*/*", "no-cors", "script"),
            Sub::Style => ("text/css,*/*;q=0.1", "no-cors", "style"),
            Sub::Image => ("image/avif,image/webp,image/apng,*/*;q=0.8", "no-cors", "image"),
            Sub::Xhr => ("application/json", "cors", "empty"),
        };
        let mut h = vec![("accept", accept.to_string())];
        if self.manner.sec_fetch {
            h.push(("sec-fetch-site", "same-origin".into()));
            h.push(("sec-fetch-mode", mode.into()));
            h.push(("sec-fetch-dest", dest.into()));
        }
        if self.manner.referer {
            h.push(("referer", format!("{SITE}{page}")));
        }
        h
    }
}

/// What one actor's requests met, for the yardstick's measure: a campaign is held when at
/// least 90% of its requests after its first 20 were refused (challenged, blocked or rate
/// limited); a campaign of 40 requests or fewer is judged on its second half.
#[derive(Debug, Default, Clone)]
pub(super) struct Watch {
    /// Refused or not, request by request.
    pub(super) refused: Vec<bool>,
    pub(super) last_now: u64,
}

impl Watch {
    pub(super) const GRACE: usize = 20;

    pub(super) fn held(&self) -> bool {
        let grace = Self::GRACE.min(self.refused.len() / 2);
        let judged = self.refused.get(grace..).unwrap_or(&[]);
        let refused = judged.iter().filter(|r| **r).count();
        !judged.is_empty() && refused * 10 >= judged.len() * 9
    }
}

thread_local! {
    static WATCH: RefCell<Watch> = RefCell::new(Watch::default());
}

/// Starts counting what the requests sent from now on meet; returns what was counted before.
pub(super) fn watch() -> Watch {
    WATCH.with(|w| w.take())
}

fn watched(now: u64, refused: bool) {
    WATCH.with(|cell| {
        let mut w = cell.borrow_mut();
        w.refused.push(refused);
        w.last_now = w.last_now.max(now);
    });
}

/// Sends one request; `true` when it was challenged or blocked (or would have been).
pub(super) fn send_with(
    e: &mut Engine,
    c: &Client,
    (method, path): (&str, &str),
    extra: &[(&str, String)],
    body: &[u8],
    now: u64,
    status: u32,
) -> bool {
    let head = c.head(method, path, extra);
    let d = drive::exchange(e, &head, (!body.is_empty()).then_some(body), now, status);
    if let (true, Some(set)) = (c.keeps_cookies, &d.visitor) {
        *c.visitor.borrow_mut() = set.split(';').next().map(str::to_string);
    }
    if let (Some(b), 200) = (&d.beacon, status) {
        // The page is HTML: the shell adds the script, and a browser that runs it answers.
        e.beacon_sent(b.session, now);
        if let (Some(traits), Some(token)) = (c.script, e.beacon_token(b, &head)) {
            let url = format!("/.well-known/botgate/beacon?t={token}&a={traits}");
            let answer = [("sec-fetch-site", "same-origin".to_string()), ("sec-fetch-mode", "no-cors".to_string())];
            drive::exchange(e, &c.head("POST", &url, &answer), None, now + 150, 204);
        }
    }
    // Detection is an enforced challenge or block (warn and observe modes act on no one).
    let hit = matches!(d.verdict, Verdict::Block | Verdict::Challenge(_));
    watched(now, hit || d.verdict == Verdict::RateLimited);
    let debug = std::env::var("BOTGATE_SIMULATE_DEBUG").ok();
    if (hit || debug.as_deref() == Some("all")) && debug.is_some() {
        eprintln!("{method} {path} -> {} {:.2} {:?}", d.outcome(), d.score, d.reasons);
    }
    hit
}

/// A request with the client's plain headers (the campaigns that are not about navigation).
pub(super) fn send(e: &mut Engine, c: &Client, method: &str, path: &str, body: &[u8], now: u64, status: u32) -> bool {
    let extra = if c.manner.sec_fetch { vec![("accept", HTML_ACCEPT.to_string())] } else { Vec::new() };
    send_with(e, c, (method, path), &extra, body, now, status)
}

pub(super) fn nav(e: &mut Engine, c: &Client, path: &str, from: From<'_>, now: u64, status: u32) -> bool {
    send_with(e, c, ("GET", path), &c.nav_headers(from), b"", now, status)
}

pub(super) fn sub(e: &mut Engine, c: &Client, kind: Sub, path: &str, page: &str, now: u64) -> bool {
    send_with(e, c, ("GET", path), &c.sub_headers(kind, page), b"", now, 200)
}

pub(super) fn pick<T: Copy>(rng: &mut Rng, items: &[T], fallback: T) -> T {
    items.get(rng.below(items.len() as u64) as usize).copied().unwrap_or(fallback)
}

pub(super) fn ip(rng: &mut Rng, prefix: u64) -> String {
    format!("{}.{}.{}.{}", prefix, rng.below(256), rng.below(256), 1 + rng.below(254))
}

/// An address on another network (a carrier, a VPN exit).
pub(super) fn elsewhere(rng: &mut Rng) -> String {
    let prefix = 80 + rng.below(20);
    ip(rng, prefix)
}

pub(super) fn weighted<T: Copy>(rng: &mut Rng, items: &[T], weight: impl Fn(&T) -> u64) -> Option<T> {
    let total: u64 = items.iter().map(&weight).sum();
    let mut x = rng.below(total);
    for item in items {
        let w = weight(item);
        if x < w {
            return Some(*item);
        }
        x -= w;
    }
    items.first().copied()
}
