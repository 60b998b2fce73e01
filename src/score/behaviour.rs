//! The behavioural score: named signals, each with a strength in [0, 1] and a weight, combined
//! as a noisy-OR (`1 - Π(1 - w·s)`), so the score stays in [0, 1], grows with every independent
//! signal, and every point of it is explained by a reason.

use crate::base::lru::Lru;
use crate::identity::session::Profile;
use crate::policy::Weights;
use crate::request::head::Head;

/// A signal that contributed to a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    pub name: &'static str,
    pub strength: f64,
}

/// Signals below this weighted strength are not named as reasons.
const REASON_FLOOR: f64 = 0.05;

pub fn combine(weights: &Weights, signals: &[Signal]) -> (f64, Vec<&'static str>) {
    let mut reasons = Vec::new();
    let score = combine_into(weights, signals, &mut reasons);
    (score, reasons)
}

/// The score alone of [`combine`] (no reasons, no allocation).
pub fn score(weights: &Weights, signals: &[Signal]) -> f64 {
    let keep: f64 =
        signals.iter().map(|s| 1.0 - (weights.of(s.name) * s.strength.clamp(0.0, 1.0)).clamp(0.0, 1.0)).product();
    (1.0 - keep).clamp(0.0, 1.0)
}

/// [`combine`], naming the reasons into `reasons` (no allocation of its own).
pub fn combine_into(weights: &Weights, signals: &[Signal], reasons: &mut Vec<&'static str>) -> f64 {
    let mut keep = 1.0;
    for s in signals {
        let contribution = (weights.of(s.name) * s.strength.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        keep *= 1.0 - contribution;
        if contribution >= REASON_FLOOR && !reasons.contains(&s.name) {
            reasons.push(s.name);
        }
    }
    (1.0 - keep).clamp(0.0, 1.0)
}

/// HTTP libraries name themselves at the start of their user agent.
const HTTP_LIBRARIES: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "python/",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "libwww-perl",
    "axios/",
    "node-fetch",
    "node",
    "undici",
    "scrapy",
    "httpie",
    "postmanruntime",
    "guzzlehttp",
    "ruby",
    "restsharp",
    "reqwest",
    "deno/",
    "bun/",
];
/// Signals from the request's headers alone; `fetch` is what the request is to its page
/// ([`fetch_kind`]). The user agent gives at most one: none, a named HTTP library, a known
/// automation ([`crate::request::user_agent`]), or, for a navigation, a client without a browser's shape.
pub fn header_signals(head: &Head, fetch: Fetch, out: &mut Vec<Signal>) {
    let raw = head.first("user-agent").unwrap_or(b"");
    let mut lower = [0u8; 512];
    let n = raw.len().min(lower.len());
    for (dst, src) in lower.iter_mut().zip(raw) {
        *dst = src.to_ascii_lowercase();
    }
    // Leading blanks are not part of the name (an anchored rule must not be dodged by a space).
    let ua = crate::request::head::trim(lower.get(..n).unwrap_or(b""));
    let mut push = |name, strength| out.push(Signal { name, strength });
    if ua.iter().all(u8::is_ascii_whitespace) {
        push("missing_user_agent", 1.0);
    } else if HTTP_LIBRARIES.iter().any(|p| ua.starts_with(p.as_bytes())) {
        push("http_library_ua", 1.0);
    } else if crate::request::user_agent::is_automation(ua) || crate::request::user_agent::declares_itself(ua) {
        push("bot_ua", 1.0);
    } else if matches!(fetch, Fetch::Navigation { .. }) && !crate::request::user_agent::browser_shaped(ua) {
        // Asking for a page as a person would, under a name no browser sends.
        push("non_browser_navigation", 1.0);
    }
    if head.first("accept").is_none() {
        push("missing_accept", 1.0);
    }
    if head.first("accept-language").is_none() {
        push("missing_accept_language", 1.0);
    }
    if hints_mismatch(head, ua) {
        push("client_hints_mismatch", 1.0);
    }
}

