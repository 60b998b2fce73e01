//! Arbitrary bytes as a policy: the reader never panics, refuses exactly when it reports an
//! error, and every finding carries a JSON path. An accepted policy also builds an engine that
//! can take a request.
#![no_main]

use botgate::engine::{drive, Engine};
use botgate::policy::{self, Severity};
use botgate::request::head::Head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = policy::parse(data);
    let errors = parsed.diags.iter().filter(|d| d.severity == Severity::Error).count();
    assert_eq!(errors, parsed.errors().count());
    match &parsed.policy {
        Some(_) => assert_eq!(errors, 0, "accepted with errors: {:?}", parsed.diags),
        None => assert!(errors > 0, "refused without an error: {:?}", parsed.diags),
    }
    for d in &parsed.diags {
        assert!(d.path.starts_with('$'), "diag without a JSON path: {d:?}");
        assert!(!d.message.is_empty(), "diag without a message: {d:?}");
        let shown = d.to_string();
        assert!(shown.contains(&d.path), "{shown}");
    }

    // Whatever the reader accepts, the engine must run with.
    let Some(p) = parsed.policy else { return };
    let limits = p.limits;
    let sessions = p.session.max_sessions;
    assert!(limits.max_clients >= 1 && limits.max_fingerprints >= 1 && limits.max_bodies >= 1);
    let mut engine = Engine::new(p);
    let head = Head::from_pairs([
        (":method", "POST"),
        (":path", "/v1/chat?x=1"),
        ("user-agent", "fuzz/1"),
        ("x-forwarded-for", "198.51.100.7, 203.0.113.9"),
        ("authorization", "Bearer t"),
    ])
    .with_peer("10.0.0.1".parse().ok());
    let body = br#"{"model":"m","prompt":"say hello to the fuzzer","params":{"user":"u"}}"#;
    for now in [0u64, 1, 2, 60_000, 120_001] {
        let d = drive::decide(&mut engine, &head, Some(body), now);
        assert!((0.0..=1.0).contains(&d.score));
        let _ = d.evidence("id");
        let f = engine.tick(now);
        assert!(f.clients <= limits.max_clients);
        assert!(f.fingerprints <= limits.max_fingerprints);
        assert!(f.bodies <= limits.max_bodies);
        assert!(f.sessions <= sessions);
        if let Some(follow_up) = d.follow_up {
            engine.on_response(follow_up, if now % 2 == 0 { 200 } else { 401 });
        }
    }
});
