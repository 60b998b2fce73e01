//! How a session is named: by the configured session cookie or header (hashed, so the raw value
//! is never kept), else by a genuine visitor cookie, else by the client's fingerprint (address,
//! user agent, language) keyed with a secret so nobody can aim at another's id.

use crate::policy::SessionConfig;
use crate::request::head::Head;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::net::IpAddr;

/// What a session is named by: its id, and how it was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionKey {
    pub id: u64,
    /// Named by the session cookie or header: a signed-in user.
    pub authenticated: bool,
    /// Named by a genuine visitor cookie.
    pub visitor: bool,
}

impl SessionKey {
    pub fn hex(&self) -> String {
        format!("{:016x}", self.id)
    }
}

/// The secret that keys anonymous session ids. Unkeyed, an id is a public function of the
/// address, user agent and language, and a crafted user agent from another address can reach a
/// victim's id (and its counters, its failures, its clearance); keyed with SipHash under a
/// secret derived from the clearance key, ids cannot be aimed at. Derived, not random, so every
/// worker (and every Envoy sharing the key) names one client's session alike, as the puzzles
/// bound to a session need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdKey(u64, u64);

impl IdKey {
    pub fn derive(secret: &[u8]) -> IdKey {
        let tag = crate::base::mac::sign(secret, b"botgate/v1 anonymous session ids");
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(tag.get(at..at + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(b)
        };
        IdKey(word(0), word(8))
    }

    /// SipHash-2-4 of `parts` (length-prefixed) under the key: keyed, and nanoseconds, not the
    /// microseconds of an HMAC inside a Wasm VM. `std`'s `SipHasher` is deprecated only in favour
    /// of the unkeyed-by-default `DefaultHasher`; its algorithm is fixed and documented.
    pub fn hash(&self, parts: &[&[u8]]) -> u64 {
        use std::hash::Hasher;
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(self.0, self.1);
        for p in parts {
            h.write_u64(p.len() as u64);
            h.write(p);
        }
        h.finish()
    }
}

/// The session of a request; `visitor`: the id of its valid visitor cookie.
pub fn session_key(
    cfg: &SessionConfig,
    ids: &IdKey,
    head: &Head,
    client: Option<IpAddr>,
    visitor: Option<u64>,
) -> SessionKey {
    named_key(cfg, head).unwrap_or_else(|| anonymous_key(ids, head, client, visitor))
}

/// The signed-in session the request names (its session cookie, else its session header).
fn named_key(cfg: &SessionConfig, head: &Head) -> Option<SessionKey> {
    let named = session_cookies(cfg, head)
        .next()
        .or_else(|| cfg.header.as_deref().and_then(|h| head.first(h)).filter(|v| !v.is_empty()).map(Cow::Borrowed))?;
    // Named sessions keep SHA-256: their ids are logged and correlated across workers.
    Some(SessionKey { id: named_id(&named), authenticated: true, visitor: false })
}

/// The session the request would have without a session cookie or header: its visitor's, else
/// its fingerprint's (address, user agent, language). A new signed-in session starts from it.
pub fn anonymous_key(ids: &IdKey, head: &Head, client: Option<IpAddr>, visitor: Option<u64>) -> SessionKey {
    if let Some(id) = visitor {
        return SessionKey { id, authenticated: false, visitor: true };
    }
    let octets = match client {
        Some(IpAddr::V4(a)) => a.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(a)) => a.octets(),
        None => [0; 16],
    };
    let ua = head.first("user-agent").unwrap_or(b"");
    let lang = head.first("accept-language").unwrap_or(b"");
    SessionKey { id: ids.hash(&[b"anon", &octets, ua, lang]), authenticated: false, visitor: false }
}

/// The values of the signed-in session cookie, as upstream parsers read them (one pair of
/// surrounding quotes removed, percent-escapes decoded), so that `"alice"` and `%61lice` name
/// the session `alice` names.
fn session_cookies<'a>(cfg: &'a SessionConfig, head: &'a Head) -> impl Iterator<Item = Cow<'a, [u8]>> + 'a {
    cfg.cookie
        .as_deref()
        .into_iter()
        .flat_map(move |name| head.cookies(name))
        .map(canonical_value)
        .filter(|v| !v.is_empty())
}

