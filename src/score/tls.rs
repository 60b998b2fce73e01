//! TLS client fingerprints (JA4): a browser's user agent on an HTTP library's handshake.
//!
//! A Wasm filter cannot see the TLS handshake, but Envoy computes its JA4 in `tls_inspector`
//! (`enable_ja4_fingerprinting`) and a `header_mutation` filter before botgate copies
//! `%TLS_JA4_FINGERPRINT%` into a request header (overwriting whatever the client sent), which
//! botgate reads. A JA4 is `a_b_c`: `a` says how the client was called (protocol, TLS version, SNI
//! or not, cipher and extension counts, ALPN), `b` hashes the cipher suites and `c` the extensions
//! (without SNI and ALPN). The same library gives the same `b_c` whether it connects by name or
//! by address, over HTTP/1.1 or HTTP/2, so entries match on `b_c` only.
//!
//! The signal fires only when the user agent claims a browser (`Mozilla/…`): a client that says
//! it is `python-requests` is already named by its user agent, and one that lies about it is the
//! bot worth catching. Impersonating stacks (curl-impersonate, tls-client) present a browser's
//! JA4 and are not caught here, by design: this is one signal among several.

pub use crate::policy::tls::{bc_of, Client, Fingerprints};
use crate::request::head::Head;
use crate::score::signal::Signal;

/// Adds `automation_tls` when the handshake is a listed automation client's while the user agent
/// claims a browser; returns the client's label.
pub fn signal<'f>(f: &'f Fingerprints, head: &Head, out: &mut Vec<Signal>) -> Option<&'f str> {
    if !f.enabled() {
        return None;
    }
    let bc = head.first(&f.header).and_then(bc_of)?;
    let ua = head.first("user-agent").unwrap_or(b"");
    if !ua.get(..8).is_some_and(|p| p.eq_ignore_ascii_case(b"mozilla/")) {
        return None;
    }
    let client = f.automation.iter().find(|c| c.bc == bc)?;
    out.push(Signal { name: "automation_tls", strength: 1.0 });
    Some(&client.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Measured through Envoy 1.40's tls_inspector on this project's test machine.
    const REQUESTS_BY_IP: &str = "t13i1811h1_85036bcba153_b26ce05bbdd6";
    const REQUESTS_BY_NAME: &str = "t13d1812h1_85036bcba153_b26ce05bbdd6";
    const CHROMIUM: &str = "t13d1517h2_8daaf6152771_63ff51340b64";

    fn listed() -> Fingerprints {
        Fingerprints {
            header: "x-tls-ja4".into(),
            automation: vec![Client { bc: bc_of(REQUESTS_BY_IP.as_bytes()).unwrap(), label: "requests".into() }],
        }
    }

    fn head(ua: &str, ja4: &str) -> Head {
        Head::from_pairs([("user-agent", ua), ("x-tls-ja4", ja4)])
    }

    #[test]
    fn a_browser_user_agent_on_a_library_handshake_is_named() {
        let mut out = Vec::new();
        let f = listed();
        let label = signal(&f, &head("Mozilla/5.0 (Windows NT 10.0) Chrome/131.0", REQUESTS_BY_NAME), &mut out);
        assert_eq!(label, Some("requests"));
        assert_eq!(out, vec![Signal { name: "automation_tls", strength: 1.0 }]);
    }

    #[test]
    fn browsers_honest_libraries_and_missing_or_bad_fingerprints_are_not() {
        let f = listed();
        for h in [
            head("Mozilla/5.0 Chrome/156.0", CHROMIUM),
            head("python-requests/2.34", REQUESTS_BY_IP), // says what it is: the UA signal's job
            head("Mozilla/5.0 Chrome/156.0", "-"),        // not TLS
            head("Mozilla/5.0 Chrome/156.0", "t13i1811h1_85036bcba153_b26ce05bbdd"),
            head("Mozilla/5.0 Chrome/156.0", "t13i1811h1_85036BCBA153_b26ce05bbdd6"),
            head("Mozilla/5.0 Chrome/156.0", "t13i1811h1-85036bcba153_b26ce05bbdd6"),
            Head::from_pairs([("user-agent", "Mozilla/5.0")]),
        ] {
            let mut out = Vec::new();
            assert_eq!(signal(&f, &h, &mut out), None, "{h:?}");
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        assert_eq!(signal(&Fingerprints::default(), &head("Mozilla/5.0", REQUESTS_BY_IP), &mut out), None);
    }

    #[test]
    fn bc_ignores_how_the_client_was_called() {
        assert_eq!(bc_of(REQUESTS_BY_IP.as_bytes()), bc_of(REQUESTS_BY_NAME.as_bytes()));
        assert_eq!(
            bc_of(b" t13d3112h2_e8f1e7e78f70_b26ce05bbdd6 ").map(|b| b.to_vec()),
            Some(b"e8f1e7e78f70_b26ce05bbdd6".to_vec())
        );
        assert_eq!(bc_of("t13d1517h2_8daaf6152771_63ff51340b6é".as_bytes()), None);
    }
}
