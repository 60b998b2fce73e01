//! Lists that stay fresh without a restart: a threat-intel blocklist or a crawler's published
//! ranges may name a feed (`source: {cluster, path, refresh_seconds}`) that one worker fetches
//! on its period and shares with the others.
//!
//! A feed is someone else's file, so an update is checked whole before it replaces anything: a
//! body that does not parse, is empty, or (for ranges that let a crawler in) holds a prefix wide
//! enough to let in a large part of the internet is refused, and the last good list stays (stale
//! beats empty). The formats are the ones published: one prefix a line with `#` or `;` comments
//! (FireHOL, Spamhaus DROP), or the JSON `prefixes[].ipv4Prefix|ipv6Prefix` of Google and Bing.

use super::reader::Obj;
use crate::base::iptable::IpSet;
use ipnet::IpNet;
use std::sync::Arc;

/// What a feed's list is for (it decides how strictly an update is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Addresses to block.
    Blocklist,
    /// Addresses a crawler is allowed from: a wide prefix here would allow anyone claiming it.
    Ranges,
    /// The origin's robots.txt: what verified crawlers may fetch, and how fast.
    Robots,
    /// A signing agent's key directory (Web Bot Auth).
    Keys,
    /// CrowdSec's decisions stream (`/v1/decisions/stream?startup=true`): every active decision.
    Decisions,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Blocklist => "blocklist",
            Kind::Ranges => "ranges",
            Kind::Robots => "robots",
            Kind::Keys => "keys",
            Kind::Decisions => "decisions",
        }
    }
}

/// Where a list comes from and how often it is fetched again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The list it feeds (a blocklist's or a crawler's name): the metric label.
    pub name: String,
    pub kind: Kind,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_ms: u64,
    pub timeout_ms: u64,
    /// A header the source needs (CrowdSec's bouncer key), never logged.
    pub secret_header: Option<SecretHeader>,
}

/// A header whose value is a credential: its value never shows in `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHeader {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for SecretHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: <redacted>", self.name)
    }
}

impl Feed {
    /// Its key in shared data: the same file fetched for the same use is one feed, whichever
    /// list or profile names it.
    pub fn id(&self) -> String {
        let h = crate::base::fasthash::hash(&[
            self.kind.as_str().as_bytes(),
            self.cluster.as_bytes(),
            self.authority.as_bytes(),
            self.path.as_bytes(),
        ]);
        format!("{h:016x}")
    }
}

/// Largest feed body read (FireHOL level 1 is about 100 KB; a country-sized list a few MB; a
/// CrowdSec stream about 150 bytes a decision, so room for 200,000).
pub const MAX_BODY: usize = 32 << 20;
/// Most prefixes one feed may hold.
pub const MAX_PREFIXES: usize = 500_000;
/// Narrowest a published crawler range may be: wider would let a claimed crawler in from a
/// whole provider's space.
const MIN_RANGE_V4: u8 = 16;
const MIN_RANGE_V6: u8 = 32;
/// Most addresses a crawler's ranges may hold in all (sixteen /16s; Googlebot's published
/// ranges hold a few thousand): many narrow prefixes are as wide as one broad one.
const MAX_RANGES_V4: u64 = 1 << 20;
const MAX_RANGES_V6: u128 = 1 << 100;
/// Most of the public address space a blocklist may hold: an eighth (FireHOL level 1, the
/// broadest list in common use, holds about 1% of it besides the reserved blocks it lists).
const MAX_BLOCKED_V4: u64 = PUBLIC_V4 / 8;
const MAX_BLOCKED_V6: u128 = 1 << 122; // an eighth of 2000::/3
/// IPv4 blocks no client on the internet comes from (lists such as FireHOL's include them).
const RESERVED_V4: &[(u32, u32)] = &[
    (0x0000_0000, 0x00FF_FFFF), // 0.0.0.0/8
    (0x0A00_0000, 0x0AFF_FFFF), // 10.0.0.0/8
    (0x6440_0000, 0x647F_FFFF), // 100.64.0.0/10
    (0x7F00_0000, 0x7FFF_FFFF), // 127.0.0.0/8
    (0xA9FE_0000, 0xA9FE_FFFF), // 169.254.0.0/16
    (0xAC10_0000, 0xAC1F_FFFF), // 172.16.0.0/12
    (0xC0A8_0000, 0xC0A8_FFFF), // 192.168.0.0/16
    (0xE000_0000, 0xFFFF_FFFF), // 224.0.0.0/3
];
const PUBLIC_V4: u64 = (1 << 32) - 3 * (1 << 24) - (1 << 22) - (1 << 16) - (1 << 20) - (1 << 16) - (1 << 29);

