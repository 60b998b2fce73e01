//! The allow tier's settings: internal monitoring, signed CI/CD calls, API consumers (the
//! crawler condition's settings are in [`super::crawlers`]).

use super::reader::Obj;
pub use super::values::Stewardship;
use super::values::{cidrs, decode_hex32, env_secret, header_pair, named_secrets, read_stewardship};
use super::{RateLimit, MAX_WINDOW_SECONDS};
use crate::base::iptable::IpSet;

/// One allow condition as read.
pub(super) enum Allowed {
    Monitoring(Monitoring),
    Ci(CiCd),
    Api(ApiConsumers),
    /// `verified_search_crawler`: crawler handling on (see [`super::crawlers`]).
    Crawler(super::crawlers::CrawlerCondition),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitoring {
    pub cidrs: IpSet,
    pub ua_prefixes: Vec<String>,
    pub stewardship: Stewardship,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HmacKey {
    pub id: String,
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CiCd {
    pub cidrs: IpSet,
    /// `has_internal_request_header: "X-Internal-Pipeline: true"`, as (lower-case name, value).
    pub header: Option<(String, String)>,
    pub hmac_required: bool,
    pub keys: Vec<HmacKey>,
    pub signature_header: String,
    pub timestamp_header: String,
    pub max_skew_s: u64,
    pub stewardship: Stewardship,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub sha256: [u8; 32],
    /// Its own `owner`, `justification` and `expires` (its condition's apply as well).
    pub stewardship: Stewardship,
    pub revoked: bool,
    pub contract: Option<RateLimit>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiConsumers {
    pub header: String,
    pub keys: Vec<ApiKey>,
    pub check_revoked: bool,
    pub check_contract: bool,
    pub residential: Option<IpSet>,
    pub stewardship: Stewardship,
}

const ALLOW_NAMES: &[&str] =
    &["verified_search_crawler", "allowlisted_api_consumer", "internal_monitoring", "owned_ci_cd"];

/// One allow condition; its stewardship is also added to `entries` (even when it never matches).
pub(super) fn read_allow(o: Obj<'_>, entries: &mut Vec<Stewardship>) -> Option<Allowed> {
    let ctx = o.ctx;
    let name_path = o.child_path("name");
    let name = o.string("name");
    let criteria = o.obj("criteria");
    o.informational("description");
    let stewardship = read_stewardship(&o);
    entries.push(stewardship.clone());
    o.finish();
    let Some(name) = name else {
        ctx.error(&name_path, format!("missing; one of {}", ALLOW_NAMES.join(", ")));
        return None;
    };
    let Some(c) = criteria else {
        ctx.error(&name_path.replace(".name", ".criteria"), "missing");
        return None;
    };
    let allowed = match name {
        "verified_search_crawler" => Some(Allowed::Crawler(super::crawlers::CrawlerCondition {
            rdns: c.bool("rdns_matches_ua", true),
            robots: c.bool("rate_within_robots_txt", true),
            names: c.strings("ip_in_verified_range").iter().map(|n| n.to_ascii_lowercase()).collect(),
            stewardship,
        })),
        "allowlisted_api_consumer" => read_api(&c, stewardship).map(Allowed::Api),
        "internal_monitoring" => {
            let cidrs = cidrs(&c, "source_ip_in_cidr");
            let ua_prefixes = c.strings("user_agent_prefix_in");
            if cidrs.is_empty() || ua_prefixes.is_empty() {
                ctx.warn(&c.path, "needs source_ip_in_cidr and user_agent_prefix_in: this condition never matches");
                None
            } else {
                Some(Allowed::Monitoring(Monitoring { cidrs: IpSet::new(&cidrs), ua_prefixes, stewardship }))
            }
        }
        "owned_ci_cd" => read_ci(&c, stewardship).map(Allowed::Ci),
        other => {
            let hint = super::reader::suggest(other, ALLOW_NAMES)
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            ctx.error(
                &name_path,
                format!("\"{other}\" is not an allow condition; one of {}{hint}", ALLOW_NAMES.join(", ")),
            );
            None
        }
    };
    c.finish();
    allowed
}

fn read_ci(c: &Obj<'_>, stewardship: Stewardship) -> Option<CiCd> {
    let cidrs = cidrs(c, "source_ip_in_cidr");
    let header = c
        .string("has_internal_request_header")
        .and_then(|h| header_pair(c.ctx, &c.child_path("has_internal_request_header"), h));
    let hmac_required = c.bool("header_hmac_valid", true);
    let keys = hmac_keys(c);
    let ci = CiCd {
        header,
        hmac_required,
        signature_header: c.string("signature_header").unwrap_or("x-ci-signature").to_ascii_lowercase(),
        timestamp_header: c.string("timestamp_header").unwrap_or("x-ci-timestamp").to_ascii_lowercase(),
        max_skew_s: c.u64_in("max_skew_seconds", 300, 1, 3600),
        cidrs: IpSet::new(&cidrs),
        keys,
        stewardship,
    };
    if cidrs.is_empty() || (ci.hmac_required && ci.keys.is_empty()) {
        c.ctx.warn(
            &c.path,
            "needs source_ip_in_cidr and, with header_hmac_valid, hmac_keys: this condition never matches",
        );
        return None;
    }
    Some(ci)
}

fn hmac_keys(c: &Obj<'_>) -> Vec<HmacKey> {
    named_secrets(c, "hmac_keys", 16, "an HMAC secret needs at least 16 bytes")
        .into_iter()
        .map(|(id, secret)| HmacKey { id, secret })
        .collect()
}

fn read_api(c: &Obj<'_>, stewardship: Stewardship) -> Option<ApiConsumers> {
    c.bool("has_valid_api_key", true);
    let check_revoked = c.bool("api_key_not_revoked", true);
    let check_residential = c.bool("asn_not_residential_proxy", true);
    let check_contract = c.bool("rate_within_contract", true);
    let header = c.string("api_key_header").unwrap_or("x-api-key").to_ascii_lowercase();
    let residential = cidrs(c, "residential_proxy_cidrs");
    let mut keys = Vec::new();
    for (path, v) in c.array("keys") {
        if let Some(k) = Obj::new(c.ctx, path, v).and_then(read_api_key) {
            keys.push(k);
        }
    }
    if check_residential && residential.is_empty() {
        c.ctx
            .warn(&c.child_path("residential_proxy_cidrs"), "empty: asn_not_residential_proxy cannot exclude anything");
    }
    if keys.is_empty() {
        c.ctx.warn(&c.path, "no usable keys: this condition never matches");
        return None;
    }
    Some(ApiConsumers {
        header,
        keys,
        check_revoked,
        check_contract,
        residential: check_residential.then(|| IpSet::new(&residential)),
        stewardship,
    })
}

fn read_api_key(k: Obj<'_>) -> Option<ApiKey> {
    let id = k.string("id").unwrap_or("").to_string();
    let hex = match k.string("sha256") {
        Some(h) => Some(h.to_string()),
        None => env_secret(&k, "sha256_env").and_then(|b| String::from_utf8(b).ok()),
    };
    // A mistyped expiry is an error, never "does not expire".
    let stewardship = read_stewardship(&k);
    let revoked = k.bool("revoked", false);
    let contract = k.obj("contract").map(|o| {
        let max_requests = o.u64_in("max_requests", 100, 1, 10_000_000) as u32;
        let window = o.u64_in("window_seconds", 60, 1, MAX_WINDOW_SECONDS);
        o.finish();
        RateLimit { max_requests, window_ms: window * 1000, static_assets: true, throttle: false, fleet: false }
    });
    let path = k.child_path("sha256");
    let ctx = k.ctx;
    k.finish();
    let hex = hex?;
    match decode_hex32(&hex) {
        Some(sha256) => Some(ApiKey { id, sha256, stewardship, revoked, contract }),
        None => {
            ctx.error(&path, "must be the key's SHA-256 as 64 hex digits (keys are never stored in clear)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mistyped_api_key_expiry_is_an_error_not_never_expires() {
        for expires in ["1.5e9", "-1", "true", "\"2027-02-30x\"", "\"99999-01-01\"", "[]"] {
            let policy = format!(
                r#"{{"tiers":{{"allow":{{"conditions":[{{"name":"allowlisted_api_consumer","criteria":{{"keys":[
                {{"id":"k","sha256":"{}","expires":{expires}}}]}}}}]}}}}}}"#,
                "ab".repeat(32)
            );
            let parsed = crate::policy::parse(policy.as_bytes());
            assert!(parsed.policy.is_none(), "{expires}: {:?}", parsed.diags);
            assert!(parsed.errors().any(|d| d.path.ends_with("expires")), "{expires}: {:?}", parsed.diags);
        }
    }
}
