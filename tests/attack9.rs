//! Attacks on signed agents (Web Bot Auth) from the review of issue 13, each of which failed
//! before its fix: a junk signature standing in for an impersonation's check, a nonce-less
//! signature replayed as a bearer token, unknown agents blocked for local window rules, keys that
//! cannot be revoked, key expiry ignored, a signed agent wearing Googlebot's user agent, a
//! non-UTF-8 line hidden from the verifier, and nonces outliving the shared ring.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use botgate::decision::record::Verdict;
use botgate::engine::lookups::Answer;
use botgate::formats::signature::jwk_thumbprint;
use botgate::policy::feeds::{self, Kind};
use common::*;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::json;

const NOW_S: u64 = 1_795_305_600;
const T0: u64 = NOW_S * 1000;
const AGENT: &str = "https://agent.test";
const UA: &str = "Mozilla/5.0 (compatible; TestAgent/1.0; +https://agent.test/bot)";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn x(k: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(k.verifying_key().to_bytes())
}

fn policy() -> String {
    with_resolver(json!({"crawlers": {"definitions": [{
        "name": "testagent", "operator": "Example", "purpose": "agent", "user_agents": ["testagent/"],
        "ranges": ["192.0.2.0/28"], "action": "allow",
        "signature_agent": {"url": AGENT, "cluster": "agent", "refresh_seconds": 3600}
    }]}}))
}

fn load_dir(e: &mut botgate::engine::Engine, body: &str) {
    let (shared, _) = feeds::check(Kind::Keys, Some(200), body.as_bytes()).unwrap();
    let id = e.policy().feeds().find(|f| f.kind == Kind::Keys).unwrap().id();
    e.load_feed(&id, &feeds::load(Kind::Keys, &shared).unwrap());
}

fn engine_with_keys(k: &SigningKey) -> botgate::engine::Engine {
    let mut e = engine(&policy());
    load_dir(&mut e, &json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x(k)}]}).to_string());
    e
}

/// Signs `@authority` + the agent member (like tests/agents.rs), with an optional nonce and
/// a chosen agent origin / keyid.
fn signed_headers(
    k: &SigningKey,
    agent: &str,
    created: u64,
    expires: u64,
    nonce: Option<&str>,
    keyid: Option<&str>,
) -> Vec<(String, String)> {
    let keyid = keyid.map(str::to_string).unwrap_or_else(|| jwk_thumbprint(&x(k)));
    let nonce = nonce.map(|n| format!(";nonce=\"{n}\"")).unwrap_or_default();
    let params = format!(
        "(\"@authority\" \"signature-agent\";key=\"sig1\");created={created};expires={expires};keyid=\"{keyid}\"{nonce};tag=\"web-bot-auth\""
    );
    let base = format!(
        "\"@authority\": shop.test\n\"signature-agent\";key=\"sig1\": \"{agent}\"\n\"@signature-params\": {params}"
    );
    let sig = STANDARD.encode(k.sign(base.as_bytes()).to_bytes());
    vec![
        ("signature-agent".into(), format!("sig1=\"{agent}\"")),
        ("signature-input".into(), format!("sig1={params}")),
        ("signature".into(), format!("sig1=:{sig}:")),
    ]
}

fn with(mut r: Req, h: &[(String, String)]) -> Req {
    for (k, v) in h {
        r = r.header(k, v);
    }
    r
}