/// Client hints that contradict the user agent: only Chromium browsers send `sec-ch-ua`, and the
/// platform and mobile hints must agree with what the user agent claims.
fn hints_mismatch(head: &Head, ua: &[u8]) -> bool {
    let Some(brands) = head.first("sec-ch-ua") else {
        return false;
    };
    let ua = String::from_utf8_lossy(ua);
    let chromium = ua.contains("chrome/") || ua.contains("chromium/") || ua.contains("edg/");
    if !chromium {
        return true;
    }
    let brands = String::from_utf8_lossy(brands).to_ascii_lowercase();
    if ua.contains("edg/") != brands.contains("edge") && brands.contains("google chrome") == ua.contains("edg/") {
        return true;
    }
    if let Some(platform) = head.first("sec-ch-ua-platform") {
        let p = String::from_utf8_lossy(platform).to_ascii_lowercase();
        let claims = [("windows", "windows"), ("macos", "mac os x"), ("linux", "linux"), ("android", "android")];
        if claims.iter().any(|(hint, in_ua)| p.contains(hint) && !ua.contains(in_ua)) {
            return true;
        }
    }
    head.first("sec-ch-ua-mobile").is_some_and(|m| m == b"?1") && !ua.contains("mobile")
}

/// What a request is to the page that caused it: a navigation (a document the user asked for),
/// a sub-resource the page itself fetched (script, style, image, XHR), or neither (forms,
/// unknown). Browsers say so in `sec-fetch-mode`/`sec-fetch-dest`; without them, a GET asking
/// for HTML is a navigation and a static-looking path or a non-HTML `accept` a sub-resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// `cold`: the navigation came from outside the site (`sec-fetch-site: none` or
    /// `cross-site`; without `sec-fetch-site`, no referer from this host). `None` when the
    /// client's headers were stripped wholesale, so the missing context says nothing.
    Navigation {
        cold: Option<bool>,
    },
    Subresource,
    Other,
}

/// File endings of the assets a page loads.
const ASSET_ENDINGS: &[&str] = &[
    ".js", ".mjs", ".css", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg", ".ico", ".woff", ".woff2",
    ".ttf", ".map", ".mp4", ".webm",
];

pub fn fetch_kind(head: &Head) -> Fetch {
    let get = matches!(head.method(), b"GET" | b"HEAD");
    // Speculative loads (prefetch, prerender) are the browser's, not the user's.
    if head.first("sec-purpose").is_some() || head.first("purpose").is_some() {
        return Fetch::Other;
    }
    match head.first("sec-fetch-mode") {
        Some(b"navigate") if get => return Fetch::Navigation { cold: cold(head) },
        Some(b"navigate") => return Fetch::Other,
        Some(_) => return Fetch::Subresource,
        None => {}
    }
    let path = head.path();
    let asset = ASSET_ENDINGS.iter().any(|e| ends_with_ignore_case(path, e.as_bytes()));
    let accept = head.first("accept").unwrap_or(b"");
    if get && !asset && contains(accept, b"text/html") {
        return Fetch::Navigation { cold: cold(head) };
    }
    let specific = |t: &[u8]| contains(accept, t);
    if asset
        || specific(b"application/json")
        || specific(b"image/")
        || specific(b"text/css")
        || head.first("x-requested-with").is_some()
    {
        return Fetch::Subresource;
    }
    Fetch::Other
}

fn cold(head: &Head) -> Option<bool> {
    match head.first("sec-fetch-site") {
        Some(b"none" | b"cross-site") => return Some(true),
        Some(_) => return Some(false),
        None => {}
    }
    match head.first("referer") {
        Some(referer) => {
            let host = head.first(":authority").or_else(|| head.first("host"));
            Some(host.is_some_and(|h| !referer_host(referer).eq_ignore_ascii_case(h)))
        }
        // No referer and no fetch metadata: cold, unless the client's headers were stripped
        // wholesale (a proxy that drops `accept-language` drops the referer too).
        None => head.first("accept-language").is_some().then_some(true),
    }
}

/// The path of a referer on this request's own host, without query or fragment (as
/// [`Head::path`] gives a request's).
pub fn in_site_referer_path(head: &Head) -> Option<&[u8]> {
    let referer = head.first("referer")?;
    let host = head.first(":authority").or_else(|| head.first("host"))?;
    let (h, rest) = referer_parts(referer);
    if !h.eq_ignore_ascii_case(host) {
        return None;
    }
    let end = rest.iter().position(|b| matches!(b, b'?' | b'#')).unwrap_or(rest.len());
    let path = rest.get(..end)?;
    Some(if path.is_empty() { b"/" } else { path })
}

/// The `host[:port]` of a referer URL.
fn referer_host(referer: &[u8]) -> &[u8] {
    referer_parts(referer).0
}

