//! Adding the beacon's script to an HTML response: where in the page, and whether the page's
//! Content-Security-Policy lets it run. Pure, so the shell only moves bytes.
//!
//! Never breaking a page comes first: a response is left alone when it is not HTML, is
//! compressed, has a CSP that would refuse the script (it would only add a console error, but
//! the page is the site's), declares a CSP in a `<meta>` tag botgate cannot read in time, or has
//! no `</head>` or `<body>` in its first bytes. The script is added before `</head>`, else after
//! the opening `<body …>` tag.

use super::beacon;

/// How the page's CSP lets an inline script run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// As it is (no CSP for scripts, `'unsafe-inline'`, or the script's hash listed).
    Inline,
    /// With the page's own nonce.
    Nonce(String),
    /// Not at all: the page is left alone.
    Refused,
}

/// What the `content-security-policy` header values (every one is enforced) say of the script.
pub fn csp_admits(values: &[&[u8]], hash: &str) -> Admit {
    let mut nonce: Option<String> = None;
    for policy in values.iter().flat_map(|v| v.split(|&b| b == b',')) {
        match policy_admits(policy, hash) {
            Admit::Inline => {}
            Admit::Refused => return Admit::Refused,
            Admit::Nonce(n) => match &nonce {
                Some(m) if *m != n => return Admit::Refused,
                _ => nonce = Some(n),
            },
        }
    }
    nonce.map_or(Admit::Inline, Admit::Nonce)
}

/// One policy: the directive that governs `<script>` elements (`script-src-elem`, else
/// `script-src`, else `default-src`).
fn policy_admits(policy: &[u8], hash: &str) -> Admit {
    let text = String::from_utf8_lossy(policy).to_ascii_lowercase();
    let original = String::from_utf8_lossy(policy);
    let directives: Vec<(&str, usize)> = text
        .split(';')
        .scan(0, |at, d| {
            let start = *at;
            *at += d.len() + 1;
            Some((d, start))
        })
        .collect();
    let find = |name: &str| directives.iter().find(|(d, _)| d.split_whitespace().next() == Some(name));
    // The beacon is sent with `sendBeacon`/`fetch` (`connect-src`) from the page's own origin
    // (a sandbox without `allow-same-origin` makes it cross-site): a page that would refuse it
    // is left alone rather than its visitors made to look silent.
    if let Some(&(sandbox, _)) = find("sandbox") {
        let allows = |flag: &str| sandbox.split_whitespace().any(|t| t == flag);
        if !(allows("allow-scripts") && allows("allow-same-origin")) {
            return Admit::Refused;
        }
    }
    if let Some(&(connect, _)) = find("connect-src").or_else(|| find("default-src")) {
        if !connect.split_whitespace().skip(1).any(|t| t == "'self'" || t == "*") {
            return Admit::Refused;
        }
    }
    let Some(&(directive, start)) =
        find("script-src-elem").or_else(|| find("script-src")).or_else(|| find("default-src"))
    else {
        return Admit::Inline;
    };
    // Sources as written (a nonce is case-sensitive).
    let sources = original.get(start..start + directive.len()).unwrap_or("");
    let mut sources = sources.split_whitespace().skip(1);
    let (mut unsafe_inline, mut restricted) = (false, false);
    for s in sources.by_ref() {
        let lower = s.to_ascii_lowercase();
        if lower == hash.to_ascii_lowercase() && s == hash {
            return Admit::Inline;
        }
        if let Some(n) = s.strip_prefix("'nonce-").and_then(|n| n.strip_suffix('\'')) {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b)) {
                return Admit::Nonce(n.to_string());
            }
        }
        unsafe_inline |= lower == "'unsafe-inline'";
        restricted |= lower.starts_with("'sha") || lower.starts_with("'nonce-") || lower == "'strict-dynamic'";
    }
    if unsafe_inline && !restricted {
        Admit::Inline
    } else {
        Admit::Refused
    }
}

