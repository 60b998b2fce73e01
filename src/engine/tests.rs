//! Waiting as an explicit state, driven natively through a fake lookup: a request waits for its
//! answer, resumes from the stage it stopped at (nothing the head stages did is done twice), the
//! answer is cached for its TTL, and a failed lookup degrades to a decision without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

use super::lookups::{Answer, Asker, Lookup};
use super::{drive, Engine, Step};
use crate::identity::client::Client;
use crate::request::head::Head;
use crate::score::signal::Signal;

/// A reverse-DNS check of clients that claim to be Googlebot, as the crawler verification will
/// ask it: a name outside googlebot.com is a lie.
struct FakeReverseDns;

impl Asker for FakeReverseDns {
    fn question(&self, head: &Head, client: &Client) -> Option<Lookup> {
        let claims = head.first("user-agent").is_some_and(|ua| ua.windows(9).any(|w| w == b"Googlebot"));
        Some(Lookup { service: "reverse_dns", key: client.ip?.to_string() }).filter(|_| claims)
    }

    fn ttl_ms(&self) -> u64 {
        600_000
    }

    /// A signal these requests' heads never give, so the answer's effect is seen alone.
    fn signal(&self, _: &Head, answer: &Answer) -> Option<Signal> {
        match answer {
            Answer::Value(name) if !name.ends_with(".googlebot.com") => {
                Some(Signal { name: "client_hints_mismatch", strength: 1.0 })
            }
            _ => None,
        }
    }
}

const T0: u64 = 1_795_305_600_000;

/// Two requests a minute per client, a detector that reads `/v1/` bodies, and the fake asker.
fn engine() -> Engine {
    let policy = r#"{
        "mode": "enforce",
        "ip_rate_limit": { "max_requests": 2, "window_seconds": 60 },
        "bot_detector": { "fingerprint_fields": ["client_ip", "body"], "profile_window_seconds": 60,
                          "max_requests_per_window": 5, "action": "block", "applies_to": ["/v1/"] }
    }"#;
    let parsed = crate::policy::parse(policy.as_bytes());
    let mut e = Engine::new(parsed.policy.unwrap_or_else(|| panic!("{:?}", parsed.diags)));
    e.askers.push(Box::new(FakeReverseDns));
    e
}