/// Whether `url` (a referer, or an `Origin`) names this request's own `host[:port]`.
pub fn names_own_host(head: &Head, url: &[u8]) -> bool {
    let host = head.first(":authority").or_else(|| head.first("host")).unwrap_or(b"");
    !host.is_empty() && referer_host(url).eq_ignore_ascii_case(host)
}

/// A referer URL split after its `host[:port]`: (host, the rest from its path on).
fn referer_parts(referer: &[u8]) -> (&[u8], &[u8]) {
    let rest = referer.iter().position(|b| *b == b':').and_then(|i| referer.get(i + 1..)).unwrap_or(referer);
    let rest = rest.strip_prefix(b"//").unwrap_or(rest);
    let end = rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    rest.split_at_checked(end).unwrap_or((rest, b""))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn ends_with_ignore_case(s: &[u8], end: &[u8]) -> bool {
    s.len() >= end.len() && s.get(s.len() - end.len()..).is_some_and(|t| t.eq_ignore_ascii_case(end))
}

/// Navigations a session must have made before its navigation pattern counts.
const MIN_NAVIGATIONS: u16 = 4;

/// Signals from the session's run of requests. `site_renders`: most sessions on this worker
/// fetch their pages' sub-resources through it (see [`Rendering`]).
pub fn session_signals(p: &Profile, site_renders: bool, out: &mut Vec<Signal>) {
    let mut push = |name, strength: f64| {
        if strength > 0.0 {
            out.push(Signal { name, strength: strength.min(1.0) });
        }
    };
    // Humans rarely sustain more than a request every two seconds.
    push("velocity", (p.per_minute - 30.0) / 90.0);
    // Scheduled clients: many gaps, nearly all the same length, and short.
    if let (Some(cv), true) = (p.interval_cv, p.mean_interval_ms < 120_000.0) {
        push("regular_intervals", (0.15 - cv) / 0.15);
    }
    if p.requests >= 12 {
        push("low_variety", (0.3 - p.distinct_ratio) / 0.25);
    }
    if p.requests >= 6 {
        push("sensitive_share", (p.sensitive_share - 0.5) / 0.4);
    }
    if p.responses >= 6 {
        push("error_ratio", (p.error_ratio - 0.3) / 0.4);
    }
    // A session (kept by its cookie) that comes from one network after another: a rotating proxy
    // pool. People bring two (Wi-Fi, then their carrier), rarely three or four.
    push("address_hopping", (f64::from(p.networks) - 4.0) / 3.0);
    if p.navigations >= MIN_NAVIGATIONS {
        // People move through a site by its links (same-origin, with a referer); a client
        // that jumps to every page from outside (typed, bookmarked, `page.goto`, an HTTP
        // client) has a list of URLs. The landing navigation is cold for everyone.
        // People who open page after page from search results or bookmarks exist, so alone
        // this is weak.
        let after_first = f64::from(p.navigations - 1);
        let cold = f64::from(p.cold_navigations);
        // Claims of in-site navigation from pages the session never visited: a client replaying
        // a link click's headers with a fixed referer. One can be a person's odd path (a page
        // kept open from an earlier visit); three are a pattern.
        push("phantom_referers", (f64::from(p.phantom_referers) - 1.0) / 2.0);
        if cold >= 0.9 * after_first {
            push("cold_navigations", (cold - 2.0) / 8.0);
            // A browser rendering those pages fetches scripts, styles, images or XHR; a
            // client that only reads the HTML of a list of URLs does not. People whose cache
            // holds every asset and whose pages run no script rarely also open a dozen pages
            // from outside.
            if site_renders && p.subresources == 0 {
                push("unrendered_navigations", (cold - 5.0) / 8.0);
            }
        }
    }
}

/// Whether the pages served through this worker are rendered through it too: the share of
/// repeat navigations (a session's second and later) whose session has fetched a sub-resource.
/// A site whose assets come from a CDN sees almost none, and `unrendered_navigations` stays silent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rendering {
    navigations: u32,
    rendered: u32,
}

impl Rendering {
    /// Sessions heard before the share is trusted.
    pub const WARM_UP: u32 = 25;

    /// One session's word on whether the site's pages render: given once per session (its
    /// second navigation), and only by sessions nothing flags, so a flood of throwaway visits
    /// cannot outvote the people and turn `unrendered_navigations` off.
    pub fn record(&mut self, rendered: bool) {
        if self.navigations >= 4096 {
            self.navigations /= 2;
            self.rendered /= 2;
        }
        self.navigations += 1;
        self.rendered += u32::from(rendered);
    }