// ---- F1 (HIGH): an unverifiable signature naming a configured agent erases the UA claim, so a
// Googlebot impersonator is no longer blocked (crawler_impersonation), only scored.
#[test]
fn junk_signature_naming_a_known_agent_defeats_the_impersonation_block() {
    let mut e = engine_with_keys(&key());
    let ip = "203.0.113.9";
    let base = || Req::new("GET", "/products/1", ip).header("user-agent", GOOGLEBOT).header("accept", "*/*");
    // Baseline: a Googlebot UA from a non-Google address is blocked as an impersonation.
    let d = decide_answering(&mut e, &base(), T0, &Answer::NotFound, &mut Vec::new());
    assert_eq!(d.reasons, vec!["crawler_impersonation"], "baseline {d:?}");
    // Same request plus a signature by nobody: any keyid, zeros for the signature.
    let attacker = SigningKey::from_bytes(&[7; 32]);
    let junk = signed_headers(&attacker, AGENT, NOW_S - 5, NOW_S + 50, None, Some("not-a-real-keyid"));
    let mut e = engine_with_keys(&key());
    let d = decide_answering(&mut e, &with(base(), &junk), T0, &Answer::NotFound, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Block, "impersonator escaped the block tier: {d:?}");
}

// ---- F2 (MEDIUM): a signature without a nonce is never spent: one captured header set is a
// bearer token for every path, method and address until it expires (up to an hour).
#[test]
fn nonce_less_signature_replays_from_any_ip_and_path() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let h = signed_headers(&k, AGENT, NOW_S - 10, NOW_S + 3_500, None, None);
    let first =
        send(&mut e, &with(Req::new("GET", "/products/1", "198.51.100.1").header("user-agent", UA), &h), T0, 200);
    assert_ne!(first.verdict, Verdict::Allow, "without a nonce a signature proves nothing: {first:?}");
    // The attacker, elsewhere, later, on another path, replays the same three headers.
    let mut allowed = 0;
    for i in 0..50u64 {
        let r = with(Req::new("GET", &format!("/account/export?id={i}"), &format!("100.64.{i}.7")), &h);
        if send(&mut e, &r, T0 + 60_000 + i * 1_000, 200).verdict == Verdict::Allow {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 0, "a captured nonce-less signature was accepted {allowed} more times");
}

// ---- F3 (MEDIUM): a signature by an agent the policy does NOT know is blocked (the module says it
// "proves nothing either way") when its window fails local rules: validity > 1 h (the draft
// recommends <= 24 h and max_validity_seconds cannot exceed 3600) or a clock > 60 s off.
#[test]
fn unknown_agents_signature_outside_local_window_rules_is_blocked() {
    let mut e = engine_with_keys(&key());
    let other = SigningKey::from_bytes(&[3; 32]);
    let cases = [
        (NOW_S - 10, NOW_S + 2 * 3_600), // 2 h validity: draft-compliant
        (NOW_S + 90, NOW_S + 600),       // signer clock 90 s ahead
    ];
    for (i, (c, x)) in cases.into_iter().enumerate() {
        let h = signed_headers(&other, "https://unrelated-agent.example", c, x, Some("n"), None);
        let r = with(Req::new("GET", "/", &format!("198.51.100.{}", 20 + i)).browser(), &h);
        let d = send(&mut e, &r, T0, 200);
        assert_ne!(d.verdict, Verdict::Block, "case {i}: unknown agent blocked: {d:?}");
    }
}

// ---- F4 (MEDIUM): a directory that withdraws every key (compromise response: `{"keys":[]}`) is
// refused as "not a key directory", so the last good directory - with the compromised key -
// stays trusted indefinitely.
#[test]
fn an_agent_cannot_revoke_all_its_keys() {
    let r = feeds::check(Kind::Keys, Some(200), br#"{"keys":[]}"#);
    assert!(r.is_ok(), "empty directory refused ({:?}): old keys stay loaded", r.err().map(|_| ()));
}

// ---- F5 (LOW): JWK `exp`/`nbf` that are not JSON unsigned integers (a string, a float) are
// silently ignored: an expired key is usable forever.
#[test]
fn key_exp_as_string_or_float_is_ignored() {
    let k = key();
    for exp in [json!("1700000000"), json!(1_700_000_000.0)] {
        let mut e = engine(&policy());
        load_dir(&mut e, &json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x(&k), "exp": exp}]}).to_string());
        let h = signed_headers(&k, AGENT, NOW_S - 10, NOW_S + 50, Some("n5"), None);
        let d = send(&mut e, &with(Req::new("GET", "/", "198.51.100.30").header("user-agent", UA), &h), T0, 200);
        assert_ne!(d.verdict, Verdict::Allow, "key expired in 2023 (exp={exp}) still accepted: {d:?}");
    }
}