/// Reads `source` (an object) of the list `name`; a string stays informational (what the
/// operator noted as the list's origin).
pub fn read_source(o: &Obj<'_>, name: &str, kind: Kind) -> Option<Feed> {
    if o.get("source").is_some_and(|v| v.is_string()) {
        return None;
    }
    read_feed(o.obj("source")?, name, kind, None)
}

/// A feed's fields (`path` may have a default).
pub fn read_feed(s: Obj<'_>, name: &str, kind: Kind, default_path: Option<&str>) -> Option<Feed> {
    let cluster = s.string("cluster").map(str::to_string);
    let path = s.string("path").or(default_path).map(str::to_string);
    let authority = s.string("authority").map(str::to_string);
    let refresh_ms = s.u64_in("refresh_seconds", 3_600, 1, 7 * 86_400) * 1000;
    let timeout_ms = s.u64_in("timeout_ms", 5_000, 100, 60_000);
    let (Some(cluster), Some(path)) = (cluster, path) else {
        for (key, what) in
            [("cluster", "the Envoy cluster serving the list"), ("path", "the list's path, like /drop.txt")]
        {
            if !s.has(key) {
                s.ctx.error(&s.child_path(key), format!("missing: {what}"));
            }
        }
        s.finish();
        return None;
    };
    if !path.starts_with('/') {
        s.ctx.error(&s.child_path("path"), "must start with '/'");
    }
    s.finish();
    let authority = authority.unwrap_or_else(|| cluster.clone());
    Some(Feed { name: name.to_string(), kind, cluster, path, authority, refresh_ms, timeout_ms, secret_header: None })
}

/// A feed's body checked whole: its prefixes, or why the update is refused.
pub fn parse(kind: Kind, body: &[u8]) -> Result<Vec<IpNet>, String> {
    if body.len() > MAX_BODY {
        return Err(format!("larger than {} bytes", MAX_BODY));
    }
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text".to_string())?;
    let nets = match text.trim_start().starts_with('{') {
        true => from_json(text)?,
        false => from_lines(text)?,
    };
    if nets.is_empty() {
        return Err("no prefixes (an empty update is refused; the last list stays)".into());
    }
    if nets.len() > MAX_PREFIXES {
        return Err(format!("more than {MAX_PREFIXES} prefixes"));
    }
    for net in &nets {
        check_width(kind, net)?;
    }
    check_coverage(kind, &nets)?;
    Ok(nets)
}

/// Refuses a list that holds too much in all, however it is cut up.
fn check_coverage(kind: Kind, nets: &[IpNet]) -> Result<(), String> {
    let set = IpSet::new(nets);
    let (reserved, max_v4, max_v6) = match kind {
        Kind::Ranges => (&[][..], MAX_RANGES_V4, MAX_RANGES_V6),
        _ => (RESERVED_V4, MAX_BLOCKED_V4, MAX_BLOCKED_V6),
    };
    let (v4, v6) = set.coverage(reserved);
    if v4 > max_v4 || v6 > max_v6 {
        let what = if kind == Kind::Ranges { "a crawler's ranges" } else { "a blocklist" };
        return Err(format!("holds more addresses than {what} can ({v4} IPv4, {v6} IPv6)"));
    }
    Ok(())
}

/// One prefix a line; `#` and `;` start comments; a bare address is its /32 or /128.
fn from_lines(text: &str) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match prefix(line) {
            Some(net) => nets.push(net),
            None => return Err(format!("line {}: {:?} is not a prefix", i + 1, clip(line))),
        }
        if nets.len() > MAX_PREFIXES {
            break;
        }
    }
    Ok(nets)
}

