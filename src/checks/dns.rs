//! DNS messages on the wire (RFC 1035), as DNS over HTTPS carries them (RFC 8484): a query for
//! one name, and the records of a reply.
//!
//! A reply comes from a resolver botgate trusts, about a name an attacker may control (its own
//! PTR zone): parsing never panics and never loops, whatever the bytes. Compression pointers must
//! point backwards (so a chain of them ends), names are at most 255 bytes, and a name whose
//! labels hold anything but letters, digits, `-` and `_` is not a name botgate will compare (a
//! label `crawl.googlebot` must not read as two).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const A: u16 = 1;
pub const CNAME: u16 = 5;
pub const PTR: u16 = 12;
pub const AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Response codes botgate tells apart.
pub const NOERROR: u8 = 0;
pub const NXDOMAIN: u8 = 3;

/// A record of a reply's answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name, lower case, without the final dot.
    pub name: String,
    pub ttl: u32,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Ptr(String),
    Cname(String),
    Addr(IpAddr),
    /// Another type, or a name that is not a plain host name.
    Other,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub rcode: u8,
    pub answers: Vec<Record>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its own counts and lengths say.
    Truncated,
    /// A query, not a reply; or a reply to another question.
    NotOurAnswer,
    /// A name that loops, points forwards or is too long.
    BadName,
}

/// The query for `name` (dots between labels, no final dot needed) and `qtype`: id 0 as RFC 8484
/// asks (HTTP caches can then share answers), recursion desired. `None` for a name that is not
/// a valid host name.
pub fn query(name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(18 + name.len());
    m.extend_from_slice(&[0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    write_name(&mut m, name)?;
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(m)
}

fn write_name(m: &mut Vec<u8>, name: &str) -> Option<()> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || !label.bytes().all(host_byte) {
            return None;
        }
        m.push(label.len() as u8);
        m.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    m.push(0);
    Some(())
}

fn host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The name a PTR query asks for: `4.3.2.1.in-addr.arpa` or the nibbles under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Parses the reply to `query` (the bytes [`query`] made): its response code and answers.
pub fn parse(msg: &[u8], question: &[u8]) -> Result<Reply, WireError> {
    let header = msg.get(..12).ok_or(WireError::Truncated)?;
    let flags = u16::from_be_bytes([byte(header, 2)?, byte(header, 3)?]);
    let count = |i: usize| Ok::<u16, WireError>(u16::from_be_bytes([byte(header, i)?, byte(header, i + 1)?]));
    let (qd, an) = (count(4)?, count(6)?);
    // A reply (QR set) with our one question, byte for byte after the id and flags.
    let ours = question.get(12..).ok_or(WireError::NotOurAnswer)?;
    if flags & 0x8000 == 0 || qd != 1 || msg.get(12..12 + ours.len()) != Some(ours) {
        return Err(WireError::NotOurAnswer);
    }
    let rcode = (flags & 0x000f) as u8;
    let mut pos = 12 + ours.len();
    let mut answers = Vec::with_capacity(usize::from(an).min(16));
    for _ in 0..an {
        let (name, next) = read_name(msg, pos)?;
        let fixed = msg.get(next..next + 10).ok_or(WireError::Truncated)?;
        let rtype = u16::from_be_bytes([byte(fixed, 0)?, byte(fixed, 1)?]);
        let class = u16::from_be_bytes([byte(fixed, 2)?, byte(fixed, 3)?]);
        let ttl = u32::from_be_bytes([byte(fixed, 4)?, byte(fixed, 5)?, byte(fixed, 6)?, byte(fixed, 7)?]);
        let len = usize::from(u16::from_be_bytes([byte(fixed, 8)?, byte(fixed, 9)?]));
        let start = next + 10;
        let rdata = msg.get(start..start + len).ok_or(WireError::Truncated)?;
        let data = match (class, rtype) {
            (CLASS_IN, A) => <[u8; 4]>::try_from(rdata).map_or(Data::Other, |o| Data::Addr(Ipv4Addr::from(o).into())),
            (CLASS_IN, AAAA) => {
                <[u8; 16]>::try_from(rdata).map_or(Data::Other, |o| Data::Addr(Ipv6Addr::from(o).into()))
            }
            (CLASS_IN, PTR | CNAME) => match read_name(msg, start)?.0 {
                Some(target) if rtype == PTR => Data::Ptr(target),
                Some(target) => Data::Cname(target),
                None => Data::Other,
            },
            _ => Data::Other,
        };
        if let Some(name) = name {
            answers.push(Record { name, ttl, data });
        }
        pos = start + len;
    }
    Ok(Reply { rcode, answers })
}

fn byte(s: &[u8], i: usize) -> Result<u8, WireError> {
    s.get(i).copied().ok_or(WireError::Truncated)
}

/// The name at `pos` and where the bytes after it start; the name is `None` when it is well
/// formed on the wire but not a host name botgate compares (odd bytes in a label).
fn read_name(msg: &[u8], mut pos: usize) -> Result<(Option<String>, usize), WireError> {
    let mut name = String::new();
    let mut plain = true;
    let mut after = None;
    // Each jump goes strictly backwards, so there are fewer jumps than bytes; the bound is a
    // second guard.
    let mut lowest = pos;
    for _ in 0..128 {
        let len = byte(msg, pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let end = after.unwrap_or(pos + 1);
                return Ok((plain.then_some(name), end));
            }
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len)).ok_or(WireError::Truncated)?;
                if !name.is_empty() {
                    name.push('.');
                }
                plain &= label.iter().all(|b| host_byte(*b));
                name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
                if name.len() > 255 {
                    return Err(WireError::BadName);
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(u16::from_be_bytes([len, byte(msg, pos + 1)?]) & 0x3fff);
                if target >= lowest {
                    return Err(WireError::BadName);
                }
                after.get_or_insert(pos + 2);
                lowest = target;
                pos = target;
            }
            _ => return Err(WireError::BadName),
        }
    }
    Err(WireError::BadName)
}

