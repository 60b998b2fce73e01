//! The silent challenge: a small script botgate adds to the site's HTML pages, which reports
//! what the browser is (automation traits) in a beacon bound to the session and signed per page.
//!
//! The script is inline (a bot that blocks scripts by URL cannot skip it without turning
//! JavaScript off) and constant (its SHA-256 can be allowed by a hash-only CSP); the page's
//! token rides in a `data-t` attribute. A token is the session's (and the client's, as a
//! clearance token's binding), single-use (its nonce is spent like a puzzle's) and expires, so a
//! beacon cannot be forged for another session, moved to another client, or replayed.
//!
//! What it cannot do is make a scraper that speaks this protocol tell the truth: a client that
//! reads the token from the page can send a clean beacon. So a beacon clears nothing; a
//! reported trait is scored (`automation_reported`), and a session that never sends one is
//! scored lightly (`beacon_missing`), heavier for a session that does not render either.

use super::gate::Who;
use crate::base::mac;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// The script, as the page carries it.
pub const SCRIPT: &str = include_str!("assets/beacon.js");

/// The beacon's endpoint under [`super::gate::PREFIX`].
pub const ENDPOINT: &[u8] = b"beacon";

/// How long a page's token can be answered.
pub const TTL_MS: u64 = 10 * 60 * 1000;

/// Trait bits the script reports (`a`).
pub mod traits {
    /// `navigator.webdriver`: the browser is driven by WebDriver, CDP automation or Playwright.
    pub const WEBDRIVER: u16 = 1;
    /// "Headless" in the user agent, `appVersion` or client-hint brands.
    pub const HEADLESS: u16 = 2;
    /// The engine is not the one the user agent names (a Chrome without `window.chrome`, a
    /// Firefox without Gecko's CSS, a Safari or Firefox with `window.chrome`).
    pub const ENGINE_MISMATCH: u16 = 4;
    // 8 is not used: a window without an outer size (old headless Chrome) is also what a page
    // loaded in the background or prerendered can see, in new headless Chromium as in a person's.
    /// No languages at all.
    pub const NO_LANGUAGES: u16 = 16;
    pub const ALL: u16 = WEBDRIVER | HEADLESS | ENGINE_MISMATCH | NO_LANGUAGES;
    /// Automation itself (the rest a person's privacy extension can cause too).
    pub const DRIVEN: u16 = WEBDRIVER | HEADLESS;
}

/// The script's `sha256-…` CSP source.
pub fn csp_hash() -> String {
    use sha2::{Digest, Sha256};
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(SCRIPT.as_bytes())))
}

/// A page's token for `who`, with a fresh `nonce`.
pub fn mint(key: &[u8], who: &Who, nonce: &str) -> String {
    let issued_s = who.now / 1000;
    let tag = mac::sign(key, &message(who, nonce, issued_s));
    format!("{nonce}.{issued_s}.{}", URL_SAFE_NO_PAD.encode(tag.get(..16).unwrap_or(&tag)))
}

/// Why a beacon was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    /// Not signed by us, or signed for another session or client.
    Forged,
    Expired,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Malformed => "beacon_malformed",
            Refused::Forged => "beacon_forged",
            Refused::Expired => "beacon_expired",
        }
    }
}

/// Checks `token` for `who`; its nonce (to spend) and when it was issued (s).
pub fn check<'t>(keys: &[&[u8]], who: &Who, token: &'t str) -> Result<(&'t str, u64), Refused> {
    let mut parts = token.split('.');
    let (Some(nonce), Some(issued), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refused::Malformed);
    };
    let issued_s: u64 = issued.parse().map_err(|_| Refused::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refused::Malformed)?;
    if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refused::Malformed);
    }
    if !mac::verify_truncated(keys.iter().copied(), &message(who, nonce, issued_s), &tag) {
        return Err(Refused::Forged);
    }
    let expires = issued_s.saturating_mul(1000).saturating_add(TTL_MS);
    if who.now >= expires || issued_s.saturating_mul(1000) > who.now.saturating_add(60_000) {
        return Err(Refused::Expired);
    }
    Ok((nonce, issued_s))
}

/// The traits a beacon reports (unknown bits ignored; a missing or garbled value is none).
pub fn reported(query: &[u8]) -> u16 {
    super::back::query_param(query, "a").and_then(|a| a.parse::<u16>().ok()).map_or(0, |a| a & traits::ALL)
}

/// The traits' names, for the evidence.
pub fn describe(bits: u16) -> String {
    let names = [
        (traits::WEBDRIVER, "webdriver"),
        (traits::HEADLESS, "headless"),
        (traits::ENGINE_MISMATCH, "engine_mismatch"),
        (traits::NO_LANGUAGES, "no_languages"),
    ];
    names.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect::<Vec<_>>().join(",")
}

fn message(who: &Who, nonce: &str, issued_s: u64) -> Vec<u8> {
    format!("botgate-beacon-v1|{}|{}|{nonce}|{issued_s}", who.sid, who.bnd).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(sid: &str, bnd: &str, now: u64) -> Who {
        Who { sid: sid.into(), bnd: bnd.into(), now }
    }

    #[test]
    fn a_token_checks_for_its_session_and_client_until_it_expires() {
        let key = [9u8; 32];
        let t = mint(&key, &who("a1", "b1", 1_000_000), "00ff");
        assert_eq!(check(&[&key], &who("a1", "b1", 1_001_000), &t), Ok(("00ff", 1_000)));
        assert_eq!(check(&[&key], &who("a2", "b1", 1_001_000), &t), Err(Refused::Forged));
        assert_eq!(check(&[&key], &who("a1", "b2", 1_001_000), &t), Err(Refused::Forged));
        assert_eq!(check(&[&[1u8; 32]], &who("a1", "b1", 1_001_000), &t), Err(Refused::Forged));
        assert_eq!(check(&[&key], &who("a1", "b1", 1_000_000 + TTL_MS), &t), Err(Refused::Expired));
        let moved = t.replacen("00ff", "00fe", 1);
        assert_eq!(check(&[&key], &who("a1", "b1", 1_001_000), &moved), Err(Refused::Forged));
        for bad in ["", "x", "a.b.c", "00ff.1.%%%", "00ff.1.AAAA.d", "zz.1.AAAAAAAAAAAAAAAAAAAAAA"] {
            assert_eq!(check(&[&key], &who("a1", "b1", 1_001_000), bad), Err(Refused::Malformed), "{bad}");
        }
    }

    #[test]
    fn reported_traits_are_read_from_the_query_and_bounded() {
        assert_eq!(reported(b"t=x&a=1"), traits::WEBDRIVER);
        assert_eq!(reported(b"t=x&a=65535"), traits::ALL);
        assert_eq!(reported(b"t=x&a=8"), 0, "a retired trait is ignored");
        assert_eq!(reported(b"t=x&a=-1"), 0);
        assert_eq!(reported(b"t=x"), 0);
    }

    #[test]
    fn the_hash_is_of_the_script_as_shipped() {
        assert!(csp_hash().starts_with("'sha256-") && csp_hash().len() == 53);
    }
}
