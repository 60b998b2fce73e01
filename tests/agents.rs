//! Signed agents (Web Bot Auth) through the engine: a request signed by a key in the agent's
//! fetched directory is that agent, proven; a tampered, expired, too-long or replayed signature
//! is refused; what cannot be checked proves nothing; an agent that signs and did not is asked
//! to (`Accept-Signature`) when it is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use botgate::decision::record::Verdict;
use botgate::formats::signature::jwk_thumbprint;
use botgate::policy::feeds::{self, Kind};
use common::*;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::json;

const NOW_S: u64 = 1_795_305_600;
const T0: u64 = NOW_S * 1000;
const AGENT: &str = "https://agent.test";
const UA: &str = "Mozilla/5.0 (compatible; TestAgent/1.0; +https://agent.test/bot)";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn x(k: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(k.verifying_key().to_bytes())
}

fn directory(k: &SigningKey) -> String {
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x(k)}]}).to_string()
}

fn policy() -> String {
    with_resolver(json!({"crawlers": {"definitions": [{
        "name": "testagent", "operator": "Example", "purpose": "agent", "user_agents": ["testagent/"],
        "ranges": ["192.0.2.0/28"], "action": "allow",
        "signature_agent": {"url": AGENT, "cluster": "agent", "refresh_seconds": 3600}
    }]}}))
}

/// An engine whose agent's key directory has been fetched.
fn engine_with_keys(k: &SigningKey) -> botgate::engine::Engine {
    let mut e = engine(&policy());
    let (shared, _) = feeds::check(Kind::Keys, Some(200), directory(k).as_bytes()).unwrap();
    let id = e.policy().feeds().find(|f| f.kind == Kind::Keys).unwrap().id();
    e.load_feed(&id, &feeds::load(Kind::Keys, &shared).unwrap());
    e
}

struct Signing<'a> {
    key: &'a SigningKey,
    authority: &'a str,
    created: u64,
    expires: u64,
    nonce: &'a str,
}

impl Signing<'_> {
    fn new(key: &SigningKey) -> Signing<'_> {
        Signing { key, authority: "shop.test", created: NOW_S - 10, expires: NOW_S + 50, nonce: "n-1" }
    }

    /// The three headers, signed over `@authority` and the agent member.
    fn headers(&self) -> [(&'static str, String); 3] {
        let params = format!(
            "(\"@authority\" \"signature-agent\";key=\"sig1\");created={};expires={};keyid=\"{}\";nonce=\"{}\";tag=\"web-bot-auth\"",
            self.created,
            self.expires,
            jwk_thumbprint(&x(self.key)),
            self.nonce
        );
        let base = format!(
            "\"@authority\": {}\n\"signature-agent\";key=\"sig1\": \"{AGENT}\"\n\"@signature-params\": {params}",
            self.authority
        );
        let sig = STANDARD.encode(self.key.sign(base.as_bytes()).to_bytes());
        [
            ("signature-agent", format!("sig1=\"{AGENT}\"")),
            ("signature-input", format!("sig1={params}")),
            ("signature", format!("sig1=:{sig}:")),
        ]
    }

    fn request(&self, ip: &str) -> Req {
        let mut r = Req::new("GET", "/products/1", ip).header("user-agent", UA); // :authority shop.test
        for (k, v) in self.headers() {
            r = r.header(k, &v);
        }
        r
    }
}

#[test]
fn a_request_signed_by_the_agents_key_is_that_agent_without_scoring() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let d = send(&mut e, &Signing::new(&k).request("203.0.113.50"), T0, 200);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d.reasons, vec!["verified_signed_agent"]);
    let bot = d.bot.as_deref().unwrap();
    assert_eq!((bot.name.as_str(), bot.purpose, bot.verified), ("testagent", "agent", "signature"));
}

#[test]
fn a_signature_lifted_onto_another_host_is_refused() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let mut s = Signing::new(&k);
    s.authority = "other.test";
    let d = send(&mut e, &s.request("203.0.113.51"), T0, 200);
    assert_eq!((d.verdict, d.reasons.clone()), (Verdict::Block, vec!["signature_invalid"]), "{d:?}");
}

#[test]
fn a_signature_by_another_key_is_not_the_agents() {
    let mut e = engine_with_keys(&key());
    let forger = SigningKey::from_bytes(&[9; 32]);
    let d = send(&mut e, &Signing::new(&forger).request("203.0.113.52"), T0, 200);
    assert_ne!(d.verdict, Verdict::Allow, "{d:?}");
}

