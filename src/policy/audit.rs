//! Allowlist hygiene: who owns each allowlist entry, why it exists, until when, and when the
//! thresholds are next reviewed (`botgate lint --audit`).
//!
//! Every allow condition and API key may carry `owner`, `justification` and `expires`
//! ([`super::allow::Stewardship`]); `threshold_review` says when the scoring thresholds are due
//! for review. Allowlists that grow forever with nobody owning them, and thresholds nobody
//! re-checks, are how a bot-mitigation policy decays; the audit lists both.
//!
//! The parser has no clock: [`super::parse`] reads the dates (a malformed one is an error) and
//! never compares them with the time. The audit does, given `now_unix` by its caller (the CLI's
//! clock); the engine enforces `expires` per request against its own clock.

use super::allow::{non_empty, Stewardship};
use super::reader::{Diag, Obj, Severity};
use super::values::date_or_unix;
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
    let mut entries: Vec<(&Stewardship, Option<&Stewardship>)> = Vec::new();
    entries.extend(t.monitoring.iter().map(|m| (&m.stewardship, None)));
    entries.extend(t.ci.iter().map(|c| (&c.stewardship, None)));
    entries.extend(t.crawler.iter().map(|c| (&c.stewardship, None)));
    for api in &t.api {
        entries.push((&api.stewardship, None));
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

/// Unix seconds as `YYYY-MM-DD` (UTC; Howard Hinnant's civil-from-days).
pub fn date(unix: u64) -> String {
    // Clamped to 9999-12-31: a date the parser accepts never goes further.
    let days = i64::try_from(unix / DAY).unwrap_or(i64::MAX).min(2_932_896);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
