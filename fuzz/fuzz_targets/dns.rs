//! The resolver's replies on arbitrary bytes, through both steps of forward-confirmed reverse
//! DNS: the answer comes from a resolver, about names whose owner may be the attacker.
//!
//! Nothing may panic or loop; a confirmation must name a host under one of the suffixes asked
//! about, and only after a forward query for that very name.
#![no_main]

use arbitrary::Arbitrary;
use botgate::checks::dns;
use botgate::checks::fcrdns::{is_under, Fcrdns, Next, Outcome};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    v6: bool,
    addr: [u8; 16],
    ptr_reply: &'a [u8],
    forward_reply: &'a [u8],
    status: Option<u32>,
}

fuzz_target!(|i: Input<'_>| {
    let ip: std::net::IpAddr = if i.v6 {
        std::net::Ipv6Addr::from(i.addr).into()
    } else {
        std::net::Ipv4Addr::new(i.addr[0], i.addr[1], i.addr[2], i.addr[3]).into()
    };
    let suffixes = vec!["googlebot.com".to_string(), "search.msn.com".to_string()];
    let (mut f, query) = Fcrdns::start(ip, &suffixes);
    let _ = dns::parse(i.ptr_reply, &query);
    // The reply as sent, and with the question spliced in so the parser gets past the header.
    let mut spliced = query.clone();
    spliced[2] |= 0x80;
    spliced.extend_from_slice(i.ptr_reply);
    for reply in [i.ptr_reply, &spliced[..]] {
        let (mut g, _) = Fcrdns::start(ip, &suffixes);
        if let Next::Ask(forward) = g.on_reply(Some(200), reply) {
            let mut answered = forward.clone();
            answered[2] |= 0x80;
            answered.extend_from_slice(i.forward_reply);
            if let Next::Done(Outcome::Confirmed(name)) = g.on_reply(i.status.or(Some(200)), &answered) {
                assert!(suffixes.iter().any(|s| is_under(&name, s)), "{name}");
                assert_eq!(dns::query(&name, if ip.is_ipv4() { dns::A } else { dns::AAAA }).as_deref(), Some(&forward[..]));
            }
        }
    }
    let _ = f.on_reply(i.status, i.ptr_reply);
});