/// What a chunk of the page says about where the script goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot {
    /// Insert at this offset of the chunk.
    At(usize),
    /// The page sets its CSP in a `<meta>` tag: leave it alone.
    MetaCsp,
    /// Not in this chunk.
    NotYet,
}

/// Where in `html` the script goes: before `</head>`, else after the opening `<body …>` tag.
pub fn spot(html: &[u8]) -> Spot {
    if find(html, b"content-security-policy").is_some_and(|i| find(html.get(..i).unwrap_or(&[]), b"<meta").is_some()) {
        return Spot::MetaCsp;
    }
    if let Some(i) = find(html, b"</head") {
        return Spot::At(i);
    }
    // `<body` only where no script came before it in the chunk (it could be inside the
    // script's own text).
    if let Some(i) = find(html, b"<body").filter(|&i| find(html.get(..i).unwrap_or(&[]), b"<script").is_none()) {
        let rest = html.get(i..).unwrap_or(&[]);
        if let Some(end) = rest.iter().position(|&b| b == b'>') {
            return Spot::At(i + end + 1);
        }
    }
    Spot::NotYet
}

/// The element added to a page carrying `token`.
pub fn element(token: &str, admit: &Admit) -> String {
    let nonce = match admit {
        Admit::Nonce(n) => format!(" nonce=\"{n}\""),
        _ => String::new(),
    };
    format!("<script data-t=\"{token}\"{nonce}>{}</script>", beacon::SCRIPT)
}

/// `chunk` with `element` inserted at `at`.
pub fn insert(chunk: &[u8], at: usize, element: &str) -> Vec<u8> {
    let at = at.min(chunk.len());
    let mut out = Vec::with_capacity(chunk.len() + element.len());
    out.extend_from_slice(chunk.get(..at).unwrap_or(chunk));
    out.extend_from_slice(element.as_bytes());
    out.extend_from_slice(chunk.get(at..).unwrap_or(&[]));
    out
}

/// The response headers that say whether botgate may add to a page.
#[derive(Debug, Clone, Copy, Default)]
pub struct Response<'a> {
    pub content_type: Option<&'a [u8]>,
    pub content_encoding: Option<&'a [u8]>,
    pub cache_control: Option<&'a [u8]>,
    pub content_disposition: Option<&'a [u8]>,
}

