//! Forward-confirmed reverse DNS, one step per DNS-over-HTTPS answer: the PTR name of the
//! address, then that name's A or AAAA records, which must hold the address again.
//!
//! The PTR zone belongs to whoever holds the address, so its answer alone proves nothing (anyone
//! can make `1.2.0.192.in-addr.arpa` say `crawl.googlebot.com`); the forward zone of the name
//! belongs to the name's owner, so an address it lists is one the owner vouches for. A name is
//! under a suffix only at a label boundary: `evilgooglebot.com` is not under `googlebot.com`.
//!
//! The shell drives it: [`Fcrdns::start`] gives the first query, each reply gives the next
//! query or the outcome. Transport failures (a timeout, an error status, a reply that does not
//! parse, SERVFAIL) are [`Outcome::Failed`], never a confirmation: the caller leaves the claim
//! unverified. NXDOMAIN, no PTR, no name under a known suffix, or an address list without the
//! client are [`Outcome::Refuted`].

use super::dns::{self, Data};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The name whose forward records hold the address.
    Confirmed(String),
    Refuted,
    /// Why no answer could be had (a metric label).
    Failed(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this DNS message and call [`Fcrdns::on_reply`] with the answer.
    Ask(Vec<u8>),
    Done(Outcome),
}

/// One address being verified.
#[derive(Debug)]
pub struct Fcrdns {
    ip: IpAddr,
    suffixes: Vec<String>,
    /// The name asked about and the query sent for it.
    asked: String,
    query: Vec<u8>,
    forward: bool,
}

impl Fcrdns {
    /// Starts with the PTR query of `ip`; `suffixes` are the crawler domains a PTR name is worth
    /// confirming for (any other name ends the verification at once).
    pub fn start(ip: IpAddr, suffixes: &[String]) -> (Fcrdns, Vec<u8>) {
        let asked = dns::reverse_name(ip);
        let query = dns::query(&asked, dns::PTR).unwrap_or_default();
        let f = Fcrdns { ip, suffixes: suffixes.to_vec(), asked, query: query.clone(), forward: false };
        (f, query)
    }

    /// The step after the resolver's HTTP answer (`status` `None`: the call was reset).
    pub fn on_reply(&mut self, status: Option<u32>, body: &[u8]) -> Next {
        match status {
            Some(200) => {}
            Some(504) => return Next::Done(Outcome::Failed("timeout")),
            None => return Next::Done(Outcome::Failed("reset")),
            Some(_) => return Next::Done(Outcome::Failed("http_status")),
        }
        let reply = match dns::parse(body, &self.query) {
            Ok(r) => r,
            Err(_) => return Next::Done(Outcome::Failed("garbage")),
        };
        match reply.rcode {
            dns::NOERROR => {}
            dns::NXDOMAIN => return Next::Done(Outcome::Refuted),
            _ => return Next::Done(Outcome::Failed("servfail")),
        }
        let names = dns::aliases(&reply, &self.asked);
        let owned = |r: &&dns::Record| names.contains(&r.name.as_str());
        if self.forward {
            let confirmed = reply.answers.iter().filter(owned).any(|r| r.data == Data::Addr(self.ip));
            return Next::Done(if confirmed { Outcome::Confirmed(self.asked.clone()) } else { Outcome::Refuted });
        }
        let candidate = reply.answers.iter().filter(owned).find_map(|r| match &r.data {
            Data::Ptr(name) if self.suffixes.iter().any(|s| is_under(name, s)) => Some(name.clone()),
            _ => None,
        });
        let Some(name) = candidate else { return Next::Done(Outcome::Refuted) };
        let qtype = if self.ip.is_ipv4() { dns::A } else { dns::AAAA };
        let Some(query) = dns::query(&name, qtype) else { return Next::Done(Outcome::Refuted) };
        self.asked = name;
        self.query = query.clone();
        self.forward = true;
        Next::Ask(query)
    }
}

