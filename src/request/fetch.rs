//! What a request is to the page that caused it (a navigation, a sub-resource, neither), and
//! where it came from: this site, or another one.

use super::head::Head;

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

/// Whether `path` (normalised) names a static asset: a script, style, image, font or media file.
pub fn is_static_asset(path: &[u8]) -> bool {
    ASSET_ENDINGS.iter().any(|e| ends_with_ignore_case(path, e.as_bytes()))
}

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
    let asset = is_static_asset(path);
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

/// How a session opened: the classes a rotating scraper's sessions all fall into, and people's
/// spread over ([`crate::score::campaigns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Landing {
    /// The home page, or headers that say nothing.
    #[default]
    Other,
    /// A deep page with no referer: typed, bookmarked, a script's `goto`, an HTTP client's get.
    Direct,
    /// A deep page from another site's link (a search result, a forum post; a fixed referer).
    Outside,
    /// A deep page from a link on this site, as the session's first page: a person's session
    /// begins where their visit does, so this is a session lost mid-visit (rare) or a client
    /// replaying a link click's headers from a fresh address.
    InSite,
}

impl Landing {
    /// How the navigation `head` to `path` (normalised) opens a session.
    pub fn of(head: &Head, path: &[u8]) -> Landing {
        Landing::given(head, path, fetch_kind(head))
    }

    /// [`Landing::of`], with the request's [`fetch_kind`] already known.
    pub fn given(head: &Head, path: &[u8], fetch: Fetch) -> Landing {
        if path == b"/" {
            Landing::Other
        } else if direct(head, true) {
            Landing::Direct
        } else {
            match fetch {
                Fetch::Navigation { cold: Some(true) } => Landing::Outside,
                Fetch::Navigation { cold: Some(false) } => Landing::InSite,
                _ => Landing::Other,
            }
        }
    }
}

/// A navigation that says it came from no page (`sec-fetch-site: none`: typed, bookmarked, a
/// script's `goto`). `loose`: also one with no fetch metadata and no referer from a client
/// whose headers were not stripped wholesale, which an older browser with its referer turned
/// off sends for every link too.
pub fn direct(head: &Head, loose: bool) -> bool {
    match head.first("sec-fetch-site") {
        Some(site) => site == b"none",
        None => loose && head.first("referer").is_none() && head.first("accept-language").is_some(),
    }
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
fn names_own_host(head: &Head, url: &[u8]) -> bool {
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

/// A request another site made the browser send that is not a top-level page: an `<img>`,
/// `fetch`, `<iframe>` or form target from elsewhere — `sec-fetch-site: cross-site` or
/// `same-site` (a sibling subdomain may host anyone's pages), destination other than
/// `document`; without fetch metadata (older Safari), an `Origin` or `Referer` naming another
/// host. It carries the user's cookies, not the user's intent.
pub fn foreign_subresource(head: &Head) -> bool {
    let top_level = head.first("sec-fetch-dest").is_some_and(|d| d.eq_ignore_ascii_case(b"document"));
    match head.first("sec-fetch-site") {
        Some(site) => {
            (site.eq_ignore_ascii_case(b"cross-site") || site.eq_ignore_ascii_case(b"same-site")) && !top_level
        }
        None => {
            let named = head.first("origin").or_else(|| head.first("referer"));
            named.is_some_and(|url| !url.is_empty() && url != b"null" && !names_own_host(head, url))
                && !matches!(fetch_kind(head), Fetch::Navigation { .. })
        }
    }
}

/// Whether a request is one the user asked for here, on this site: not a sub-resource of
/// another site's page, not a navigation another site started. Only such a request spends a
/// challenge attempt (a hostile page opening a popup and navigating it from page to page must not
/// use up someone's attempts; a bot that claims otherwise gets puzzles it still has to solve).
pub fn own_request(head: &Head) -> bool {
    match head.first("sec-fetch-site") {
        Some(site) => site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none"),
        None => head.first("origin").or_else(|| head.first("referer")).is_none_or(|url| names_own_host(head, url)),
    }
}

/// Whether a request to one of botgate's state-changing endpoints comes from the site itself:
/// `sec-fetch-site: same-origin`; without fetch metadata (older browsers), an `origin` or
/// `referer` naming this host. A cross-site link, form or redirect chain is refused, so a third
/// party cannot make someone's browser submit (and fail) challenges. Non-browser clients send
/// `sec-fetch-site: same-origin` themselves.
pub fn same_origin(head: &Head) -> bool {
    if let Some(site) = head.first("sec-fetch-site") {
        return site.eq_ignore_ascii_case(b"same-origin");
    }
    match head.first("origin").or_else(|| head.first("referer")) {
        Some(url) => names_own_host(head, url),
        None => false,
    }
}

/// Whether the client wants HTML (a browser navigation).
pub fn wants_html(head: &Head) -> bool {
    head.first("accept").is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> Head {
        Head::from_pairs(pairs.iter().copied())
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

    #[test]
    fn only_this_hosts_referers_give_a_path() {
        let h = |r: &str| Head::from_pairs([(":authority", "shop.test"), ("referer", r)]);
        assert_eq!(in_site_referer_path(&h("https://shop.test/products/4?x=1#top")), Some(&b"/products/4"[..]));
        assert_eq!(in_site_referer_path(&h("https://shop.test")), Some(&b"/"[..]));
        assert_eq!(in_site_referer_path(&h("https://www.google.com/search?q=shop.test")), None);
        assert_eq!(in_site_referer_path(&Head::from_pairs([(":authority", "shop.test")])), None);
    }

    #[test]
    fn state_changing_endpoints_need_a_same_origin_request() {
        let h = |pairs: &[(&str, &str)]| Head::from_pairs(pairs.iter().copied().chain([(":authority", "shop.test")]));
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])));
        for site in ["cross-site", "same-site", "none"] {
            assert!(!same_origin(&h(&[("sec-fetch-site", site), ("referer", "http://shop.test/")])), "{site}");
        }
        assert!(same_origin(&h(&[("referer", "https://shop.test/members?x")])));
        assert!(same_origin(&h(&[("origin", "https://shop.test")])));
        assert!(!same_origin(&h(&[("referer", "https://shop.test.evil.example/")])));
        assert!(!same_origin(&h(&[("origin", "null"), ("referer", "https://shop.test/")])));
        assert!(!same_origin(&h(&[])), "no evidence is not same-origin");
    }
}