/// Whether botgate can add to this response: HTML, not compressed, not a download, and not
/// meant for shared caches (a page carrying one session's token must not be served to others).
pub fn is_plain_html(r: Response<'_>) -> bool {
    let html = r.content_type.is_some_and(|t| t.get(..9).is_some_and(|p| p.eq_ignore_ascii_case(b"text/html")));
    let plain = r.content_encoding.is_none_or(|e| e.is_empty() || e.eq_ignore_ascii_case(b"identity"));
    let shared = r.cache_control.is_some_and(|c| find(c, b"public").is_some() || find(c, b"s-maxage").is_some());
    let download = r.content_disposition.is_some_and(|d| find(d, b"attachment").is_some());
    html && plain && !shared && !download
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "'sha256-abc='";

    #[test]
    fn a_page_without_a_script_policy_takes_the_script_inline() {
        assert_eq!(csp_admits(&[], H), Admit::Inline);
        assert_eq!(csp_admits(&[b"img-src 'self'; frame-ancestors 'none'"], H), Admit::Inline);
        assert_eq!(csp_admits(&[b"script-src 'self' 'unsafe-inline'"], H), Admit::Inline);
    }

    #[test]
    fn the_pages_nonce_is_used_and_never_invented() {
        assert_eq!(
            csp_admits(&[b"script-src 'nonce-R4nd0m+/=' 'strict-dynamic'"], H),
            Admit::Nonce("R4nd0m+/=".into())
        );
        assert_eq!(csp_admits(&[b"default-src 'self'; script-src 'nonce-a\"b'"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"script-src 'nonce-a'", b"script-src 'nonce-b'"], H), Admit::Refused);
    }

    #[test]
    fn a_policy_that_would_refuse_the_script_leaves_the_page_alone() {
        assert_eq!(csp_admits(&[b"script-src 'self'"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"default-src 'self'"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"script-src 'unsafe-inline' 'sha256-other='"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"script-src 'unsafe-inline'", b"script-src 'self'"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"script-src 'unsafe-inline', default-src 'none'"], H), Admit::Refused);
        // script-src-elem governs elements, whatever script-src says.
        assert_eq!(csp_admits(&[b"script-src 'unsafe-inline'; script-src-elem 'self'"], H), Admit::Refused);
    }

    #[test]
    fn listing_the_scripts_hash_admits_it() {
        assert_eq!(csp_admits(&[b"script-src 'self' 'sha256-abc='"], H), Admit::Inline);
    }

    #[test]
    fn the_script_goes_before_the_head_closes_or_after_the_body_opens() {
        assert_eq!(spot(b"<html><head><title>x</title></HEAD><body>"), Spot::At(28));
        assert_eq!(spot(b"<html><BODY class=\"a\">hi"), Spot::At(22));
        assert_eq!(spot(b"<html><body class=\"a"), Spot::NotYet);
        assert_eq!(spot(b"<meta http-equiv=\"Content-Security-Policy\" content=\"x\"></head>"), Spot::MetaCsp);
        let page = insert(b"<head></head>", 6, "<script></script>");
        assert_eq!(page, b"<head><script></script></head>");
    }

    #[test]
    fn only_plain_private_html_is_touched() {
        let html = |t: &'static [u8]| Response { content_type: Some(t), ..Response::default() };
        assert!(is_plain_html(html(b"text/html; charset=utf-8")));
        assert!(is_plain_html(Response { content_encoding: Some(b"identity"), ..html(b"TEXT/HTML") }));
        assert!(is_plain_html(Response { cache_control: Some(b"private, max-age=60"), ..html(b"text/html") }));
        assert!(!is_plain_html(Response { content_encoding: Some(b"gzip"), ..html(b"text/html") }));
        assert!(!is_plain_html(Response { cache_control: Some(b"public, max-age=600"), ..html(b"text/html") }));
        assert!(!is_plain_html(Response { cache_control: Some(b"max-age=0, s-maxage=600"), ..html(b"text/html") }));
        assert!(!is_plain_html(Response { content_disposition: Some(b"attachment; x.html"), ..html(b"text/html") }));
        assert!(!is_plain_html(html(b"application/json")));
        assert!(!is_plain_html(Response::default()));
    }

    #[test]
    fn a_policy_that_would_refuse_the_beacon_itself_leaves_the_page_alone() {
        assert_eq!(csp_admits(&[b"default-src 'none'; script-src 'nonce-x'"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"script-src 'unsafe-inline'; connect-src https://api.test"], H), Admit::Refused);
        assert_eq!(csp_admits(&[b"script-src 'unsafe-inline'; sandbox allow-scripts"], H), Admit::Refused);
        let ok = csp_admits(&[b"script-src 'unsafe-inline'; sandbox allow-scripts allow-same-origin"], H);
        assert_eq!(ok, Admit::Inline);
        assert_eq!(csp_admits(&[b"sandbox allow-same-origin"], H), Admit::Refused, "no scripts at all");
        assert_eq!(csp_admits(&[b"default-src 'self' 'unsafe-inline'"], H), Admit::Inline);
    }

    #[test]
    fn a_body_tag_inside_a_head_script_is_not_a_spot() {
        assert_eq!(spot(b"<html><head><script>var t = '<body class=x>';"), Spot::NotYet);
    }

    #[test]
    fn the_element_carries_the_token_and_nonce() {
        let e = element("ab.1.xyz", &Admit::Nonce("n1".into()));
        assert!(e.starts_with("<script data-t=\"ab.1.xyz\" nonce=\"n1\">") && e.ends_with("</script>"));
    }
}
