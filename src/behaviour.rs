//! The behavioural score: named signals, each with a strength in [0, 1] and a weight, combined
//! as a noisy-OR (`1 - Π(1 - w·s)`), so the score stays in [0, 1], grows with every independent
//! signal, and every point of it is explained by a reason.

use crate::lru::Lru;
use crate::policy::Weights;
use crate::session::Profile;
use crate::signals::Head;

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
/// Automation and crawlers say so anywhere in the user agent.
const BOT_PATTERNS: &[&str] = &[
    "headlesschrome",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "bot",
    "crawler",
    "spider",
    "scraper",
    "slurp",
    "facebookexternalhit",
];

/// Whether any pattern occurs in `ua` (lower-case): one pass, trying only the patterns that
/// start with the byte at hand (this runs on every request).
fn mentions_any(ua: &[u8], patterns: &[&str]) -> bool {
    let mut firsts = [false; 256];
    for p in patterns {
        if let Some(&b) = p.as_bytes().first() {
            if let Some(slot) = firsts.get_mut(usize::from(b)) {
                *slot = true;
            }
        }
    }
    ua.iter().enumerate().any(|(i, &b)| {
        firsts.get(usize::from(b)).copied().unwrap_or(false)
            && patterns.iter().any(|p| ua.get(i..).is_some_and(|rest| rest.starts_with(p.as_bytes())))
    })
}

/// Signals from the request's headers alone.
pub fn header_signals(head: &Head, out: &mut Vec<Signal>) {
    let raw = head.first("user-agent").unwrap_or(b"");
    let mut lower = [0u8; 512];
    let n = raw.len().min(lower.len());
    for (dst, src) in lower.iter_mut().zip(raw) {
        *dst = src.to_ascii_lowercase();
    }
    let ua = lower.get(..n).unwrap_or(b"");
    let mut push = |name, strength| out.push(Signal { name, strength });
    if ua.iter().all(u8::is_ascii_whitespace) {
        push("missing_user_agent", 1.0);
    } else if HTTP_LIBRARIES.iter().any(|p| ua.starts_with(p.as_bytes())) {
        push("http_library_ua", 1.0);
    } else if mentions_any(ua, BOT_PATTERNS) {
        push("bot_ua", 1.0);
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

/// Signals from the session's run of requests.
pub fn session_signals(p: &Profile, out: &mut Vec<Signal>) {
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
}

/// Failures on critical endpoints per client *shape* (user agent, language, header names in
/// order), whatever the address: a credential-stuffing campaign rotating through hundreds of
/// addresses still sends one shape, and nearly all its logins fail.
pub struct Campaigns {
    table: Lru<u64, (u32, u32)>,
}

impl Campaigns {
    pub fn new(cap: usize) -> Self {
        Campaigns { table: Lru::new(cap) }
    }

    pub fn record(&mut self, shape: u64, failed: bool) {
        let (n, f) = self.table.get_or_insert_with(shape, || (0, 0));
        if *n >= 1000 {
            *n /= 2;
            *f /= 2;
        }
        *n += 1;
        *f += u32::from(failed);
    }

    pub fn signal(&self, shape: u64, out: &mut Vec<Signal>) {
        if let Some(&(n, f)) = self.table.peek(&shape) {
            if n >= 20 {
                let ratio = f64::from(f) / f64::from(n);
                let strength = (ratio - 0.5) / 0.3;
                if strength > 0.0 {
                    out.push(Signal { name: "campaign_failures", strength: strength.min(1.0) });
                }
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
    crate::fasthash::hash(&[
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
        header_signals(h, &mut s);
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

    #[test]
    fn combine_stays_in_range() {
        let all: Vec<Signal> = crate::policy::SIGNALS.iter().map(|(n, _)| Signal { name: n, strength: 5.0 }).collect();
        let (s, r) = combine(&Weights::default(), &all);
        assert!((0.0..=1.0).contains(&s));
        assert_eq!(r.len(), all.len());
    }
}
