//! Cookies, read as the upstream reads them.

use super::head::Head;

impl Head {
    /// The value of cookie `name` from any `cookie` header (the first, if repeated).
    pub fn cookie<'a>(&'a self, name: &str) -> Option<&'a [u8]> {
        self.all("cookie").flat_map(|h| h.split(|b| *b == b';')).find_map(|pair| pair_value(pair, name))
    }

    /// Every value of cookie `name`, in order. Names and values are trimmed of spaces and tabs, as
    /// the upstream's parser (Go, Python, Express…) trims them: botgate must see the cookie the
    /// upstream sees, or a stolen session cookie spelt `;  session_id=…` would pass as anonymous.
    pub fn cookies<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.all("cookie").flat_map(|h| h.split(|b| *b == b';')).filter_map(move |pair| pair_value(pair, name))
    }
}

/// The value of one `name=value` pair of a cookie header, if it is `name`'s.
fn pair_value<'a>(pair: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let eq = pair.iter().position(|b| *b == b'=')?;
    (trim_ws(pair.get(..eq)?) == name.as_bytes()).then(|| trim_ws(pair.get(eq + 1..).unwrap_or(b"")))
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or(b"")
}