/// Whether `name` is `suffix` or a name below it (at a label boundary, any case, a final dot
/// ignored).
pub fn is_under(name: &str, suffix: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let suffix = suffix.strip_suffix('.').unwrap_or(suffix).trim_start_matches('.');
    if suffix.is_empty() || name.len() < suffix.len() {
        return false;
    }
    let (head, tail) = name.split_at(name.len() - suffix.len());
    tail.eq_ignore_ascii_case(suffix) && (head.is_empty() || head.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resolver's reply to `q`: the question, then `records` as (owner, type, rdata).
    fn answer(q: &[u8], rcode: u8, records: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = q.to_vec();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[7] = records.len() as u8;
        for (owner, rtype, rdata) in records {
            m.extend_from_slice(&name(owner));
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        }
        m
    }

    fn name(n: &str) -> Vec<u8> {
        let q = dns::query(n, dns::A).unwrap();
        q[12..q.len() - 4].to_vec()
    }

    fn google() -> Vec<String> {
        vec!["googlebot.com".into(), "google.com".into()]
    }

    const IP: &str = "66.249.66.1";
    const PTR_NAME: &str = "1.66.249.66.in-addr.arpa";
    const HOST: &str = "crawl-66-249-66-1.googlebot.com";

    fn through_ptr(ptr: &str) -> (Fcrdns, Next) {
        let (mut f, q) = Fcrdns::start(IP.parse().unwrap(), &google());
        let next = f.on_reply(Some(200), &answer(&q, 0, &[(PTR_NAME, dns::PTR, name(ptr))]));
        (f, next)
    }

    #[test]
    fn a_genuine_crawler_is_confirmed_by_its_forward_records() {
        let (mut f, next) = through_ptr(HOST);
        let Next::Ask(q) = next else { panic!("no forward query: {next:?}") };
        assert_eq!(q, dns::query(HOST, dns::A).unwrap());
        let next = f.on_reply(Some(200), &answer(&q, 0, &[(HOST, dns::A, vec![66, 249, 66, 1])]));
        assert_eq!(next, Next::Done(Outcome::Confirmed(HOST.into())));
    }

    #[test]
    fn a_ptr_that_does_not_forward_confirm_is_refuted() {
        let (mut f, Next::Ask(q)) = through_ptr(HOST) else { panic!() };
        let next = f.on_reply(Some(200), &answer(&q, 0, &[(HOST, dns::A, vec![66, 249, 66, 9])]));
        assert_eq!(next, Next::Done(Outcome::Refuted));
        let (mut f, Next::Ask(q)) = through_ptr(HOST) else { panic!() };
        assert_eq!(f.on_reply(Some(200), &answer(&q, dns::NXDOMAIN, &[])), Next::Done(Outcome::Refuted));
    }

    #[test]
    fn a_name_outside_every_suffix_ends_it_at_once() {
        assert_eq!(through_ptr("crawl.evilgooglebot.com").1, Next::Done(Outcome::Refuted));
        assert_eq!(through_ptr("googlebot.com.evil.example").1, Next::Done(Outcome::Refuted));
        let (mut f, q) = Fcrdns::start(IP.parse().unwrap(), &google());
        assert_eq!(f.on_reply(Some(200), &answer(&q, dns::NXDOMAIN, &[])), Next::Done(Outcome::Refuted));
    }

    #[test]
    fn transport_and_resolver_failures_are_failures_not_refutations() {
        let (mut f, q) = Fcrdns::start(IP.parse().unwrap(), &google());
        assert_eq!(f.on_reply(Some(504), b""), Next::Done(Outcome::Failed("timeout")));
        assert_eq!(f.on_reply(Some(503), b""), Next::Done(Outcome::Failed("http_status")));
        assert_eq!(f.on_reply(None, b""), Next::Done(Outcome::Failed("reset")));
        assert_eq!(f.on_reply(Some(200), b"<html>"), Next::Done(Outcome::Failed("garbage")));
        assert_eq!(f.on_reply(Some(200), &answer(&q, 2, &[])), Next::Done(Outcome::Failed("servfail")));
    }

    #[test]
    fn records_for_other_names_are_not_read() {
        // A PTR owned by another name in the same answer does not count.
        let (mut f, q) = Fcrdns::start(IP.parse().unwrap(), &google());
        let r = answer(&q, 0, &[("9.9.9.9.in-addr.arpa", dns::PTR, name(HOST))]);
        assert_eq!(f.on_reply(Some(200), &r), Next::Done(Outcome::Refuted));
        // Nor an A record of a name other than the one asked.
        let (mut f, Next::Ask(q)) = through_ptr(HOST) else { panic!() };
        let r = answer(&q, 0, &[("other.googlebot.com", dns::A, vec![66, 249, 66, 1])]);
        assert_eq!(f.on_reply(Some(200), &r), Next::Done(Outcome::Refuted));
    }

    #[test]
    fn ipv6_is_confirmed_by_aaaa() {
        let ip: IpAddr = "2001:4860:4801:10::1".parse().unwrap();
        let (mut f, q) = Fcrdns::start(ip, &google());
        let ptr = dns::reverse_name(ip);
        let Next::Ask(q2) = f.on_reply(Some(200), &answer(&q, 0, &[(&ptr, dns::PTR, name(HOST))])) else { panic!() };
        assert_eq!(q2, dns::query(HOST, dns::AAAA).unwrap());
        let v6 = match ip {
            IpAddr::V6(v) => v.octets().to_vec(),
            IpAddr::V4(_) => unreachable!(),
        };
        assert_eq!(
            f.on_reply(Some(200), &answer(&q2, 0, &[(HOST, dns::AAAA, v6)])),
            Next::Done(Outcome::Confirmed(HOST.into()))
        );
    }

    #[test]
    fn suffixes_match_at_label_boundaries_only() {
        assert!(is_under("crawl-1.googlebot.com", "googlebot.com"));
        assert!(is_under("Crawl-1.GoogleBot.com.", ".googlebot.com"));
        assert!(is_under("googlebot.com", "googlebot.com"));
        assert!(!is_under("evilgooglebot.com", "googlebot.com"));
        assert!(!is_under("googlebot.com.evil.example", "googlebot.com"));
        assert!(!is_under("com", "googlebot.com"));
        assert!(!is_under("x.googlebot.com", ""));
    }
}