// ---- F6 (LOW): a signed agent presenting another crawler's UA is allowed as itself; the request
// reaches the origin with `user-agent: Googlebot` from a non-Google address, where the
// unsigned request would have been blocked as crawler_impersonation.
#[test]
fn signed_agent_wearing_googlebots_ua_is_allowed() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let h = signed_headers(&k, AGENT, NOW_S - 10, NOW_S + 50, Some("n6"), None);
    let r = with(Req::new("GET", "/", "203.0.113.9").header("user-agent", GOOGLEBOT), &h);
    let d = decide_answering(&mut e, &r, T0, &Answer::NotFound, &mut Vec::new());
    assert_ne!(d.verdict, Verdict::Allow, "UA claims googlebot, signature says testagent: {d:?}");
}

// ---- F7 (LOW): a non-UTF-8 line of a covered field is silently dropped by the verifier
// (engine/agents.rs Fields::values), so what is verified differs from what the origin receives.
#[test]
fn non_utf8_line_of_a_covered_field_is_ignored_by_the_verifier() {
    let k = key();
    let mut e = engine_with_keys(&k);
    let params = format!(
        "(\"@authority\" \"signature-agent\";key=\"sig1\" \"x-intent\");created={};expires={};keyid=\"{}\";nonce=\"n7\";tag=\"web-bot-auth\"",
        NOW_S - 10,
        NOW_S + 50,
        jwk_thumbprint(&x(&k))
    );
    let base = format!(
        "\"@authority\": shop.test\n\"signature-agent\";key=\"sig1\": \"{AGENT}\"\n\"x-intent\": read\n\"@signature-params\": {params}"
    );
    let sig = STANDARD.encode(k.sign(base.as_bytes()).to_bytes());
    let mut r = Req::new("GET", "/", "198.51.100.40")
        .header("user-agent", UA)
        .header("signature-agent", &format!("sig1=\"{AGENT}\""))
        .header("signature-input", &format!("sig1={params}"))
        .header("signature", &format!("sig1=:{sig}:"))
        .header("x-intent", "read");
    r.head.push(b"x-intent", b"delete-all\xff"); // the origin sees "read, delete-all\xff"
    let d = send(&mut e, &r, T0, 200);
    assert_ne!(d.verdict, Verdict::Allow, "covered field changed, signature still valid: {d:?}");
}

// ---- F9 (LOW): the shared nonce ring (src/shell/nonces.rs: 64 one-minute slots keyed by
// expiry minute) is shorter than the longest spend-expiry policy allows: created may be `skew`
// ahead, the window `max_validity` long, and agents.rs adds `skew` again, so a nonce spent with
// expiry now+64 min shares its slot with entries expiring this minute; a later spend of one of
// those rewrites the slot with the older epoch and erases it, and the signature replays.
#[test]
fn policy_allows_spend_expiries_beyond_the_shared_ring() {
    let p = with_resolver(json!({"crawlers": {
        "signatures": {"max_validity_seconds": 3600, "clock_skew_seconds": 60},
        "definitions": [{"name": "testagent", "user_agents": ["testagent/"],
            "signature_agent": {"url": AGENT, "cluster": "agent"}}]}}));
    let e = engine(&p);
    let s = e.policy().crawlers.as_ref().unwrap().signatures.unwrap();
    // Farthest spend-expiry from now (s), plus one slot of rounding, vs the ring (64 x 60 s).
    let farthest = s.skew + s.max_validity + s.skew;
    assert!(farthest + 60 <= 64 * 60, "spend expiry up to now+{farthest}s reaches the ring's own slot");
}
