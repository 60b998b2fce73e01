//! The seeds' own configurations, converted to JSON as they stand, pass `botgate lint` (warnings
//! are fine: they say what botgate does with the parts it does not run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

#[test]
fn the_gateway_pack_of_seed_003_lints_as_converted() {
    let text =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-003-gateway-pack.json")).unwrap();
    let parsed = botgate::policy::parse(&text);
    let errors: Vec<String> = parsed.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let policy = parsed.policy.unwrap();
    let detector = policy.bot_detector.unwrap();
    assert_eq!(detector.fields.len(), 5);
    assert!(detector.fields.contains(&botgate::policy::Field::ClientIp), "the forwarded header is read as client_ip");
    let said = |what: &str| parsed.diags.iter().any(|d| d.message.contains(what));
    assert!(said("set without trusted_proxies"), "a depth alone believes nobody, and lint says so");
    assert!(said("\"prompt-injection\" is not a botgate policy"));
}