    pub fn site_renders(&self) -> bool {
        self.navigations >= Self::WARM_UP && self.rendered * 2 >= self.navigations
    }
}

/// `cold_submission`: a POST to a critical endpoint that did not come from the site's own page
/// (no same-origin fetch metadata; without fetch metadata, no referer from this site). People
/// submit the login form they were shown; a script posts straight at it. Weak alone (below any
/// challenge band): it is what lets `campaign_failures` corroborate a rotating campaign.
pub fn submission_signal(head: &Head, critical: bool, out: &mut Vec<Signal>) {
    if !critical || head.method() != b"POST" {
        return;
    }
    let from_site = match head.first("sec-fetch-site") {
        Some(site) => site.eq_ignore_ascii_case(b"same-origin"),
        None => in_site_referer_path(head).is_some(),
    };
    if !from_site {
        out.push(Signal { name: "cold_submission", strength: 1.0 });
    }
}

/// Failures on critical endpoints per client *shape* (user agent, language, header names in
/// order), whatever the address: a credential-stuffing campaign rotating through hundreds of
/// addresses still sends one shape, and nearly all its logins fail.
///
/// Anyone can fail logins in a popular browser's exact shape, so the view must not be turned
/// against the people who share it: counts decay with a half-life of [`Campaigns::HALF_LIFE_S`]
/// (a campaign that stops is forgotten), and the signal is only given to a request that
/// something else already flags (it corroborates, never challenges alone; see
/// [`Campaigns::signal`]).
pub struct Campaigns {
    /// shape → (logins, failures, when last decayed in s), the counts in sixteenths.
    table: Lru<u64, (u32, u32, u32)>,
}

impl Campaigns {
    pub const HALF_LIFE_S: u32 = 15 * 60;
    const ONE: u32 = 16;

    pub fn new(cap: usize) -> Self {
        Campaigns { table: Lru::new(cap) }
    }

    /// Halves the counts once per half-life since they were last touched.
    fn decay(entry: &mut (u32, u32, u32), now_s: u32) {
        let halvings = now_s.saturating_sub(entry.2) / Self::HALF_LIFE_S;
        if halvings > 0 {
            entry.0 = entry.0.checked_shr(halvings).unwrap_or(0);
            entry.1 = entry.1.checked_shr(halvings).unwrap_or(0);
            entry.2 = entry.2.saturating_add(halvings.saturating_mul(Self::HALF_LIFE_S));
        }
    }

    pub fn record(&mut self, shape: u64, failed: bool, now_ms: u64) {
        let now_s = (now_ms / 1000) as u32;
        let e = self.table.get_or_insert_with(shape, || (0, 0, now_s));
        Self::decay(e, now_s);
        if e.0 >= 1000 * Self::ONE {
            e.0 /= 2;
            e.1 /= 2;
        }
        e.0 += Self::ONE;
        e.1 += if failed { Self::ONE } else { 0 };
    }

    /// The score the other signals must reach before `campaign_failures` joins them: a trace of
    /// `velocity` (a page with many assets) is not corroboration.
    pub const CORROBORATION: f64 = 0.1;

