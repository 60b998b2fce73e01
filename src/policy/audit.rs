//! Allowlist hygiene: who owns each allowlist entry, why it exists, until when, and when the
//! thresholds are next reviewed (`botgate lint --audit`).
//!
//! Every allow condition and API key may carry `owner`, `justification` and `expires`
//! ([`Stewardship`]); `threshold_review` says when the scoring thresholds are due
//! for review. Allowlists that grow forever with nobody owning them, and thresholds nobody
//! re-checks, are how a bot-mitigation policy decays; the audit lists both.
//!
//! The parser has no clock: [`super::parse`] reads the dates (a malformed one is an error) and
//! never compares them with the time. The audit does, given `now_unix` by its caller (the CLI's
//! clock); the engine enforces `expires` per request against its own clock.

use super::reader::{Diag, Obj, Severity};
use super::values::{date_or_unix, non_empty, Stewardship};
use super::Policy;
use std::fmt;

/// An entry expiring within this many days is reported (it does not fail the audit).
pub const SOON_DAYS: u64 = 14;

const DAY: u64 = 86_400;

/// `threshold_review`: when the scoring thresholds were last set and are next due for review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThresholdReview {
    /// Its JSON path (`$.threshold_review`), for the audit.
    pub at: String,
    pub next_review_unix: Option<u64>,
    pub last_updated_unix: Option<u64>,
    pub owner: Option<String>,
}

/// Reads `threshold_review` (the seed's `last_updated`, `next_review` and targets, plus `owner`).
pub(super) fn read_review(o: Obj<'_>) -> ThresholdReview {
    let review = ThresholdReview {
        at: o.path.clone(),
        next_review_unix: date_or_unix(&o, "next_review"),
        last_updated_unix: date_or_unix(&o, "last_updated"),
        owner: non_empty(&o, "owner"),
    };
    for key in ["false_positive_target", "false_negative_target", "description"] {
        o.informational(key);
    }
    if let (Some(last), Some(next)) = (review.last_updated_unix, review.next_review_unix) {
        if next < last {
            o.ctx.warn(&o.child_path("next_review"), "before last_updated");
        }
    }
    o.finish();
    review
}

/// What kind of finding: only [`Kind::Expired`] and [`Kind::Overdue`] fail the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No owner, justification or expiry; no review date or review owner.
    Missing,
    /// Expires (or the review is due) within [`SOON_DAYS`].
    Soon,
    /// Past its `expires`: the entry no longer allows.
    Expired,
    /// `threshold_review.next_review` is past.
    Overdue,
}

/// One audit finding: where (a JSON path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub what: String,
    pub kind: Kind,
}

