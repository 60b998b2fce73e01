//! Where a browser goes back to after a challenge: the `return` path, checked so it stays on
//! the site and never leads back into botgate's own endpoints (no open redirects, no chains).

use super::gate::PREFIX;
use crate::request::head::Head;

/// Longest `return` path carried through a challenge.
pub const MAX_RETURN_LEN: usize = 2048;

/// Where to continue after a challenge: the request's own path and query, for a GET.
pub fn return_path(head: &Head) -> Option<String> {
    if head.method() != b"GET" {
        return None;
    }
    let full = std::str::from_utf8(head.first(":path")?).ok()?;
    safe_return(full).map(str::to_string)
}

/// A same-site path: starts with one `/`, no scheme-relative `//` or `/\`, no control bytes,
/// bounded length, and not one of botgate's own endpoints (no redirect chains through them).
/// Anything else is dropped (no open redirects).
pub fn safe_return(p: &str) -> Option<&str> {
    let b = p.as_bytes();
    // As Envoy will route it (dot segments, merged slashes, escapes, any case).
    let route = crate::request::path::normalise(p.split('?').next().unwrap_or(p).as_bytes(), true);
    let own = crate::request::path::covers(PREFIX.trim_end_matches('/').as_bytes(), &route);
    let ok = b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && p.len() <= MAX_RETURN_LEN
        && b.iter().all(|c| (0x21..0x7f).contains(c))
        && !own;
    ok.then_some(p)
}

/// The value of query parameter `name`, percent-decoded.
pub fn query_param(query: &[u8], name: &str) -> Option<String> {
    query.split(|b| *b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|b| *b == b'=')?;
        (pair.get(..eq)? == name.as_bytes()).then(|| percent_decode(pair.get(eq + 1..).unwrap_or(b"")))?
    })
}

fn percent_decode(v: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        match b {
            b'%' => {
                let hex = v.get(i + 1..i + 3)?;
                let s = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(s, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(safe_return("/a?b=c"), Some("/a?b=c"));
        for bad in [
            "//evil.example/",
            "/\\evil",
            "https://evil.example/",
            "",
            "/a b",
            "/\u{7f}",
            "/.well-known/botgate/verify?challenge=x&solution=1",
            "/%2Ewell-known/botgate/pow",
            "/.well-known//botgate/pow",
            "/.Well-Known/botgate//verify",
            "/x/../.well-known/botgate/pow",
        ] {
            assert_eq!(safe_return(bad), None, "{bad:?}");
        }
        assert_eq!(query_param(b"x=1&return=%2Fcart%3Fa%3D1&y", "return").as_deref(), Some("/cart?a=1"));
        assert_eq!(query_param(b"return=%zz", "return"), None);
    }
}
