//! The silent challenge's parsers on arbitrary input: a page's CSP header values and body
//! chunks (the upstream's, which a compromised or careless upstream controls), and a beacon's
//! token and query (the client's).
//!
//! Nothing may panic; an insertion must keep every byte of the chunk around the element; a
//! nonce the page is given back must be one the CSP grammar allows (no quote can break out of
//! the attribute); a token that checks must be exactly the one minted.
#![no_main]

use arbitrary::Arbitrary;
use botgate::challenge::beacon;
use botgate::challenge::gate::Who;
use botgate::challenge::inject::{self, Admit, Spot};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    csp: Vec<&'a [u8]>,
    chunk: &'a [u8],
    token: &'a str,
    query: &'a [u8],
    now: u64,
}

fuzz_target!(|i: Input<'_>| {
    let hash = beacon::csp_hash();
    let admit = inject::csp_admits(&i.csp, &hash);
    if let Admit::Nonce(n) = &admit {
        assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b)), "{n:?}");
    }
    let element = inject::element("00.1.AA", &admit);
    // The opening tag holds exactly its own attributes' quotes.
    let tag = element.split('>').next().unwrap_or("");
    assert_eq!(tag.matches('"').count(), if matches!(admit, Admit::Nonce(_)) { 4 } else { 2 }, "{tag}");
    if let Spot::At(at) = inject::spot(i.chunk) {
        assert!(at <= i.chunk.len());
        let page = inject::insert(i.chunk, at, &element);
        assert_eq!(page.len(), i.chunk.len() + element.len());
        assert_eq!(&page[..at], &i.chunk[..at]);
        assert_eq!(&page[at + element.len()..], &i.chunk[at..]);
    }
    let key = [7u8; 32];
    let who = Who { sid: "a0".into(), bnd: "b0".into(), now: i.now };
    let _ = beacon::reported(i.query);
    if let Ok((nonce, issued)) = beacon::check(&[&key], &who, i.token) {
        let minted = beacon::mint(&key, &Who { now: issued.saturating_mul(1000), ..who.clone() }, nonce);
        assert_eq!(minted, i.token, "a token that checks was minted as it is");
    }
    let fresh = beacon::mint(&key, &who, "0123abcd");
    let later = Who { now: i.now.saturating_add(1), ..who.clone() };
    if i.now < u64::MAX / 2 {
        assert!(beacon::check(&[&key], &later, &fresh).is_ok(), "a fresh token checks");
    }
});
