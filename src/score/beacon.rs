//! Signals from the silent challenge ([`crate::challenge::beacon`]): what a session's beacons
//! reported, and a session whose pages carried the script but never answered.

use super::signal::Signal;
use crate::identity::session::Profile;

/// Pages with the script a session must have been sent since its last answer, and how long
/// since the first of them, before its silence counts: a person's beacon leaves within a second of the page; tabs opened
/// together may all load before the first one's script has run.
const QUIET_PAGES: u16 = 3;
const QUIET_MS: u64 = 3_000;
const QUIET_LONG_MS: u64 = 10_000;

/// The score the other signals must reach before `beacon_missing` joins them: the lowest
/// challenge band of the example (0.20, `/login`), so silence never tips a person over it (a
/// person with JavaScript off posting the login form scores 0.15 for `cold_submission`).
pub const CORROBORATION: f64 = 0.2;

/// `automation_reported` for a session whose beacon reported automation traits;
/// `beacon_missing` for one that never answered, given only when the other signals (`others`:
/// their combined score) already flag the request: a person with JavaScript off and every asset
/// cached looks exactly like an HTTP client reading HTML, so silence corroborates, never
/// challenges alone. Weak for a session that renders its pages, strong for one that does not.
pub fn signals(p: &Profile, now: u64, others: f64, out: &mut Vec<Signal>) {
    let b = p.beacon;
    if b.driven {
        out.push(Signal { name: "automation_reported", strength: 1.0 });
        return;
    }
    if b.inconsistent {
        // Traits a person's privacy extension can cause (a user agent switched to another
        // browser's) at half: alone below the challenge on ordinary pages, challenged on
        // sensitive ones. The headers may have said so already (Chromium's client hints under a
        // Firefox user agent): one fact, counted once.
        if !out.iter().any(|s| s.name == "client_hints_mismatch") {
            out.push(Signal { name: "automation_reported", strength: 0.5 });
        }
        return;
    }
    if b.unanswered < 2 || others < CORROBORATION {
        return;
    }
    let waited = now.saturating_sub(b.unanswered_since);
    if (b.unanswered >= QUIET_PAGES && waited >= QUIET_MS) || waited >= QUIET_LONG_MS {
        let strength = if p.subresources == 0 { 0.6 } else { 0.2 };
        out.push(Signal { name: "beacon_missing", strength });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::session::BeaconSeen;

    fn names(p: &Profile, now: u64) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        signals(p, now, 0.25, &mut out);
        out.iter().map(|s| (s.name, s.strength)).collect()
    }

    #[test]
    fn a_session_answering_its_beacons_gets_nothing() {
        let beacon = BeaconSeen { unanswered: 0, ..BeaconSeen::default() };
        assert!(names(&Profile { beacon, ..Profile::default() }, 60_000).is_empty());
    }

    #[test]
    fn silence_counts_only_after_a_few_pages_and_seconds() {
        let beacon = BeaconSeen { unanswered: 2, ..BeaconSeen::default() };
        assert!(names(&Profile { beacon, ..Profile::default() }, 5_000).is_empty());
        assert_eq!(names(&Profile { beacon, ..Profile::default() }, 10_000), [("beacon_missing", 0.6)]);
        let rendering = Profile { beacon, subresources: 12, ..Profile::default() };
        assert_eq!(names(&rendering, 10_000), [("beacon_missing", 0.2)]);
        let mut alone = Vec::new();
        signals(&Profile { beacon, ..Profile::default() }, 10_000, 0.15, &mut alone);
        assert!(alone.is_empty(), "silence alone is nothing");
    }

    #[test]
    fn reported_automation_is_scored_in_full() {
        let beacon = BeaconSeen { driven: true, ..BeaconSeen::default() };
        assert_eq!(names(&Profile { beacon, ..Profile::default() }, 0), [("automation_reported", 1.0)]);
        let beacon = BeaconSeen { driven: false, inconsistent: true, ..beacon };
        assert_eq!(names(&Profile { beacon, ..Profile::default() }, 0), [("automation_reported", 0.5)]);
    }
}