/// `{"prefixes": [{"ipv4Prefix": "…"} | {"ipv6Prefix": "…"}, …]}` (other top-level keys, like
/// `creationTime` and `syncToken`, are ignored).
///
/// Read as it streams, one entry at a time, so a hostile body costs no more memory than the
/// prefixes it may hold.
fn from_json(text: &str) -> Result<Vec<IpNet>, String> {
    let doc: Published = serde_json::from_str(text).map_err(|e| format!("not a published ranges file: {e}"))?;
    Ok(doc.prefixes.0)
}

#[derive(serde::Deserialize)]
struct Published {
    prefixes: Prefixes,
}

struct Prefixes(Vec<IpNet>);

#[derive(serde::Deserialize)]
#[allow(non_snake_case)] // the published field names
struct Entry<'a> {
    #[serde(borrow)]
    ipv4Prefix: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    ipv6Prefix: Option<std::borrow::Cow<'a, str>>,
}

impl<'de> serde::Deserialize<'de> for Prefixes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Prefixes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of {\"ipv4Prefix\"} or {\"ipv6Prefix\"} objects")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Prefixes, A::Error> {
                use serde::de::Error;
                let mut nets = Vec::new();
                while let Some(e) = seq.next_element::<Entry<'de>>()? {
                    if nets.len() == MAX_PREFIXES {
                        return Err(A::Error::custom(format!("more than {MAX_PREFIXES} prefixes")));
                    }
                    let text = e.ipv4Prefix.or(e.ipv6Prefix);
                    match text.as_deref().and_then(prefix) {
                        Some(net) => nets.push(net),
                        None => {
                            return Err(A::Error::custom(format!(
                                "prefixes[{}] has no valid ipv4Prefix or ipv6Prefix",
                                nets.len()
                            )))
                        }
                    }
                }
                Ok(Prefixes(nets))
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// An IPv4-mapped IPv6 prefix as the IPv4 prefix it is (clients are looked up as IPv4).
fn unmapped(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, n.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

fn prefix(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from)).map(|n| n.trunc())
}

fn check_width(kind: Kind, net: &IpNet) -> Result<(), String> {
    let (len, min) = match net {
        IpNet::V4(n) => (n.prefix_len(), if kind == Kind::Ranges { MIN_RANGE_V4 } else { 1 }),
        IpNet::V6(n) => (n.prefix_len(), if kind == Kind::Ranges { MIN_RANGE_V6 } else { 16 }),
    };
    match len >= min {
        true => Ok(()),
        false if kind == Kind::Ranges => Err(format!("{net} is wider than a crawler's range can be (/{min} at most)")),
        false => Err(format!("{net} is wider than a blocklist's prefix can be")),
    }
}

fn clip(s: &str) -> &str {
    let end = (0..=s.len().min(60)).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    s.get(..end).unwrap_or("")
}

/// A fetch's answer checked: what the workers share (and how many entries it holds), or why
/// the last good list stays. (Decisions expire counted from 0: see [`check_at`].)
pub fn check(kind: Kind, status: Option<u32>, body: &[u8]) -> Result<(Vec<u8>, u64), Problem> {
    check_at(kind, status, body, 0)
}

