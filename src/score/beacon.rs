//! Signals from the silent challenge ([`crate::challenge::beacon`]): what a session's beacons
//! reported, and a session whose pages carried the script but never answered.

use super::signal::Signal;
use crate::identity::session::Profile;

/// Pages with the script a session must have been sent, and how long since the first, before
/// its silence counts: a person's beacon leaves within a second of the page; tabs opened
/// together may all load before the first one's script has run.
const QUIET_PAGES: u16 = 3;
const QUIET_MS: u64 = 3_000;
const QUIET_LONG_MS: u64 = 10_000;

/// `automation_reported` for a session whose beacon reported automation traits;
/// `beacon_missing` for one that never answered: weak for a session that renders its pages (a
/// person with JavaScript off, alone never challenged), strong for one that does not render
/// either (a client reading HTML with something that is not a browser, or a headless browser
/// blocking scripts and assets).
pub fn signals(p: &Profile, now: u64, out: &mut Vec<Signal>) {
    let b = p.beacon;
    if b.driven || b.inconsistent {
        // Automation itself, in full; traits a person's privacy extension can cause (a user
        // agent switched to another browser's) at half: alone below the challenge on ordinary
        // pages, challenged on sensitive ones.
        out.push(Signal { name: "automation_reported", strength: if b.driven { 1.0 } else { 0.5 } });
        return;
    }
    if b.answered || b.pages < 2 {
        return;
    }
    let waited = now.saturating_sub(b.first_at);
    if (b.pages >= QUIET_PAGES && waited >= QUIET_MS) || waited >= QUIET_LONG_MS {
        let strength = if p.subresources == 0 { 1.0 } else { 0.3 };
        out.push(Signal { name: "beacon_missing", strength });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::session::BeaconSeen;

    fn names(p: &Profile, now: u64) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        signals(p, now, &mut out);
        out.iter().map(|s| (s.name, s.strength)).collect()
    }

    #[test]
    fn a_session_answering_its_beacons_gets_nothing() {
        let beacon = BeaconSeen { pages: 9, answered: true, ..BeaconSeen::default() };
        assert!(names(&Profile { beacon, ..Profile::default() }, 60_000).is_empty());
    }

    #[test]
    fn silence_counts_only_after_a_few_pages_and_seconds() {
        let beacon = BeaconSeen { pages: 2, ..BeaconSeen::default() };
        assert!(names(&Profile { beacon, ..Profile::default() }, 5_000).is_empty());
        assert_eq!(names(&Profile { beacon, ..Profile::default() }, 10_000), [("beacon_missing", 1.0)]);
        let rendering = Profile { beacon, subresources: 12, ..Profile::default() };
        assert_eq!(names(&rendering, 10_000), [("beacon_missing", 0.3)]);
    }

    #[test]
    fn reported_automation_is_scored_in_full() {
        let beacon = BeaconSeen { pages: 1, answered: true, driven: true, ..BeaconSeen::default() };
        assert_eq!(names(&Profile { beacon, ..Profile::default() }, 0), [("automation_reported", 1.0)]);
        let beacon = BeaconSeen { driven: false, inconsistent: true, ..beacon };
        assert_eq!(names(&Profile { beacon, ..Profile::default() }, 0), [("automation_reported", 0.5)]);
    }
}