/// The sessions named by a session cookie given more than once, beyond the first (upstream
/// parsers disagree on which one counts, Go and Express the first, Python the last): a request
/// answers for all of them, so junk values next to a blocked session's cookie escape nothing.
pub fn repeated_sessions(cfg: &SessionConfig, head: &Head) -> Vec<u64> {
    let mut ids: Vec<u64> = session_cookies(cfg, head).skip(1).map(|v| named_id(&v)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn named_id(value: &[u8]) -> u64 {
    sha_hash(&[b"named", value])
}

/// A cookie value as parsers read it: without one pair of surrounding quotes, percent-decoded
/// (borrowed when there is nothing to undo, the usual case).
fn canonical_value(v: &[u8]) -> Cow<'_, [u8]> {
    let v = match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    };
    if !v.contains(&b'%') {
        return Cow::Borrowed(v);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        let pair = v.get(i + 1).copied().and_then(hex).zip(v.get(i + 2).copied().and_then(hex));
        match (b, pair) {
            (b'%', Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn sha_hash(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(d.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> Head {
        Head::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn cookie_names_a_signed_in_session() {
        let cfg = SessionConfig { cookie: Some("session_id".into()), ..SessionConfig::default() };
        let a = session_key(&cfg, &IdKey::default(), &head(&[("cookie", "theme=dark; session_id=abc")]), None, None);
        let b = session_key(
            &cfg,
            &IdKey::default(),
            &head(&[("cookie", "session_id=abc"), ("user-agent", "other")]),
            None,
            Some(9),
        );
        assert!(a.authenticated);
        assert_eq!(a, b);
        let anon =
            session_key(&cfg, &IdKey::default(), &head(&[("cookie", "theme=dark")]), "192.0.2.1".parse().ok(), None);
        assert!(!anon.authenticated);
    }

    #[test]
    fn a_session_cookie_is_read_as_the_upstream_reads_it() {
        let cfg = SessionConfig { cookie: Some("session_id".into()), ..SessionConfig::default() };
        let k = |c: &str| session_key(&cfg, &IdKey::default(), &head(&[("cookie", c)]), None, None);
        let (alice, mallory, both) =
            (k("session_id=alice"), k("session_id=mallory"), k("session_id=mallory; session_id=alice"));
        assert!(both.authenticated);
        assert_eq!(both.id, mallory.id, "the first names the request's session");
        let h = head(&[("cookie", "session_id=mallory; session_id=alice")]);
        assert_eq!(repeated_sessions(&cfg, &h), vec![alice.id], "and it answers for the others too");
        assert_eq!(k(" \tsession_id = alice ;theme=x").id, alice.id, "spaces and tabs as the upstream trims them");
        assert_eq!(k("session_id=\"alice\"").id, alice.id, "quotes as the upstream strips them");
        assert_eq!(k("session_id=%61lic%65").id, alice.id, "escapes as the upstream decodes them");
    }

    #[test]
    fn anonymous_session_ids_depend_on_the_secret_they_are_keyed_with() {
        let cfg = SessionConfig::default();
        let h = head(&[("user-agent", "Mozilla/5.0")]);
        let ip = "192.0.2.1".parse().ok();
        let a = session_key(&cfg, &IdKey::derive(b"one secret"), &h, ip, None);
        let b = session_key(&cfg, &IdKey::derive(b"another secret"), &h, ip, None);
        assert_ne!(a.id, b.id, "nobody without the secret can compute an id");
        assert_eq!(a, session_key(&cfg, &IdKey::derive(b"one secret"), &h, ip, None), "stable per secret");
    }

    #[test]
    fn a_visitor_keeps_its_session_across_addresses() {
        let cfg = SessionConfig::default();
        let h = head(&[("user-agent", "Mozilla/5.0")]);
        let first = session_key(&cfg, &IdKey::default(), &h, "192.0.2.1".parse().ok(), None);
        let moved = session_key(&cfg, &IdKey::default(), &h, "198.51.100.7".parse().ok(), Some(first.id));
        assert_eq!(moved.id, first.id);
        assert!(moved.visitor);
        assert_ne!(session_key(&cfg, &IdKey::default(), &h, "198.51.100.7".parse().ok(), None), first);
    }
}