/// The names `qname` stands for in `reply`: itself and the targets of the CNAME chain from it.
pub fn aliases<'a>(reply: &'a Reply, qname: &'a str) -> Vec<&'a str> {
    let mut names = vec![qname];
    // Each pass can add at most one link; a chain longer than the answers is a loop.
    for _ in 0..reply.answers.len() {
        let next = reply.answers.iter().find_map(|r| match &r.data {
            Data::Cname(t) if names.contains(&r.name.as_str()) && !names.contains(&t.as_str()) => Some(t.as_str()),
            _ => None,
        });
        match next {
            Some(t) => names.push(t),
            None => break,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply to `q` with `answers` appended raw (the question's name sits at offset 12).
    fn reply(q: &[u8], rcode: u8, answers: &[Vec<u8>]) -> Vec<u8> {
        let mut m = q.to_vec();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[7] = answers.len() as u8;
        for a in answers {
            m.extend_from_slice(a);
        }
        m
    }

    /// An answer owned by the question's name (pointer to offset 12).
    fn rr(rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = vec![0xc0, 12];
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    fn wire_name(name: &str) -> Vec<u8> {
        let mut m = Vec::new();
        write_name(&mut m, name).unwrap();
        m
    }

    #[test]
    fn a_query_is_one_question_with_recursion_desired() {
        let q = query("crawl-66-249-66-1.googlebot.com", A).unwrap();
        assert_eq!(&q[..12], &[0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..13], &[17]);
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        assert!(query("bad..name", A).is_none());
        assert!(query("sp ace.example", A).is_none());
        assert!(query(&"a".repeat(64), A).is_none());
    }

    #[test]
    fn reverse_names_follow_in_addr_and_ip6_arpa() {
        assert_eq!(reverse_name("66.249.66.1".parse().unwrap()), "1.66.249.66.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:4860:4801:10::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.1.0.8.4.0.6.8.4.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn a_ptr_answer_is_read_through_compression_pointers() {
        let q = query("1.66.249.66.in-addr.arpa", PTR).unwrap();
        let r = reply(&q, NOERROR, &[rr(PTR, 3600, &wire_name("crawl-66-249-66-1.googlebot.com"))]);
        let parsed = parse(&r, &q).unwrap();
        assert_eq!(parsed.rcode, NOERROR);
        assert_eq!(
            parsed.answers,
            vec![Record {
                name: "1.66.249.66.in-addr.arpa".into(),
                ttl: 3600,
                data: Data::Ptr("crawl-66-249-66-1.googlebot.com".into())
            }]
        );
    }

    #[test]
    fn addresses_and_cname_chains_are_read() {
        let q = query("www.example.com", A).unwrap();
        // www → CNAME host.example.com (suffix compressed to the question's "example.com").
        let mut cname = vec![4];
        cname.extend_from_slice(b"host");
        cname.extend_from_slice(&[0xc0, 16]);
        let cname_rr = rr(CNAME, 60, &cname);
        let target_at = (q.len() + cname_rr.len() - cname.len()) as u8;
        let mut a_rr = vec![0xc0, target_at];
        a_rr.extend_from_slice(&rr(A, 30, &[192, 0, 2, 7])[2..]);
        let r = reply(&q, NOERROR, &[cname_rr, a_rr]);
        let parsed = parse(&r, &q).unwrap();
        assert_eq!(parsed.answers[0].data, Data::Cname("host.example.com".into()));
        assert_eq!(parsed.answers[1].name, "host.example.com");
        assert_eq!(parsed.answers[1].data, Data::Addr("192.0.2.7".parse().unwrap()));
        assert_eq!(aliases(&parsed, "www.example.com"), vec!["www.example.com", "host.example.com"]);
    }

    #[test]
    fn a_label_with_a_dot_inside_is_not_a_name() {
        let q = query("9.2.0.192.in-addr.arpa", PTR).unwrap();
        let mut sneaky = vec![15];
        sneaky.extend_from_slice(b"crawl.googlebot");
        sneaky.extend_from_slice(&[3, b'c', b'o', b'm', 0]);
        let parsed = parse(&reply(&q, NOERROR, &[rr(PTR, 60, &sneaky)]), &q).unwrap();
        assert_eq!(parsed.answers[0].data, Data::Other);
    }

    #[test]
    fn hostile_replies_are_errors_not_panics() {
        let q = query("1.2.0.192.in-addr.arpa", PTR).unwrap();
        let good = reply(&q, NOERROR, &[rr(PTR, 60, &wire_name("a.example"))]);
        for cut in 0..good.len() {
            assert!(parse(&good[..cut], &q).is_err(), "cut at {cut}");
        }
        // A pointer to itself, a forward pointer, reserved label types.
        for bad in [vec![0xc0, 0x00], vec![0xc0, 0xff], vec![0x80, 0x00]] {
            let mut r = reply(&q, NOERROR, &[]);
            r[7] = 1;
            let here = r.len() as u8;
            r.extend_from_slice(&bad);
            if bad == [0xc0, 0x00] {
                let n = r.len();
                r[n - 1] = here;
            }
            r.extend_from_slice(&[0, 12, 0, 1, 0, 0, 0, 60, 0, 0]);
            assert!(parse(&r, &q).is_err());
        }
        assert_eq!(parse(&q, &q), Err(WireError::NotOurAnswer), "a query is not a reply");
        let other = query("2.2.0.192.in-addr.arpa", PTR).unwrap();
        assert_eq!(parse(&reply(&other, 0, &[]), &q), Err(WireError::NotOurAnswer));
    }

    #[test]
    fn a_name_longer_than_255_bytes_is_refused() {
        let q = query("1.2.0.192.in-addr.arpa", PTR).unwrap();
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(parse(&reply(&q, NOERROR, &[rr(PTR, 60, &long)]), &q), Err(WireError::BadName));
    }

    #[test]
    fn random_bytes_never_panic() {
        let q = query("1.2.0.192.in-addr.arpa", PTR).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut r = reply(&q, NOERROR, &[]);
            r[7] = 3;
            for _ in 0..(x % 90) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                r.push(x as u8);
            }
            let _ = parse(&r, &q);
        }
    }
}