/// [`check`] at `now` (ms): a CrowdSec decision lasts its `duration` from the fetch, so a ban
/// the Local API lifts by expiry is lifted here too while the API cannot be reached.
pub fn check_at(kind: Kind, status: Option<u32>, body: &[u8], now: u64) -> Result<(Vec<u8>, u64), Problem> {
    match (kind, status) {
        (Kind::Robots, Some(code)) => robots_answer(code, body),
        // Gone: the agent publishes no keys any more, so none of its old ones is trusted.
        (Kind::Keys, Some(404 | 410)) => Ok((br#"{"keys":[]}"#.to_vec(), 0)),
        (Kind::Decisions, Some(200..=299)) => decisions(body, now),
        (Kind::Keys, Some(200..=299)) => match crate::formats::signature::KeySet::from_directory(body) {
            Ok(keys) => Ok((body.to_vec(), keys.len() as u64)),
            Err(e) => Err(Problem::Refused(format!("not a key directory: {}", e.as_str()))),
        },
        (_, Some(200..=299)) => {
            let nets = parse(kind, body).map_err(Problem::Refused)?;
            Ok((normalised(&nets), nets.len() as u64))
        }
        (_, Some(code)) => Err(Problem::Failed(format!("status {code}"))),
        (_, None) => Err(Problem::Failed("no response (reset, timeout or cluster unreachable)".into())),
    }
}

/// Why a fetch changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No usable answer (a status, a timeout): tried again sooner than the period.
    Failed(String),
    /// An answer that is not a list botgate will use.
    Refused(String),
}

/// robots.txt as RFC 9309 reads the origin's answer, except that an origin that cannot answer
/// (5xx, 429, no answer) keeps the last file rather than disallowing everything: botgate
/// bounds crawlers by the file, it does not invent a stricter one.
fn robots_answer(code: u32, body: &[u8]) -> Result<(Vec<u8>, u64), Problem> {
    use crate::formats::robots::MAX_BODY as ROBOTS_MAX;
    if (300..400).contains(&code) {
        // Not followed: a redirect would otherwise read as "no file" and lift every rule.
        return Err(Problem::Failed(format!("status {code} (redirects are not followed: set path or authority)")));
    }
    if code == 429 || !(200..500).contains(&code) {
        return Err(Problem::Failed(format!("status {code}")));
    }
    let body = if (200..300).contains(&code) { whole_lines(body, ROBOTS_MAX) } else { &[] };
    let mut shared = format!("{code}\n").into_bytes();
    shared.extend_from_slice(body);
    Ok((shared, body.iter().filter(|&&b| b == b'\n').count() as u64))
}

/// CrowdSec's stream answer with `startup=true`: `{"new": [decisions…] | null, "deleted": …}`,
/// where `new` is every active decision. Shared as `ban PREFIX` / `captcha PREFIX` lines; other
/// decision types and scopes are left out (they name no address).
fn decisions(body: &[u8], now: u64) -> Result<(Vec<u8>, u64), Problem> {
    if body.len() > MAX_BODY {
        return Err(Problem::Refused(format!("a decisions stream larger than {MAX_BODY} bytes")));
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| Problem::Refused("not a CrowdSec decisions stream".into()))?;
    let new = match v.get("new") {
        Some(serde_json::Value::Array(d)) => d.as_slice(),
        Some(serde_json::Value::Null) => &[],
        _ => return Err(Problem::Refused("a decisions stream without \"new\"".into())),
    };
    if new.len() > MAX_PREFIXES {
        return Err(Problem::Refused(format!("more than {MAX_PREFIXES} decisions")));
    }
    let mut out = String::new();
    let mut n = 0;
    let mut nets = Vec::new();
    for d in new {
        let text = |k: &str| d.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        let kind = match text("type") {
            "ban" => "ban",
            "captcha" => "captcha",
            _ => continue,
        };
        if !matches!(text("scope").to_ascii_lowercase().as_str(), "ip" | "range") {
            continue;
        }
        let Some(net) = prefix(text("value")).map(unmapped) else { continue };
        check_width(Kind::Blocklist, &net).map_err(Problem::Refused)?;
        // Until when (ms); a duration that does not parse keeps the decision until the next fetch.
        match go_duration_ms(text("duration")) {
            Some(ms) => out.push_str(&format!("{kind} {net} {}\n", now.saturating_add(ms))),
            None => out.push_str(&format!("{kind} {net}\n")),
        }
        nets.push(net);
        n += 1;
    }
    // Held to a blocklist's bounds: a range decision covering much of the internet is a mistake.
    check_coverage(Kind::Blocklist, &nets).map_err(Problem::Refused)?;
    Ok((out.into_bytes(), n))
}

/// At most `max` bytes of `body`, ending at a line end when more follow (half a rule could be
/// a shorter, broader one than the one written).
fn whole_lines(body: &[u8], max: usize) -> &[u8] {
    match body.get(..max) {
        Some(kept) if body.len() > max => {
            let end = kept.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            kept.get(..end).unwrap_or(&[])
        }
        _ => body,
    }
}

/// A feed's list, loaded.
#[derive(Debug, Clone)]
pub enum List {
    Prefixes(Arc<IpSet>),
    Robots(Arc<crate::formats::robots::Fetched>),
    Keys(Arc<crate::formats::signature::KeySet>),
    /// Addresses CrowdSec bans, and those it wants challenged.
    Decisions(Arc<(IpSet, IpSet)>),
}

/// A Go duration as CrowdSec writes it (`3h59m58.123s`, `59m`, `-2s`) in ms; a negative one is
/// 0 (expired).
pub fn go_duration_ms(s: &str) -> Option<u64> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest.get(..end)?.parse().ok()?;
        rest = rest.get(end..)?;
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit_ms = match rest.get(..unit_end)? {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        rest = rest.get(unit_end..)?;
        total += number * unit_ms;
    }
    Some(if negative { 0 } else { total.min(u64::MAX as f64 / 2.0) as u64 })
}

