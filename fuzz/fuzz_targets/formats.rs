//! Outside formats on arbitrary bytes: a request's Web Bot Auth signature fields, an agent's key
//! directory, an origin's robots.txt, a feed's prefix list. All come from parties botgate does
//! not control (the signature from any client).
//!
//! Nothing may panic or loop; a signature that verifies must verify against a key from the
//! directory given; a checked prefix list must load again as the same kind.
#![no_main]

use arbitrary::Arbitrary;
use botgate::formats::robots::Fetched;
use botgate::formats::signature::{self, KeySet, Verdict};
use botgate::policy::feeds::{self, Kind};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    signature_input: &'a str,
    signature: &'a str,
    signature_agent: &'a str,
    authority: &'a str,
    target: &'a str,
    directory: &'a [u8],
    robots: &'a [u8],
    path: &'a str,
    list: &'a [u8],
    now: u32,
}

fuzz_target!(|i: Input<'_>| {
    let headers = vec![
        ("signature-input", i.signature_input),
        ("signature", i.signature),
        ("signature-agent", i.signature_agent),
    ];
    let req = signature::Request { method: "GET", scheme: "https", authority: i.authority, target: i.target, headers: &headers };
    let keys = KeySet::from_directory(i.directory).unwrap_or_else(|_| KeySet::new(Vec::new()));
    if let Verdict::Valid { keyid, .. } = signature::verify(&req, &signature::Policy::default(), u64::from(i.now), &keys) {
        assert!(keys.get(&keyid).is_some(), "valid without a listed key");
    }
    let fetched = Fetched::from_reply(Some(200), i.robots);
    let _ = fetched.allows("googlebot", i.path);
    let _ = fetched.crawl_delay_ms("googlebot");
    for kind in [Kind::Blocklist, Kind::Ranges, Kind::Robots, Kind::Keys, Kind::Decisions] {
        if let Ok((shared, _)) = feeds::check(kind, Some(200), i.list) {
            assert!(feeds::load(kind, &shared).is_some(), "a checked {kind:?} list does not load");
        }
    }
});
