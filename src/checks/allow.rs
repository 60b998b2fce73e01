//! The allow tier: legitimate automation proves who it is and skips scoring.
//!
//! Every condition needs a check an attacker cannot fake from the request alone: a source CIDR
//! *and* a user-agent prefix for monitoring, a CIDR and a fresh HMAC signature for CI/CD, a known,
//! live API key for partners. A user agent alone never allows anything.

use crate::base::lru::Lru;
use crate::base::mac;
use crate::base::window::RollingWindow;
use crate::policy::allow::{ApiConsumers, CiCd, Monitoring};
use crate::policy::Tiers;
use crate::request::head::trim;
use crate::request::head::Head;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// What the allow tier concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// Allowlisted by this condition (and API key id, if any).
    Yes { condition: &'static str, key: Option<String> },
    /// A partner over its contract rate: rate limited, not scored.
    OverContract { key: String, retry_after_ms: u64 },
    /// Not allowlisted; `reasons` says what was presented and failed (for scoring and evidence).
    No { reasons: Vec<&'static str> },
}

pub struct Allowlist {
    /// Signatures already used, until they would be too old anyway (per worker).
    seen_signatures: Lru<[u8; 32], u64>,
    contracts: Lru<String, RollingWindow>,
}

impl Allowlist {
    pub fn new(max: usize) -> Self {
        Allowlist { seen_signatures: Lru::new(max), contracts: Lru::new(max.min(100_000)) }
    }

    pub fn check(&mut self, tiers: &Tiers, head: &Head, ip: Option<IpAddr>, now_ms: u64) -> Allow {
        let mut reasons = Vec::new();
        // A condition past its `expires` allows nothing (an API consumer's keys say so below).
        let live = |s: &crate::policy::allow::Stewardship| !s.expired(now_ms / 1000);
        if let Some(ip) = ip {
            if tiers.monitoring.iter().filter(|m| live(&m.stewardship)).any(|m| monitoring(m, head, ip)) {
                return Allow::Yes { condition: "internal_monitoring", key: None };
            }
            for ci in tiers.ci.iter().filter(|c| live(&c.stewardship)) {
                match self.ci(ci, head, ip, now_ms) {
                    Ok(true) => return Allow::Yes { condition: "owned_ci_cd", key: None },
                    Ok(false) => {}
                    Err(reason) => reasons.push(reason),
                }
            }
        }
        for api in &tiers.api {
            match self.api(api, head, ip, now_ms) {
                ApiCheck::Absent => {}
                ApiCheck::Refused(r) => reasons.push(r),
                ApiCheck::Allowed(key) => return Allow::Yes { condition: "allowlisted_api_consumer", key: Some(key) },
                ApiCheck::OverContract(key, retry_after_ms) => return Allow::OverContract { key, retry_after_ms },
            }
        }
        Allow::No { reasons }
    }

    /// `Ok(true)` when allowlisted; `Ok(false)` when the request is not a CI call at all;
    /// `Err` when it claims to be one and fails.
    fn ci(&mut self, ci: &CiCd, head: &Head, ip: IpAddr, now_ms: u64) -> Result<bool, &'static str> {
        if !ci.cidrs.contains(ip) {
            return Ok(false);
        }
        if let Some((name, value)) = &ci.header {
            let present = head.first(name).is_some_and(|v| trim(v).eq_ignore_ascii_case(value.as_bytes()));
            if !present {
                return Ok(false);
            }
        }
        if !ci.hmac_required {
            return Ok(true);
        }
        let (Some(sig), Some(ts)) = (head.first(&ci.signature_header), head.first(&ci.timestamp_header)) else {
            return Err("ci_signature_missing");
        };
        let ts: u64 = std::str::from_utf8(ts).ok().and_then(|t| t.trim().parse().ok()).ok_or("ci_timestamp_invalid")?;
        let now_s = now_ms / 1000;
        if ts.abs_diff(now_s) > ci.max_skew_s {
            return Err("ci_signature_expired");
        }
        let presented = decode_signature(sig).ok_or("ci_signature_invalid")?;
        let message = ci_message(head.method(), head.first(":path").unwrap_or(b"/"), ts);
        if !mac::verify_any(ci.keys.iter().map(|k| k.secret.as_slice()), &message, &presented) {
            return Err("ci_signature_invalid");
        }
        let id: [u8; 32] = Sha256::digest(&presented).into();
        if self.seen_signatures.peek(&id).is_some_and(|&until| until > now_s) {
            return Err("ci_signature_replayed");
        }
        *self.seen_signatures.get_or_insert_with(id, || 0) = ts + ci.max_skew_s + 1;
        Ok(true)
    }

    fn api(&mut self, api: &ApiConsumers, head: &Head, ip: Option<IpAddr>, now_ms: u64) -> ApiCheck {
        let Some(presented) = head.first(&api.header) else { return ApiCheck::Absent };
        let digest: [u8; 32] = Sha256::digest(trim(presented)).into();
        // Constant-time over every key: which key matched is not leaked by timing.
        let mut found = None;
        for k in &api.keys {
            if mac::constant_time_eq(&k.sha256, &digest) {
                found = Some(k);
            }
        }
        let Some(key) = found else { return ApiCheck::Refused("api_key_unknown") };
        if api.check_revoked && key.revoked {
            return ApiCheck::Refused("api_key_revoked");
        }
        // Expired on its own date or its condition's.
        if key.stewardship.expired(now_ms / 1000) || api.stewardship.expired(now_ms / 1000) {
            return ApiCheck::Refused("api_key_expired");
        }
        if let (Some(set), Some(ip)) = (&api.residential, ip) {
            if set.contains(ip) {
                return ApiCheck::Refused("api_key_from_residential_proxy");
            }
        }
        if let (true, Some(c)) = (api.check_contract, key.contract) {
            let w = self.contracts.get_or_insert_with(key.id.clone(), || RollingWindow::for_limit(c.max_requests));
            if let Err(r) = w.admit(now_ms, c.max_requests, c.window_ms) {
                return ApiCheck::OverContract(key.id.clone(), r.retry_after_ms);
            }
        }
        ApiCheck::Allowed(key.id.clone())
    }
}