/// A shared list loaded (a list that was checked before it was shared).
pub fn load(kind: Kind, shared: &[u8]) -> Option<List> {
    load_at(kind, shared, 0).map(|(list, _)| list)
}

/// [`load`] at `now`: decisions past their time are left out; with the list, when its next
/// decision expires (the list is then loaded again).
pub fn load_at(kind: Kind, shared: &[u8], now: u64) -> Option<(List, Option<u64>)> {
    if kind == Kind::Decisions {
        let text = std::str::from_utf8(shared).ok()?;
        let (mut ban, mut captcha, mut next) = (Vec::new(), Vec::new(), None::<u64>);
        for line in text.lines() {
            let mut f = line.split(' ');
            let (kind, net) = (f.next()?, prefix(f.next()?)?);
            if let Some(until) = f.next().map(str::parse::<u64>) {
                let until = until.ok()?;
                if until <= now {
                    continue;
                }
                next = Some(next.map_or(until, |n| n.min(until)));
            }
            if kind == "ban" {
                ban.push(net)
            } else {
                captcha.push(net)
            }
        }
        return Some((List::Decisions(Arc::new((IpSet::new(&ban), IpSet::new(&captcha)))), next));
    }
    load_list(kind, shared).map(|l| (l, None))
}

fn load_list(kind: Kind, shared: &[u8]) -> Option<List> {
    match kind {
        Kind::Robots => {
            let at = shared.iter().position(|&b| b == b'\n')?;
            let code: u32 = std::str::from_utf8(shared.get(..at)?).ok()?.parse().ok()?;
            let fetched = crate::formats::robots::Fetched::from_reply(Some(code), shared.get(at + 1..)?);
            Some(List::Robots(Arc::new(fetched)))
        }
        Kind::Keys => crate::formats::signature::KeySet::from_directory(shared).ok().map(|k| List::Keys(Arc::new(k))),
        _ => parse(kind, shared).ok().map(|nets| List::Prefixes(Arc::new(IpSet::new(&nets)))),
    }
}

/// A checked list as the workers share it: one prefix a line.
pub fn normalised(nets: &[IpNet]) -> Vec<u8> {
    let mut out = String::with_capacity(nets.len() * 18);
    for n in nets {
        out.push_str(&n.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// What the workers know of a feed, in shared data: the generation of its list, when that list
/// was fetched, and how many prefixes it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    pub seq: u64,
    pub fetched_ms: u64,
    pub entries: u64,
}

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {} {}", self.seq, self.fetched_ms, self.entries).into_bytes()
    }

    pub fn decode(b: &[u8]) -> Option<Meta> {
        let text = std::str::from_utf8(b).ok()?;
        let mut it = text.split(' ').map(|p| p.parse::<u64>().ok());
        let meta = Meta { seq: it.next()??, fetched_ms: it.next()??, entries: it.next()?? };
        it.next().is_none().then_some(meta)
    }
}

