//! Values the policy reads in several places: secrets (inline or from the environment), hex
//! digests, dates, header pairs, CIDR lists.

use super::reader::{Ctx, Obj};
use serde_json::Value;

/// A list of `{id, secret | secret_env}` under `field`: (id, secret) pairs, each secret at least
/// `min_len` bytes (a shorter one is an error saying `too_short`).
pub(super) fn named_secrets(
    o: &Obj<'_>,
    field: &'static str,
    min_len: usize,
    too_short: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut keys = Vec::new();
    for (path, v) in o.array(field) {
        let Some(k) = Obj::new(o.ctx, path, v) else { continue };
        let id = k.string("id").unwrap_or("").to_string();
        if let Some(secret) = secret(&k, "secret", "secret_env") {
            if secret.len() < min_len {
                k.ctx.error(&k.path, too_short);
            } else {
                keys.push((id, secret));
            }
        }
        k.finish();
    }
    keys
}

/// A secret given inline (development) or by environment variable (`vm_config.environment_variables`).
/// Never logged.
pub(super) fn secret(k: &Obj<'_>, inline: &'static str, env: &'static str) -> Option<Vec<u8>> {
    match k.string(inline) {
        Some(s) => Some(s.as_bytes().to_vec()),
        None => env_secret(k, env),
    }
}

pub(super) fn env_secret(k: &Obj<'_>, env: &'static str) -> Option<Vec<u8>> {
    let name = k.string(env)?;
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v.into_bytes()),
        _ => {
            k.ctx.warn(&k.child_path(env), format!("environment variable {name} is not set: this key is unusable"));
            None
        }
    }
}

pub fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.trim().as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Who answers for an allowlist entry (an allow condition or an API key), why it exists and
/// until when: its optional `owner`, `justification` and `expires`. Past `expires` the entry no
/// longer allows (checked against the engine's clock per request); `botgate lint --audit`
/// ([`super::audit`]) lists entries that lack any of the three.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stewardship {
    /// The entry's JSON path (`$.tiers.allow.conditions[0]`), for the audit.
    pub at: String,
    pub owner: Option<String>,
    pub justification: Option<String>,
    pub expires_unix: Option<u64>,
}

impl Stewardship {
    /// Whether the entry has expired at `now_s` (unix seconds).
    pub fn expired(&self, now_s: u64) -> bool {
        self.expires_unix.is_some_and(|e| now_s >= e)
    }
}

/// `owner`, `justification` and `expires` of the entry `o`.
pub(super) fn read_stewardship(o: &Obj<'_>) -> Stewardship {
    Stewardship {
        at: o.path.clone(),
        owner: non_empty(o, "owner"),
        justification: non_empty(o, "justification"),
        expires_unix: date_or_unix(o, "expires"),
    }
}

/// `key` as a string that says something (an empty or blank one is an error, not "nobody").
pub(super) fn non_empty(o: &Obj<'_>, key: &'static str) -> Option<String> {
    match o.string(key) {
        Some(s) if s.trim().is_empty() => {
            o.ctx.error(&o.child_path(key), "empty: name one, or leave the key out");
            None
        }
        s => s.map(str::to_string),
    }
}

/// `key` as a moment: a date ([`parse_date`]) or unix seconds. A mistyped one is an error, never
/// "no date" (an expiry that does not parse must not mean "does not expire").
pub(super) fn date_or_unix(o: &Obj<'_>, key: &'static str) -> Option<u64> {
    let bad = |what: String| {
        o.ctx.error(
            &o.child_path(key),
            format!("{what} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, years 1970-9999) or unix seconds"),
        );
        None
    };
    match o.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| bad(n.to_string())),
        Value::String(s) => parse_date(s).or_else(|| bad(format!("\"{}\"", s.escape_debug()))),
        other => bad(other.to_string()),
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` as unix seconds (UTC).
pub fn parse_date(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, t.trim_end_matches('Z')),
        None => (s, "00:00:00"),
    };
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (&[y, m, day], &[hh, mm, ss]) = (d.as_slice(), t.as_slice()) else { return None };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    let days = crate::base::calendar::days_from_civil(y, m, day);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

pub(super) fn header_pair(ctx: &Ctx, path: &str, s: &str) -> Option<(String, String)> {
    match s.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        }
        _ => {
            ctx.error(path, format!("\"{s}\" must be \"Header-Name: value\""));
            None
        }
    }
}

pub fn cidrs(o: &Obj<'_>, key: &'static str) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for (path, v) in o.array(key) {
        match v.as_str().map(parse_cidr) {
            Some(Some(net)) => out.push(net),
            Some(None) => o.ctx.error(&path, format!("{v} is not a CIDR (like 10.0.0.0/8 or 2001:db8::/32)")),
            None => o.ctx.error(&path, "expected a CIDR string"),
        }
    }
    out
}

fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
}

/// Warns about a policy path that does not start with `/` (it is matched as if it did).
pub(super) fn rooted(ctx: &Ctx, at: &str, p: &str) {
    if !p.starts_with('/') {
        let as_matched = crate::request::path::normalise_str(p, false);
        ctx.warn(
            at,
            format!("\"{}\" does not start with \"/\"; matched as \"{}\"", p.escape_debug(), as_matched.escape_debug()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-22T10:00:00Z"), Some(1_795_341_600));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("soon"), None);
        assert_eq!(parse_date("99999999999999-01-01"), None, "no overflow into a far past or future");
        assert_eq!(parse_date("1969-12-31"), None);
    }

    #[test]
    fn hex() {
        assert!(decode_hex32(&"ab".repeat(32)).is_some());
        assert!(decode_hex32("abc").is_none());
        assert!(decode_hex32(&"zz".repeat(32)).is_none());
    }
}