impl Finding {
    /// Whether it fails the audit (exit 1): something expired, or the review is overdue.
    pub fn fails(&self) -> bool {
        matches!(self.kind, Kind::Expired | Kind::Overdue)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// The findings about `policy` at `now_unix`, in policy order. A profile's entries are listed
/// only where they differ from the base policy's.
pub fn audit(policy: &Policy, now_unix: u64) -> Vec<Finding> {
    let base = audit_one(policy, now_unix);
    let mut out = base.clone();
    for (name, profile) in &policy.profiles {
        let prefix = format!("$.profiles.{name}");
        for f in audit_one(profile, now_unix) {
            let as_base =
                f.path.strip_prefix(prefix.as_str()).map_or_else(|| f.path.clone(), |rest| format!("${rest}"));
            let inherited = base.iter().any(|b| b.path == as_base && b.what == f.what);
            if !inherited {
                out.push(f);
            }
        }
    }
    out
}

/// The time-dependent warnings `botgate lint` adds to the parser's: expired entries and an
/// overdue review (the parser itself never reads the clock).
pub fn warnings(findings: &[Finding]) -> Vec<Diag> {
    findings
        .iter()
        .filter(|f| f.fails())
        .map(|f| Diag { severity: Severity::Warning, path: f.path.clone(), message: f.what.clone() })
        .collect()
}

fn audit_one(p: &Policy, now: u64) -> Vec<Finding> {
    let t = &p.tiers;
    // (entry, the condition it belongs to): a key inherits its condition's owner and reasons.
    // Conditions as written (one whose keys are unset still counts: setting them makes it live).
    let mut entries: Vec<(&Stewardship, Option<&Stewardship>)> = t.stewardship.iter().map(|s| (s, None)).collect();
    for api in &t.api {
        entries.extend(api.keys.iter().map(|k| (&k.stewardship, Some(&api.stewardship))));
    }
    entries.sort_by_cached_key(|(s, _)| natural(&s.at));
    let mut out = Vec::new();
    for (s, parent) in entries {
        let has = |f: fn(&Stewardship) -> bool| f(s) || parent.is_some_and(f);
        let missing: Vec<&str> = [
            ("owner", has(|s| s.owner.is_some())),
            ("justification", has(|s| s.justification.is_some())),
            ("expires", has(|s| s.expires_unix.is_some())),
        ]
        .into_iter()
        .filter_map(|(name, present)| (!present).then_some(name))
        .collect();
        if !missing.is_empty() {
            out.push(finding(&s.at, format!("no {}", or_list(&missing)), Kind::Missing));
        }
        if let Some(e) = s.expires_unix {
            if now >= e {
                out.push(finding(&s.at, format!("expired on {}: no longer allows", date(e)), Kind::Expired));
            } else if e - now <= SOON_DAYS * DAY {
                out.push(finding(&s.at, format!("expires on {}, {}", date(e), in_days(e - now)), Kind::Soon));
            }
        }
    }
    match &p.review {
        None => out.push(finding("$.threshold_review", "missing: no date to review the thresholds by", Kind::Missing)),
        Some(r) => {
            let at = |key: &str| format!("{}.{key}", r.at);
            match r.next_review_unix {
                None => out.push(finding(&at("next_review"), "missing", Kind::Missing)),
                Some(d) if now >= d => {
                    out.push(finding(&at("next_review"), format!("review overdue since {}", date(d)), Kind::Overdue))
                }
                Some(d) if d - now <= SOON_DAYS * DAY => out.push(finding(
                    &at("next_review"),
                    format!("review due on {}, {}", date(d), in_days(d - now)),
                    Kind::Soon,
                )),
                Some(_) => {}
            }
            if r.owner.is_none() {
                out.push(finding(&at("owner"), "missing: nobody owns the review", Kind::Missing));
            }
        }
    }
    out
}

fn finding(path: &str, what: impl Into<String>, kind: Kind) -> Finding {
    Finding { path: path.to_string(), what: what.into(), kind }
}

fn in_days(seconds: u64) -> String {
    match seconds.div_ceil(DAY) {
        1 => "in 1 day".into(),
        n => format!("in {n} days"),
    }
}

/// "a", "a or b", "a, b or c".
fn or_list(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A path with its indexes zero-padded, so that `[10]` sorts after `[9]`.
fn natural(path: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in path.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            out.push_str(&format!("{digits:0>12}"));
            digits.clear();
        }
        out.push(c);
    }
    out
}

/// Unix seconds as `YYYY-MM-DD` (UTC).
pub fn date(unix: u64) -> String {
    // Clamped to 9999-12-31: a date the parser accepts never goes further.
    let days = i64::try_from(unix / DAY).unwrap_or(i64::MAX).min(2_932_896);
    let (y, m, d) = crate::base::calendar::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: u64 = DAY;
    /// 2026-11-22T00:00:00Z.
    const NOW: u64 = 1_795_305_600;

    fn policy(text: &str) -> Policy {
        let parsed = crate::policy::parse(text.as_bytes());
        parsed.policy.unwrap_or_else(|| panic!("{:?}", parsed.diags))
    }

    fn lines(text: &str, now: u64) -> Vec<String> {
        audit(&policy(text), now).iter().map(ToString::to_string).collect()
    }

    const REVIEWED: &str = r#""threshold_review":{"next_review":"2027-02-01","owner":"fraud-team"}"#;

    fn monitoring(extra: &str) -> String {
        format!(
            r#"{{{REVIEWED},"tiers":{{"allow":{{"conditions":[{{"name":"internal_monitoring"{extra},
            "criteria":{{"source_ip_in_cidr":["10.0.100.0/24"],"user_agent_prefix_in":["synthetics/"]}}}}]}}}}}}"#
        )
    }

    #[test]
    fn an_allow_condition_without_owner_justification_or_expiry_is_listed() {
        assert_eq!(lines(&monitoring(""), NOW), ["$.tiers.allow.conditions[0]: no owner, justification or expires"]);
        let partial = monitoring(r#","owner":"sre""#);
        assert_eq!(lines(&partial, NOW), ["$.tiers.allow.conditions[0]: no justification or expires"]);
        assert!(audit(&policy(&partial), NOW).iter().all(|f| !f.fails()), "missing fields do not fail the audit");
    }

    #[test]
    fn a_fully_stewarded_policy_has_no_findings() {
        let text = monitoring(r#","owner":"sre","justification":"synthetics","expires":"2027-06-30""#);
        assert_eq!(lines(&text, NOW), Vec::<String>::new());
    }

    #[test]
    fn an_expired_entry_fails_the_audit_and_one_expiring_soon_does_not() {
        let text = monitoring(r#","owner":"sre","justification":"synthetics","expires":"2026-12-01""#);
        let soon = audit(&policy(&text), NOW);
        assert_eq!(soon.len(), 1, "{soon:?}");
        assert_eq!(soon[0].to_string(), "$.tiers.allow.conditions[0]: expires on 2026-12-01, in 9 days");
        assert!(!soon[0].fails());
        assert!(lines(&text, NOW - 30 * DAY_S).is_empty(), "a month ahead it is not listed");
        let late = audit(&policy(&text), NOW + 10 * DAY_S);
        assert_eq!(late[0].to_string(), "$.tiers.allow.conditions[0]: expired on 2026-12-01: no longer allows");
        assert!(late[0].fails());
    }

    #[test]
    fn an_api_key_takes_its_conditions_owner_and_reasons_and_reports_its_own_expiry() {
        let text = format!(
            r#"{{{REVIEWED},"tiers":{{"allow":{{"conditions":[{{"name":"allowlisted_api_consumer","owner":"partners",
            "justification":"contract","expires":"2028-01-01","criteria":{{"asn_not_residential_proxy":false,"keys":[
            {{"id":"a","sha256":"{k}"}},{{"id":"b","sha256":"{k}","expires":1795000000}}]}}}}]}}}}}}"#,
            k = "ab".repeat(32)
        );
        assert_eq!(
            lines(&text, NOW),
            ["$.tiers.allow.conditions[0].criteria.keys[1]: expired on 2026-11-18: no longer allows"]
        );
    }

    #[test]
    fn an_overdue_review_fails_the_audit_and_a_missing_one_does_not() {
        let overdue = audit(&policy(r#"{"threshold_review":{"next_review":"2026-08-01","owner":"x"}}"#), NOW);
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].to_string(), "$.threshold_review.next_review: review overdue since 2026-08-01");
        assert!(overdue[0].fails());
        let missing = audit(&policy("{}"), NOW);
        assert_eq!(
            missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["$.threshold_review: missing: no date to review the thresholds by"]
        );
        assert!(!missing[0].fails());
        assert_eq!(
            lines(r#"{"threshold_review":{"last_updated":"2026-05-08"}}"#, NOW),
            ["$.threshold_review.next_review: missing", "$.threshold_review.owner: missing: nobody owns the review"]
        );
        assert_eq!(
            lines(r#"{"threshold_review":{"next_review":"2026-11-30","owner":"x"}}"#, NOW),
            ["$.threshold_review.next_review: review due on 2026-11-30, in 8 days"]
        );
    }

    #[test]
    fn lint_warns_only_of_what_the_clock_has_passed() {
        let text = monitoring(r#","expires":"2026-01-01""#);
        let findings = audit(&policy(&text), NOW);
        let w = warnings(&findings);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].to_string(), "warning: $.tiers.allow.conditions[0]: expired on 2026-01-01: no longer allows");
    }

    #[test]
    fn the_parser_reads_the_seeds_review_and_never_the_clock() {
        let seed = r#"{"threshold_review":{"last_updated":"2026-05-08","next_review":"2026-08-01",
            "false_positive_target":"<0.1% of human sessions challenged",
            "false_negative_target":"<5% of identified bot campaigns pass undetected"}}"#;
        let parsed = crate::policy::parse(seed.as_bytes());
        assert!(parsed.diags.is_empty(), "a review date in the past is no parse finding: {:?}", parsed.diags);
        let review = parsed.policy.and_then(|p| p.review).expect("read");
        assert_eq!(review.next_review_unix, crate::policy::values::parse_date("2026-08-01"));
    }

    #[test]
    fn malformed_review_dates_and_stewardship_of_the_wrong_type_are_errors_with_their_paths() {
        let errors = |text: &str| {
            let parsed = crate::policy::parse(text.as_bytes());
            assert!(parsed.policy.is_none(), "{text}");
            parsed.errors().map(|d| d.path.clone()).collect::<Vec<_>>()
        };
        assert_eq!(errors(r#"{"threshold_review":{"next_review":"August"}}"#), ["$.threshold_review.next_review"]);
        assert_eq!(
            errors(r#"{"threshold_review":{"next_review":"2027-01-01","owner":""}}"#),
            ["$.threshold_review.owner"]
        );
        assert_eq!(errors(r#"{"threshold_review":{"next_reviw":"2027-01-01"}}"#), ["$.threshold_review.next_reviw"]);
        let bad = monitoring(r#","owner":7,"justification":" ","expires":"soon""#);
        assert_eq!(
            errors(&bad),
            [
                "$.tiers.allow.conditions[0].owner",
                "$.tiers.allow.conditions[0].justification",
                "$.tiers.allow.conditions[0].expires"
            ]
        );
        let key = format!(
            r#"{{"tiers":{{"allow":{{"conditions":[{{"name":"allowlisted_api_consumer","criteria":{{"keys":[
            {{"id":"k","sha256":"{}","owner":["a"],"justification":false}}]}}}}]}}}}}}"#,
            "ab".repeat(32)
        );
        assert_eq!(
            errors(&key),
            [
                "$.tiers.allow.conditions[0].criteria.keys[0].owner",
                "$.tiers.allow.conditions[0].criteria.keys[0].justification"
            ]
        );
    }

    #[test]
    fn a_profile_lists_only_what_differs_from_the_base() {
        let text = r#"{"threshold_review":{"next_review":"2027-02-01","owner":"x"},
            "tiers":{"allow":{"conditions":[{"name":"internal_monitoring",
              "criteria":{"source_ip_in_cidr":["10.0.0.0/8"],"user_agent_prefix_in":["s/"]}}]}},
            "profiles":{"same":{"mode":"observe"},"late":{"threshold_review":{"next_review":"2026-01-01"}}}}"#;
        assert_eq!(
            lines(text, NOW),
            [
                "$.tiers.allow.conditions[0]: no owner, justification or expires",
                "$.profiles.late.threshold_review.next_review: review overdue since 2026-01-01"
            ]
        );
    }

    #[test]
    fn dates_print_as_they_parse() {
        for d in ["1970-01-01", "2000-02-29", "2026-11-22", "2027-12-31", "9999-12-31"] {
            assert_eq!(date(crate::policy::values::parse_date(d).expect("a date")), d);
        }
        assert_eq!(date(u64::MAX), "9999-12-31");
        assert!(natural("$.a[10].b[2]") > natural("$.a[9].b[3]"));
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
    }
}