/// When the next fetch is due, as the lease in shared data says (a worker takes the lease by
/// moving it forward with compare-and-swap, so one worker fetches). Unreadable means due now.
pub fn lease_due(b: Option<&[u8]>) -> u64 {
    b.and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(kind: Kind, body: &str) -> Result<Vec<String>, String> {
        parse(kind, body.as_bytes()).map(|v| v.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn a_plain_list_with_comments_in_both_styles_parses() {
        let body = "# FireHOL-like header\n\n1.10.16.0/20 ; SBL256894\n2001:db8:bad::/48\r\n203.0.113.7\n  # indented comment\n";
        assert_eq!(nets(Kind::Blocklist, body).unwrap(), ["1.10.16.0/20", "2001:db8:bad::/48", "203.0.113.7/32"]);
    }

    #[test]
    fn googles_published_json_parses() {
        let body = r#"{"creationTime": "2026-11-27T10:00:00.000000", "prefixes": [
            {"ipv6Prefix": "2001:4860:4801:10::/64"}, {"ipv4Prefix": "66.249.64.0/27"}]}"#;
        assert_eq!(nets(Kind::Ranges, body).unwrap(), ["2001:4860:4801:10::/64", "66.249.64.0/27"]);
    }

    #[test]
    fn one_bad_line_refuses_the_whole_update() {
        let err = nets(Kind::Blocklist, "10.0.0.0/8\n<html>oops</html>\n192.0.2.0/24\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = nets(Kind::Ranges, r#"{"prefixes": [{"ipv4Prefix": "66.249.64.0/27"}, {"ipv4Prefix": "nope"}]}"#)
            .unwrap_err();
        assert!(err.contains("prefixes[1]"), "{err}");
    }

    #[test]
    fn an_empty_or_comment_only_update_is_refused() {
        assert!(nets(Kind::Blocklist, "").is_err());
        assert!(nets(Kind::Blocklist, "# nothing today\n").is_err());
        assert!(nets(Kind::Ranges, r#"{"prefixes": []}"#).is_err());
    }

    #[test]
    fn a_crawler_range_wider_than_a_slash_16_is_refused() {
        assert!(nets(Kind::Ranges, "66.0.0.0/8\n").is_err());
        assert!(nets(Kind::Ranges, "2001::/16\n").is_err());
        assert!(nets(Kind::Ranges, "66.249.0.0/16\n2001:4860::/32\n").is_ok());
        assert!(nets(Kind::Blocklist, "66.0.0.0/8\n").is_ok(), "blocklists may be wide");
    }

    #[test]
    fn a_prefix_covering_everything_is_refused_even_in_a_blocklist() {
        assert!(nets(Kind::Blocklist, "0.0.0.0/0\n").is_err());
        assert!(nets(Kind::Blocklist, "::/0\n").is_err());
    }

    #[test]
    fn html_error_pages_and_binary_are_not_lists() {
        assert!(nets(Kind::Blocklist, "<!doctype html><title>502</title>").is_err());
        assert!(parse(Kind::Blocklist, &[0xff, 0xfe, 0x00]).is_err());
        assert!(nets(Kind::Ranges, r#"{"error": "rate limited"}"#).is_err());
    }

    #[test]
    fn a_normalised_list_loads_as_the_same_set() {
        let list = parse(Kind::Blocklist, b"192.0.2.0/24\n2001:db8::1\n").unwrap();
        let Some(List::Prefixes(set)) = load(Kind::Blocklist, &normalised(&list)) else { panic!() };
        assert!(set.contains("192.0.2.9".parse().unwrap()));
        assert!(set.contains("2001:db8::1".parse().unwrap()));
        assert!(!set.contains("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn meta_round_trips_and_rejects_garbage() {
        let m = Meta { seq: 3, fetched_ms: 1_700_000_000_000, entries: 42 };
        assert_eq!(Meta::decode(&m.encode()), Some(m));
        for bad in ["", "1 2", "1 2 3 4", "a b c", "1 2 -3"] {
            assert_eq!(Meta::decode(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(lease_due(Some(b"123")), 123);
        assert_eq!(lease_due(Some(b"x")), 0);
        assert_eq!(lease_due(None), 0);
    }

    #[test]
    fn the_same_file_for_the_same_use_is_one_feed() {
        let f = |name: &str, kind| Feed {
            name: name.into(),
            kind,
            cluster: "feeds".into(),
            path: "/drop.txt".into(),
            authority: "feeds".into(),
            refresh_ms: 1000,
            timeout_ms: 1000,
            secret_header: None,
        };
        assert_eq!(f("a", Kind::Blocklist).id(), f("b", Kind::Blocklist).id());
        assert_ne!(f("a", Kind::Blocklist).id(), f("a", Kind::Ranges).id());
    }
}
