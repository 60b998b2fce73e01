//! Allowlist hygiene end to end: an allow condition past its `expires` stops allowing (checked
//! per request against the engine's clock), and `botgate lint --audit` lists entries nobody
//! owns, justifies or dates and an overdue threshold review, failing on what has expired.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::engine::lookups::Answer;
use common::*;
use serde_json::{json, Value};
use std::process::Command;

const DAY_MS: u64 = 86_400_000;
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// `policy` with the allow condition `name` expiring on `expires`.
fn expiring(policy: &str, name: &str, expires: &str) -> String {
    let mut p: Value = serde_json::from_str(policy).unwrap();
    let conditions = p["tiers"]["allow"]["conditions"].as_array_mut().unwrap();
    let c = conditions.iter_mut().find(|c| c["name"] == name).unwrap();
    c["expires"] = json!(expires);
    p.to_string()
}

fn synthetics() -> Req {
    Req::new("GET", "/healthz", "10.0.100.7").header("user-agent", "synthetics/1.0").header("accept", "*/*")
}

#[test]
fn a_monitoring_condition_stops_allowing_once_the_engines_clock_passes_its_expiry() {
    // Expires the day after T0: allowed at T0, not two days later, by the same engine.
    let mut e = engine(&expiring(&keyed_example(), "internal_monitoring", "2026-11-23"));
    let before = send(&mut e, &synthetics(), T0, 200);
    assert_eq!(before.verdict, Verdict::Allow, "{before:?}");
    assert_eq!(before.reasons, vec!["internal_monitoring"]);
    let after = send(&mut e, &synthetics(), T0 + 2 * DAY_MS, 200);
    assert_ne!(after.verdict, Verdict::Allow, "{after:?}");
    assert!(!after.reasons.contains(&"internal_monitoring"), "{after:?}");
}

#[test]
fn an_expired_api_consumer_condition_refuses_every_key_it_lists() {
    let mut e = engine(&expiring(&keyed_example(), "allowlisted_api_consumer", "2026-11-01"));
    let call = Req::new("GET", "/api/orders", "198.51.100.20")
        .header("user-agent", "partner-sync/2")
        .header("x-api-key", "demo-partner-key");
    let d = send(&mut e, &call, T0, 200);
    assert_ne!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(d.reasons.contains(&"api_key_expired"), "{d:?}");
}

#[test]
fn a_lapsed_crawler_condition_scores_a_proven_googlebot_instead_of_allowing_it() {
    let ok = Answer::Value("crawl-66-249-66-1.googlebot.com".into());
    let googlebot = Req::new("GET", "/sitemap.xml", "66.249.66.1")
        .header("user-agent", GOOGLEBOT)
        .header("accept", "*/*")
        .header("accept-encoding", "gzip");
    let live = with_resolver(json!({}));
    let d = decide_answering(&mut engine(&live), &googlebot, T0, &ok, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    let lapsed = expiring(&live, "verified_search_crawler", "2026-11-01");
    let d = decide_answering(&mut engine(&lapsed), &googlebot, T0, &ok, &mut Vec::new());
    assert_ne!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(!d.reasons.contains(&"verified_search_crawler"), "{d:?}");
    assert_eq!(d.bot.as_deref().map(|b| b.verified), Some("fcrdns"), "still proven and labelled: {d:?}");
}

/// Runs `botgate ARGS… FILE` on `policy` written to a temporary file: (exit code, stdout, file).
fn botgate(args: &[&str], name: &str, policy: &str) -> (i32, String, String) {
    // Cargo's scratch directory for tests, inside target/: nothing is left in /tmp.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, policy).unwrap();
    let file = file.to_string_lossy().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_botgate")).args(args).arg(&file).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string(), file)
}

fn monitoring_policy(stewardship: &str, next_review: &str) -> String {
    format!(
        r#"{{"threshold_review":{{"owner":"fraud-team","next_review":"{next_review}"}},
        "tiers":{{"allow":{{"conditions":[{{"name":"internal_monitoring"{stewardship},
          "criteria":{{"source_ip_in_cidr":["10.0.100.0/24"],"user_agent_prefix_in":["synthetics/"]}}}}]}}}}}}"#
    )
}

#[test]
fn lint_audit_lists_a_missing_owner_and_an_overdue_review_and_exits_1() {
    let policy = monitoring_policy("", "2020-01-01");
    let (code, out, file) = botgate(&["lint", "--audit"], "overdue", &policy);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{file}: ok (")), "the normal lint output comes first: {out}");
    assert!(
        out.contains(&format!("{file}: audit: $.tiers.allow.conditions[0]: no owner, justification or expires")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{file}: audit: $.threshold_review.next_review: review overdue since 2020-01-01")),
        "{out}"
    );
    assert!(out.contains(&format!("{file}: audit done (2 findings, 1 expired or overdue)")), "{out}");
    // Plain lint: the overdue review is a warning, and the policy is valid.
    let (code, out, file) = botgate(&["lint"], "overdue-plain", &policy);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{file}: warning: $.threshold_review.next_review: review overdue")), "{out}");
    assert!(!out.contains(": audit"), "{out}");
}

#[test]
fn lint_audit_exits_0_when_only_owners_reasons_or_dates_are_missing() {
    let (code, out, file) =
        botgate(&["lint", "--audit"], "missing", &monitoring_policy(r#","owner":"sre""#, "9999-12-31"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{file}: audit: $.tiers.allow.conditions[0]: no justification or expires")), "{out}");
}

#[test]
fn lint_audit_exits_1_for_an_expired_entry_and_for_an_invalid_policy() {
    let expired =
        monitoring_policy(r#","owner":"sre","justification":"synthetics","expires":"1999-01-01""#, "9999-12-31");
    let (code, out, file) = botgate(&["lint", "--audit"], "expired", &expired);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{file}: audit: $.tiers.allow.conditions[0]: expired on 1999-01-01: no longer allows")),
        "{out}"
    );
    let (code, out, file) = botgate(&["lint", "--audit"], "invalid", &monitoring_policy(r#","owner":5"#, "2027-01-01"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{file}: error: $.tiers.allow.conditions[0].owner: expected a string")), "{out}");
    assert!(!out.contains(": audit"), "no audit of an invalid policy: {out}");
}

#[test]
fn the_example_policy_names_an_owner_a_reason_and_an_expiry_for_every_entry() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.example.json")).unwrap();
    let (_, out, _) = botgate(&["lint", "--audit"], "example", &text);
    assert!(out.contains(": audit done ("), "{out}");
    // Whether a date has passed depends on the day the test runs; what is missing does not.
    for missing in [": no ", "missing"] {
        assert!(!out.lines().any(|l| l.contains(": audit: ") && l.contains(missing)), "{out}");
    }
}