enum ApiCheck {
    Absent,
    Refused(&'static str),
    Allowed(String),
    OverContract(String, u64),
}

fn monitoring(m: &Monitoring, head: &Head, ip: IpAddr) -> bool {
    if !m.cidrs.contains(ip) {
        return false;
    }
    let ua = head.first("user-agent").unwrap_or(b"");
    m.ua_prefixes
        .iter()
        .any(|p| ua.len() >= p.len() && ua.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p.as_bytes())))
}

/// What a CI runner signs: `METHOD\nPATH\nTIMESTAMP` (the path with its query).
pub fn ci_message(method: &[u8], path: &[u8], ts: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(method.len() + path.len() + 24);
    m.extend_from_slice(method);
    m.push(b'\n');
    m.extend_from_slice(path);
    m.push(b'\n');
    m.extend_from_slice(ts.to_string().as_bytes());
    m
}

/// Signs a CI request (used by tests, the simulator and `botgate ci sign`).
pub fn ci_sign(secret: &[u8], method: &str, path: &str, ts: u64) -> String {
    mac::hex(&mac::sign(secret, &ci_message(method.as_bytes(), path.as_bytes(), ts)))
}

/// `hex` or `keyid:hex` (the key id is informational: every configured key is tried).
fn decode_signature(raw: &[u8]) -> Option<Vec<u8>> {
    let raw = trim(raw);
    let hex_part = raw.iter().rposition(|b| *b == b':' || *b == b'=').map_or(raw, |i| raw.get(i + 1..).unwrap_or(b""));
    if hex_part.len() != 64 {
        return None;
    }
    hex_part.chunks(2).map(|pair| std::str::from_utf8(pair).ok().and_then(|s| u8::from_str_radix(s, 16).ok())).collect()
}