fn googlebot(ip: &str, method: &str, path: &str) -> Head {
    Head::from_pairs([
        (":method", method),
        (":path", path),
        (":authority", "shop.test"),
        ("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        ("accept", "*/*"),
        ("accept-language", "en"),
    ])
    .with_peer(ip.parse().ok())
}

#[test]
fn a_request_waits_for_its_lookup_and_resumes_without_counting_twice() {
    let mut e = engine();
    let head = googlebot("192.0.2.7", "GET", "/products");
    let Step::NeedLookup(w) = e.begin(&head, false, T0) else { panic!("no lookup asked") };
    assert_eq!(w.question(), &Lookup { service: "reverse_dns", key: "192.0.2.7".into() });
    let Step::Decided(d) = e.resume_lookup(w, &head, Answer::Value("x.googlebot.com".into()), T0) else {
        panic!("not decided")
    };
    assert!(!d.reasons.contains(&"client_hints_mismatch"), "a genuine name: {d:?}");
    // The request was counted once, on the head: the second of the two a minute still passes.
    let d = drive::decide(&mut e, &googlebot("192.0.2.7", "GET", "/more"), None, T0 + 1_000);
    assert!(!d.reasons.contains(&"rate_limit_ip"), "resuming counted the first request again: {d:?}");
}

#[test]
fn the_answer_decides_and_is_cached_for_its_ttl() {
    let mut e = engine();
    let mut asked = 0;
    let mut liar = |_: &Lookup| {
        asked += 1;
        Answer::Value("host.attacker.example".into())
    };
    let d = drive::decide_with(&mut e, &googlebot("192.0.2.8", "GET", "/a"), None, T0, &mut liar);
    assert!(d.reasons.contains(&"client_hints_mismatch"), "{d:?}");
    // The same address again within the TTL (past its rate-limit window): from the cache.
    let Step::Decided(d) = e.begin(&googlebot("192.0.2.8", "GET", "/b"), false, T0 + 150_000) else {
        panic!("a cached answer must not wait")
    };
    assert!(d.reasons.contains(&"client_hints_mismatch"), "{d:?}");
    assert_eq!(asked, 1);
    // After the TTL it is asked again.
    assert!(matches!(e.begin(&googlebot("192.0.2.8", "GET", "/c"), false, T0 + 700_000), Step::NeedLookup(..)));
}

#[test]
fn a_failed_lookup_degrades_and_is_asked_again_after_a_while() {
    let mut e = engine();
    let d = drive::decide(&mut e, &googlebot("192.0.2.9", "GET", "/a"), None, T0);
    assert!(!d.reasons.contains(&"client_hints_mismatch"), "decided without it: {d:?}");
    // A client whose lookups time out does not make every request wait for the timeout.
    let soon = T0 + super::lookups::FAILED_TTL_MS / 2;
    assert!(matches!(e.begin(&googlebot("192.0.2.9", "GET", "/b"), false, soon), Step::Decided(_)));
    let later = T0 + super::lookups::FAILED_TTL_MS + 150_000;
    assert!(matches!(e.begin(&googlebot("192.0.2.9", "GET", "/c"), false, later), Step::NeedLookup(..)));
}

/// Asks nothing, ever: its place among the askers must not shift another's answer onto it.
struct Silent;

impl Asker for Silent {
    fn question(&self, _: &Head, _: &Client) -> Option<Lookup> {
        None
    }

    fn ttl_ms(&self) -> u64 {
        1_000
    }

    fn signal(&self, _: &Head, _: &Answer) -> Option<Signal> {
        Some(Signal { name: "missing_accept_language", strength: 1.0 })
    }
}

#[test]
fn each_answer_is_read_by_the_asker_that_asked_it() {
    let mut e = engine();
    e.askers.insert(0, Box::new(Silent));
    let d = drive::decide_with(&mut e, &googlebot("192.0.2.12", "GET", "/a"), None, T0, &mut |_| {
        Answer::Value("host.attacker.example".into())
    });
    assert!(d.reasons.contains(&"client_hints_mismatch"), "the liar is caught: {d:?}");
    assert!(!d.reasons.contains(&"missing_accept_language"), "the silent asker judged nothing: {d:?}");
}

#[test]
fn a_request_waits_for_its_lookup_then_its_body() {
    let mut e = engine();
    let head = googlebot("192.0.2.10", "POST", "/v1/chat");
    let Step::NeedLookup(w) = e.begin(&head, true, T0) else { panic!("no lookup asked") };
    let Step::NeedBody(w) = e.resume_lookup(w, &head, Answer::NotFound, T0) else { panic!("no body asked") };
    let d = e.resume_body(w, &head, b"{\"prompt\":\"hi\"}", T0);
    assert!(d.fingerprint.is_some(), "the detector read the body: {d:?}");
}

#[test]
fn requests_that_ask_nothing_never_wait() {
    let mut e = engine();
    let head = Head::from_pairs([(":method", "GET"), (":path", "/"), ("user-agent", "curl/8")])
        .with_peer("192.0.2.11".parse().ok());
    assert!(matches!(e.begin(&head, false, T0), Step::Decided(_)));
}

#[test]
fn a_wait_made_before_a_reload_starts_afresh_on_the_new_engine() {
    let mut before = engine();
    let head = googlebot("192.0.2.20", "GET", "/a");
    let Step::NeedLookup(w) = before.begin(&head, false, T0) else { panic!("no lookup asked") };
    let mut after = engine();
    after.askers.insert(0, Box::new(Silent));
    // The old wait's answer is not read by whichever asker now has its place: the new engine
    // asks its own questions.
    let step = after.resume_lookup(w, &head, Answer::Value("host.attacker.example".into()), T0);
    let Step::NeedLookup(w) = step else { panic!("the new engine asks afresh: {step:?}") };
    let Step::Decided(d) = after.resume_lookup(w, &head, Answer::Value("x.googlebot.com".into()), T0) else { panic!() };
    assert!(!d.reasons.contains(&"client_hints_mismatch"), "{d:?}");
    assert!(!d.reasons.contains(&"missing_accept_language"), "{d:?}");
}

#[test]
fn a_client_rotating_ipv6_addresses_waits_for_one_failure_not_one_per_address() {
    let mut e = engine();
    drive::decide(&mut e, &googlebot("2001:db8:1:2::1", "GET", "/a"), None, T0);
    let step = e.begin(&googlebot("2001:db8:1:2::2", "GET", "/b"), false, T0 + 1_000);
    assert!(matches!(step, Step::Decided(_)), "{step:?}");
}