#[test]
fn expired_future_and_overlong_signatures_prove_nothing_and_are_noted() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let windows = [(NOW_S - 600, NOW_S - 300), (NOW_S + 300, NOW_S + 600), (NOW_S - 10, NOW_S + 30 * 86_400)];
    for (i, (created, expires)) in windows.into_iter().enumerate() {
        let s = Signing { created, expires, ..Signing::new(&k) };
        // The user agent claims the agent from outside its ranges: an impersonation still.
        let d = send(&mut e, &s.request(&format!("203.0.113.{}", 60 + i)), T0, 200);
        assert_eq!((d.verdict, d.reasons.clone()), (Verdict::Block, vec!["crawler_impersonation"]), "window {i}");
        // A browser's user agent: not refused for it, but the failed signature is a reason.
        let mut r = s.request(&format!("203.0.113.{}", 70 + i));
        let at = r.head.iter().position(|(k, _)| k == b"user-agent").unwrap();
        r.head.set_value(at, b"Mozilla/5.0 Chrome/131.0");
        let d = send(&mut e, &r, T0, 200);
        assert!(d.verdict != Verdict::Allow && d.reasons.contains(&"signature_invalid"), "window {i}: {d:?}");
    }
}

#[test]
fn a_replayed_signature_is_refused_the_second_time() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let r = Signing::new(&k).request("203.0.113.70");
    assert_eq!(send(&mut e, &r, T0, 200).verdict, Verdict::Allow);
    let again = send(&mut e, &r, T0 + 1_000, 200);
    assert_eq!((again.verdict, again.reasons.clone()), (Verdict::Block, vec!["signature_invalid"]));
    let fresh = Signing { nonce: "n-2", ..Signing::new(&k) };
    assert_eq!(send(&mut e, &fresh.request("203.0.113.70"), T0 + 2_000, 200).verdict, Verdict::Allow);
}

#[test]
fn before_the_directory_is_fetched_a_signature_proves_nothing() {
    let k = key();
    let mut e = engine(&policy());
    // Nothing to check it with: the user agent's claim is judged, and its ranges refute it.
    let d = send(&mut e, &Signing::new(&k).request("203.0.113.80"), T0, 200);
    assert_eq!((d.verdict, d.reasons.clone()), (Verdict::Block, vec!["crawler_impersonation"]), "{d:?}");
    // From inside its ranges, the claim holds by them.
    let d = send(&mut e, &Signing { nonce: "n-9", ..Signing::new(&k) }.request("192.0.2.3"), T0, 200);
    assert_eq!(d.bot.as_deref().map(|b| b.verified), Some("published_ranges"), "{d:?}");
}

#[test]
fn an_unsigned_claim_refused_is_asked_to_sign() {
    let mut e = engine_with_keys(&key());
    // Outside the agent's ranges and unsigned: an impersonation, answered with Accept-Signature.
    let r = Req::new("GET", "/", "203.0.113.90").header("user-agent", UA).header("accept", "*/*");
    let d = send(&mut e, &r, T0, 200);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    let reply = d.reply("r1").unwrap();
    let accept = reply.headers.iter().find(|(k, _)| *k == "accept-signature").map(|(_, v)| v.as_str());
    assert!(accept.is_some_and(|v| v.contains("tag=\"web-bot-auth\"")), "{:?}", reply.headers);
}

#[test]
fn a_signature_from_an_agent_the_policy_does_not_know_is_ignored() {
    let mut e = engine(&with_resolver(json!({})));
    let k = key();
    let d = send(&mut e, &Signing::new(&k).request("203.0.113.95"), T0, 200);
    assert!(!d.reasons.contains(&"signature_invalid") && d.verdict != Verdict::Allow, "{d:?}");
}

#[test]
fn a_signing_agent_needs_an_https_origin_and_a_cluster() {
    let p = with_resolver(json!({"crawlers": {"definitions": [
        {"name": "a", "signature_agent": {"url": "http://agent.test", "cluster": "agent"}},
        {"name": "b", "signature_agent": {"url": "https://agent.test"}}
    ]}}));
    let errors: Vec<String> = botgate::policy::parse(p.as_bytes()).errors().map(|d| d.to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("definitions[0].signature_agent.url")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("definitions[1].signature_agent.cluster")), "{errors:?}");
}