    /// `campaign_failures` for a request of `shape`, when the other signals (`others`: their
    /// combined score) already flag it.
    pub fn signal(&mut self, shape: u64, now_ms: u64, others: f64, out: &mut Vec<Signal>) {
        if others < Self::CORROBORATION {
            return;
        }
        let now_s = (now_ms / 1000) as u32;
        let Some(e) = self.table.get_mut(&shape) else { return };
        Self::decay(e, now_s);
        let (n, f) = (e.0 / Self::ONE, e.1 / Self::ONE);
        if n >= 20 {
            let ratio = f64::from(f) / f64::from(n);
            let strength = (ratio - 0.5) / 0.3;
            if strength > 0.0 {
                out.push(Signal { name: "campaign_failures", strength: strength.min(1.0) });
            }
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The client's shape: user agent, language and the order of its header names.
pub fn shape(head: &Head) -> u64 {
    let mut names = [0u8; 256];
    let mut n = 0;
    for (name, _) in head.iter() {
        if name.starts_with(b":") || name.starts_with(b"x-") || name == b"cookie" || name == b"content-length" {
            continue;
        }
        for &b in name.iter().chain(b",") {
            if let Some(slot) = names.get_mut(n) {
                *slot = b;
                n += 1;
            }
        }
    }
    crate::base::fasthash::hash(&[
        head.first("user-agent").unwrap_or(b""),
        head.first("accept-language").unwrap_or(b""),
        names.get(..n).unwrap_or(b""),
    ])
}
#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> Head {
        Head::from_pairs(pairs.iter().copied())
    }

    fn score(h: &Head) -> (f64, Vec<&'static str>) {
        let mut s = Vec::new();
        header_signals(h, fetch_kind(h), &mut s);
        combine(&Weights::default(), &s)
    }

    #[test]
    fn browser_headers_score_zero() {
        let h = head(&[
            ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
            ("accept", "text/html"),
            ("accept-language", "en-GB"),
            ("sec-ch-ua", "\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\""),
            ("sec-ch-ua-platform", "\"Windows\""),
            ("sec-ch-ua-mobile", "?0"),
        ]);
        assert_eq!(score(&h), (0.0, vec![]));
    }

    #[test]
    fn libraries_and_lies_are_named() {
        let (s, r) = score(&head(&[("user-agent", "python-requests/2.31")]));
        assert!(s > 0.7, "{s}");
        assert_eq!(r, vec!["http_library_ua", "missing_accept", "missing_accept_language"]);
        let (_, r) = score(&head(&[
            ("user-agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Firefox/126.0"),
            ("accept", "*/*"),
            ("accept-language", "en"),
            ("sec-ch-ua", "\"Google Chrome\";v=\"126\""),
        ]));
        assert_eq!(r, vec!["client_hints_mismatch"]);
    }

    #[test]
    fn stripped_corporate_proxy_headers_are_ambiguous() {
        let (s, _) = score(&head(&[("user-agent", "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0")]));
        assert!((0.3..0.5).contains(&s), "{s}");
    }

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36";

    fn nav(site: Option<&str>, referer: Option<&str>) -> Head {
        let mut h = vec![
            (":method", "GET"),
            (":path", "/products/42"),
            (":authority", "shop.test"),
            ("user-agent", CHROME),
            ("accept", "text/html,application/xhtml+xml"),
            ("accept-language", "en-GB"),
        ];
        if let Some(site) = site {
            h.extend([("sec-fetch-site", site), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document")]);
        }
        if let Some(r) = referer {
            h.push(("referer", r));
        }
        head(&h)
    }

    #[test]
    fn requests_are_told_apart_by_what_they_are_to_the_page() {
        let cold = |c| Fetch::Navigation { cold: c };
        assert_eq!(fetch_kind(&nav(Some("none"), None)), cold(Some(true)));
        assert_eq!(fetch_kind(&nav(Some("cross-site"), Some("https://www.google.com/"))), cold(Some(true)));
        assert_eq!(fetch_kind(&nav(Some("same-origin"), None)), cold(Some(false)), "referer turned off");
        // No fetch metadata (older Safari, HTTP clients): the referer decides.
        assert_eq!(fetch_kind(&nav(None, Some("https://shop.test/products"))), cold(Some(false)));
        assert_eq!(fetch_kind(&nav(None, Some("https://elsewhere.test/shop.test"))), cold(Some(true)));
        assert_eq!(fetch_kind(&nav(None, None)), cold(Some(true)));
        // Headers stripped wholesale by a proxy: the missing referer says nothing.
        let stripped = head(&[(":path", "/p"), ("user-agent", CHROME), ("accept", "text/html")]);
        assert_eq!(fetch_kind(&stripped), cold(None));
        let sub = |pairs: &[(&str, &str)]| fetch_kind(&head(pairs));
        assert_eq!(sub(&[(":path", "/a.js"), ("sec-fetch-mode", "no-cors")]), Fetch::Subresource);
        assert_eq!(sub(&[(":path", "/static/app.CSS"), ("accept", "*/*")]), Fetch::Subresource);
        assert_eq!(sub(&[(":path", "/ajax/cart"), ("accept", "application/json")]), Fetch::Subresource);
        assert_eq!(sub(&[(":path", "/products/1"), ("accept", "*/*")]), Fetch::Other);
        assert_eq!(sub(&[(":method", "POST"), (":path", "/login"), ("sec-fetch-mode", "navigate")]), Fetch::Other);
        let prefetch = &[(":path", "/p"), ("sec-fetch-mode", "navigate"), ("sec-purpose", "prefetch")];
        assert_eq!(sub(prefetch), Fetch::Other);
    }

    /// A session's signals after `navs` navigations (`cold`: how each is started) and `subs`
    /// sub-resources.
    fn session(navs: &[Option<bool>], subs: u16, site_renders: bool) -> (f64, Vec<&'static str>) {
        let mut s = crate::identity::session::Session::default();
        let at = |i: u64| i * 9_000 + (i * i * 1_237) % 7_000;
        for (i, cold) in navs.iter().enumerate() {
            s.record(at(i as u64), format!("/products/{i}").as_bytes(), false);
            s.record_fetch(Fetch::Navigation { cold: *cold }, b"/", None);
        }
        for _ in 0..subs {
            s.record_fetch(Fetch::Subresource, b"/", None);
        }
        let mut out = Vec::new();
        session_signals(&s.profile(at(navs.len() as u64)), site_renders, &mut out);
        combine(&Weights::default(), &out)
    }

    #[test]
    fn a_list_of_urls_read_without_rendering_is_named() {
        // Low-and-slow scraper: fourteen pages, each opened from nowhere, nothing rendered.
        let (score, reasons) = session(&[Some(true); 14], 0, true);
        assert_eq!(reasons, vec!["cold_navigations", "unrendered_navigations"]);
        // At full strength: inside the medium-tier challenge range, short of a block (0.85):
        // these two alone ask for proof of work, they never block.
        assert!((0.75..0.85).contains(&score), "{score}");
        // Twelve pages reach the medium-tier challenge (0.60); eleven do not.
        let (score, _) = session(&[Some(true); 12], 0, true);
        assert!(score >= 0.6, "{score}");
        let (score, _) = session(&[Some(true); 11], 0, true);
        assert!(score < 0.6, "{score}");
    }

    #[test]
    fn people_who_trip_one_half_stay_below_every_challenge_floor() {
        // Opening ten search results, each page rendered.
        let (score, reasons) = session(&[Some(true); 10], 6, true);
        assert_eq!(reasons, vec!["cold_navigations"]);
        assert!(score < 0.2, "{score}");
        // Warm cache and no scripts (reader mode, NoScript), following links.
        let mut navs = vec![Some(false); 15];
        navs[0] = Some(true);
        assert_eq!(session(&navs, 0, true), (0.0, vec![]));
        // Behind a proxy that strips every header: no evidence either way.
        assert_eq!(session(&[None; 15], 0, true), (0.0, vec![]));
        // One link followed among many typed addresses breaks the run.
        let mut navs = vec![Some(true); 8];
        navs[4] = Some(false);
        assert_eq!(session(&navs, 0, true), (0.0, vec![]));
        // A site whose assets come from a CDN: nothing to miss.
        let (_, reasons) = session(&[Some(true); 14], 0, false);
        assert_eq!(reasons, vec!["cold_navigations"]);
    }

    #[test]
    fn rendering_is_trusted_once_most_repeat_navigations_render() {
        let mut r = Rendering::default();
        for i in 0..Rendering::WARM_UP - 1 {
            r.record(i % 3 != 0);
        }
        assert!(!r.site_renders(), "warming up");
        r.record(true);
        assert!(r.site_renders());
        let mut cdn = Rendering::default();
        for i in 0..5_000 {
            cdn.record(i % 10 == 0);
        }
        assert!(!cdn.site_renders());
    }

    #[test]
    fn combine_stays_in_range() {
        let all: Vec<Signal> = crate::policy::SIGNALS.iter().map(|(n, _)| Signal { name: n, strength: 5.0 }).collect();
        let (s, r) = combine(&Weights::default(), &all);
        assert!((0.0..=1.0).contains(&s));
        assert_eq!(r.len(), all.len());
    }
}

#[cfg(test)]
mod referer_path_tests {
    use super::*;

    #[test]
    fn only_this_hosts_referers_give_a_path() {
        let h = |r: &str| Head::from_pairs([(":authority", "shop.test"), ("referer", r)]);
        assert_eq!(in_site_referer_path(&h("https://shop.test/products/4?x=1#top")), Some(&b"/products/4"[..]));
        assert_eq!(in_site_referer_path(&h("https://shop.test")), Some(&b"/"[..]));
        assert_eq!(in_site_referer_path(&h("https://www.google.com/search?q=shop.test")), None);
        assert_eq!(in_site_referer_path(&Head::from_pairs([(":authority", "shop.test")])), None);
    }
}
