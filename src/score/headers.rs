//! Signals from the request's head alone: what its user agent and headers say, and whether a
//! submission to a critical endpoint came from the site's own page.

use super::signal::Signal;
use crate::request::fetch::{in_site_referer_path, Fetch};
use crate::request::head::Head;

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

thread_local! {
    /// The user-agent verdicts of this worker's recent user agents ([`crate::base::memo`]).
    static VERDICTS: std::cell::RefCell<crate::base::memo::Memo<crate::request::user_agent::Verdict>> =
        std::cell::RefCell::new(crate::base::memo::Memo::default());
}

/// Signals from the request's headers alone; `fetch` is what the request is to its page
/// ([`crate::request::fetch::fetch_kind`]). The user agent gives at most one: none, a named HTTP library, a known
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
    } else {
        let v = VERDICTS.with(|m| match m.try_borrow_mut() {
            Ok(mut m) => m.get(ua, || crate::request::user_agent::verdict(ua)),
            Err(_) => crate::request::user_agent::verdict(ua),
        });
        if v.bot {
            push("bot_ua", 1.0);
        } else if matches!(fetch, Fetch::Navigation { .. }) && !v.browser_shaped {
            // Asking for a page as a person would, under a name no browser sends.
            push("non_browser_navigation", 1.0);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Weights;
    use crate::request::fetch::fetch_kind;
    use crate::score::signal::combine;

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
}
