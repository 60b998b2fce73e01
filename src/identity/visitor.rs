//! The visitor cookie: a signed, anonymous id that lets an anonymous session follow a client
//! across addresses.
//!
//! Without it an anonymous session is its address, user agent and language, so a scraper behind
//! a rotating residential proxy starts a fresh, innocent-looking session every few pages. The
//! first navigation that passes gets `botgate_visitor=<id>.<tag>`, where `id` is new and `tag`
//! an HMAC under the clearance key: a client that keeps its cookies keeps its
//! session, and the session sees each network it comes from (`address_hopping`). A client that
//! drops the cookie is back to one session per address, which is where it was before. The id is
//! not secret and carries nothing personal; the tag only stops clients from choosing ids (and so
//! from joining someone else's session).

use crate::base::mac;
use crate::base::mac::Key;
use crate::policy::VisitorCookie;
use crate::request::head::Head;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Bytes of the HMAC kept in the cookie: 96 bits cannot be guessed online.
pub const TAG_BYTES: usize = 12;
/// `016x` id, a dot, the base64url tag.
const VALUE_LEN: usize = 16 + 1 + 16;

pub struct Visitors {
    cfg: VisitorCookie,
    keys: Vec<Key>,
    secure: bool,
}

impl Visitors {
    /// `keys`: the clearance keys (the first signs, any verifies). Without keys there is no cookie.
    pub fn new(cfg: VisitorCookie, keys: Vec<Key>, secure: bool) -> Self {
        Visitors { cfg, keys, secure }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled && !self.keys.is_empty()
    }

    /// The visitor cookie on the request, well-formed but not yet checked (see [`Self::genuine`]).
    pub fn presented(&self, head: &Head) -> Option<Presented> {
        if !self.enabled() {
            return None;
        }
        let value = head.cookie(&self.cfg.name)?;
        if value.len() != VALUE_LEN || value.get(16) != Some(&b'.') {
            return None;
        }
        let id_hex = value.get(..16)?;
        let id = u64::from_str_radix(std::str::from_utf8(id_hex).ok()?, 16).ok()?;
        let decoded = URL_SAFE_NO_PAD.decode(value.get(17..)?).ok()?;
        let tag: [u8; TAG_BYTES] = decoded.as_slice().try_into().ok()?;
        Some(Presented { id, tag })
    }

    /// Whether the cookie's tag is the HMAC of its id under one of the keys.
    pub fn genuine(&self, p: &Presented) -> bool {
        let id_hex = format!("{:016x}", p.id);
        mac::verify_truncated(self.keys.iter().map(|k| k.secret.as_slice()), &message(id_hex.as_bytes()), &p.tag)
    }

    /// The `Set-Cookie` value naming session `id`.
    pub fn cookie(&self, id: u64) -> Option<String> {
        let key = self.keys.first().filter(|_| self.cfg.enabled)?;
        let id_hex = format!("{id:016x}");
        let tag = mac::sign(&key.secret, &message(id_hex.as_bytes()));
        let tag = URL_SAFE_NO_PAD.encode(tag.get(..TAG_BYTES)?);
        let secure = if self.secure { "; Secure" } else { "" };
        Some(format!(
            "{}={id_hex}.{tag}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.cfg.name, self.cfg.max_age_s
        ))
    }
}

/// A visitor cookie as the request presents it: its id and its tag (not yet checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub id: u64,
    pub tag: [u8; TAG_BYTES],
}

/// A new visitor id for a client of session `session`: unique per hand-out (people behind one
/// address with the same browser share an anonymous session, not a visitor id), and
/// reproducible from the engine's inputs so the simulator stays deterministic. Guessing one
/// gains nothing: a cookie is only honoured with its HMAC.
pub fn fresh_id(session: u64, now: u64, serial: u64) -> u64 {
    crate::base::fasthash::hash(&[b"visitor", &session.to_le_bytes(), &now.to_le_bytes(), &serial.to_le_bytes()])
}

fn message(id_hex: &[u8]) -> Vec<u8> {
    [b"botgate-visitor:".as_slice(), id_hex].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitors(keys: &[&str]) -> Visitors {
        let keys = keys.iter().map(|k| Key { id: (*k).into(), secret: k.as_bytes().to_vec() }).collect();
        Visitors::new(VisitorCookie::default(), keys, true)
    }

    fn checked(v: &Visitors, head: &Head) -> Option<u64> {
        v.presented(head).filter(|p| v.genuine(p)).map(|p| p.id)
    }

    fn value(set_cookie: &str) -> &str {
        set_cookie.split(';').next().and_then(|p| p.split_once('=')).map_or("", |(_, v)| v)
    }

    fn with_cookie(v: &str) -> Head {
        Head::from_pairs([("cookie", format!("theme=dark; botgate_visitor={v}").as_str())])
    }

    #[test]
    fn a_minted_cookie_names_its_session() {
        let v = visitors(&["k1"]);
        let set = v.cookie(0xdead_beef_0123_4567).expect("cookie");
        assert!(set.starts_with("botgate_visitor=deadbeef01234567."), "{set}");
        assert!(set.contains("; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"), "{set}");
        assert_eq!(checked(&v, &with_cookie(value(&set))), Some(0xdead_beef_0123_4567));
    }

    #[test]
    fn forged_truncated_and_foreign_cookies_name_nothing() {
        let v = visitors(&["k1"]);
        let set = v.cookie(7).expect("cookie");
        let good = value(&set);
        let other_id = format!("{:016x}{}", 8, good.get(16..).unwrap_or(""));
        assert_eq!(checked(&v, &with_cookie(&other_id)), None);
        assert_eq!(checked(&v, &with_cookie(good.get(..30).unwrap_or(""))), None);
        assert_eq!(checked(&v, &with_cookie(&format!("{good}x"))), None);
        assert_eq!(checked(&v, &with_cookie("not-a-cookie-value-of-the-right-len")), None);
        assert_eq!(checked(&visitors(&["k2"]), &with_cookie(good)), None);
        assert_eq!(checked(&v, &Head::from_pairs([("cookie", "theme=dark")])), None);
    }

    #[test]
    fn rotated_keys_keep_earlier_cookies() {
        let old = visitors(&["k1"]).cookie(42).expect("cookie");
        assert_eq!(checked(&visitors(&["k2", "k1"]), &with_cookie(value(&old))), Some(42));
    }

    #[test]
    fn no_keys_or_disabled_means_no_cookie() {
        let v = visitors(&[]);
        assert!(!v.enabled());
        assert_eq!(v.cookie(1), None);
        let off = Visitors::new(
            VisitorCookie { enabled: false, ..VisitorCookie::default() },
            vec![Key { id: "k".into(), secret: b"k".to_vec() }],
            true,
        );
        let minted = visitors(&["k"]).cookie(1).expect("cookie");
        assert_eq!(off.cookie(1), None);
        assert_eq!(checked(&off, &with_cookie(value(&minted))), None);
    }
}
