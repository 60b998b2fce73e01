//! The policy: the plugin configuration, read from JSON into typed, validated settings.
//!
//! Reading is one pass over the JSON with [`reader`], which collects every problem with its
//! JSON path; a policy with any error is refused whole (Envoy never runs a half-parsed policy).
//! The vocabulary is the seeds' own (`global_rate_limit`, `bot_detector`, `tiers`, …), so a policy
//! written from them lints clean; botgate's additions (`limits`, …) have safe defaults.

pub mod allow;
pub mod answers;
pub mod audit;
pub mod crawlers;
mod detector;
pub mod feeds;
pub mod fleet;
pub mod ladder;
mod limits;
mod plane;
pub mod reader;
pub mod tiers;
pub mod tls;
mod values;
pub mod vendors;

pub use detector::{BotDetector, DetectorAction, Field};
pub use limits::{ClientIdentity, Limits, RateLimit};
pub use plane::{
    default_sequence_rules as plane_defaults, BeaconConfig, Blocklist, EndpointRule, PathMatch, PathSettings,
    SequenceCheck, SequenceRule, SessionConfig, Step, VisitorCookie, Weights, SIGNALS,
};
pub use reader::{Diag, Severity};
pub use tiers::{BlockCondition, ChallengeType, RiskTier, Tiers};

use detector::{read_bot_detector, read_seed_pack};
use limits::{read_limits, read_rate_limit};
use reader::{Ctx, Obj};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Block and challenge as decided.
    Enforce,
    /// Warn-first: every would-be action is recorded and the request passes upstream.
    Observe,
}

/// A validated policy, ready for the engine.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub global_rate_limit: Option<RateLimit>,
    pub ip_rate_limit: Option<RateLimit>,
    /// Who the client is: the peer, or a forwarded hop from a trusted proxy; IPv6 grain.
    pub client: ClientIdentity,
    pub bot_detector: Option<BotDetector>,
    pub limits: Limits,
    pub tiers: Tiers,
    pub session: SessionConfig,
    pub endpoints: Vec<EndpointRule>,
    /// How request paths compare with the policy's.
    pub paths: PathSettings,
    /// The silent challenge added to HTML pages.
    pub beacon: BeaconConfig,
    pub weights: Weights,
    pub blocklists: Vec<Blocklist>,
    /// External score sources (`vendors`), consulted through callouts.
    pub vendors: Option<vendors::Vendors>,
    /// Known crawlers and how their claims are proven (on with `verified_search_crawler`).
    pub crawlers: Option<crawlers::Crawlers>,
    /// JA4 fingerprints of automation clients (`tls_fingerprint`).
    pub tls: tls::Fingerprints,
    pub sequence_rules: Vec<SequenceRule>,
    /// Named variants of this policy (the base with overrides), for per-route rollout.
    pub profiles: Vec<(String, Policy)>,
    /// Route name → what applies there.
    pub routes: Vec<(String, RouteChoice)>,
    /// `threshold_review`: when the thresholds are next due for review (read by the audit only).
    pub review: Option<audit::ThresholdReview>,
    /// Graduated answers' delays and the worker's bound on delayed requests.
    pub answers: answers::Answers,
    /// Where the fleet shares its counts, when it does.
    pub fleet: Option<fleet::Fleet>,
}

/// What applies on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChoice {
    Profile(String),
    Disabled,
}

impl Policy {
    /// The feeds its lists name (each list's own; the same file may appear twice).
    pub fn feeds(&self) -> impl Iterator<Item = &feeds::Feed> {
        let lists = self.blocklists.iter().filter_map(|l| l.feed.as_ref());
        let crawlers = self.crawlers.iter().flat_map(|c| c.list.iter()).filter_map(|c| c.feed.as_ref());
        let robots = self.crawlers.iter().filter_map(|c| c.robots.as_ref().map(|r| &r.feed));
        let keys = self.crawlers.iter().flat_map(|c| c.list.iter()).filter_map(|c| c.signer.as_ref().map(|s| &s.feed));
        let streams = self.vendors.iter().flat_map(|v| v.sources.iter()).filter_map(|s| s.stream.as_ref());
        lists.chain(crawlers).chain(robots).chain(keys).chain(streams)
    }

    /// Puts the list fetched for feed `id` in every list fed by it.
    pub fn load_feed(&mut self, id: &str, list: &feeds::List) {
        let fed_by = |f: &Option<feeds::Feed>| f.as_ref().is_some_and(|f| f.id() == id);
        match list {
            feeds::List::Prefixes(set) => {
                for l in self.blocklists.iter_mut().filter(|l| fed_by(&l.feed)) {
                    l.fed = set.clone();
                }
                for c in self.crawlers.iter_mut().flat_map(|c| c.list.iter_mut()).filter(|c| fed_by(&c.feed)) {
                    c.fed = set.clone();
                }
            }
            feeds::List::Keys(keys) => {
                for c in self.crawlers.iter_mut().flat_map(|c| c.list.iter_mut()) {
                    if let Some(s) = c.signer.as_mut().filter(|s| s.feed.id() == id) {
                        s.keys = keys.clone();
                    }
                }
            }
            feeds::List::Decisions(sets) => {
                for s in self.vendors.iter_mut().flat_map(|v| v.sources.iter_mut()) {
                    if s.stream.as_ref().is_some_and(|f| f.id() == id) {
                        s.decisions = sets.clone();
                    }
                }
            }
            feeds::List::Robots(file) => {
                if let Some(r) = self.crawlers.as_mut().and_then(|c| c.robots.as_mut()).filter(|r| r.feed.id() == id) {
                    r.file = Some(file.clone());
                }
            }
        }
    }

    /// The risk tier of an endpoint, by its normalised path (medium when no rule matches).
    pub fn endpoint_tier(&self, method: &[u8], path: &[u8]) -> RiskTier {
        self.endpoints.iter().find(|r| r.matches(method, path)).map_or(RiskTier::Medium, |r| r.tier)
    }

    /// Whether the policy or one of its profiles has no clearance key (zero configuration).
    pub fn lacks_clearance_key(&self) -> bool {
        self.tiers.clearance.keys.is_empty() || self.profiles.iter().any(|(_, p)| p.lacks_clearance_key())
    }

    /// Gives the policy and its profiles `key` where they have no clearance key (zero
    /// configuration: challenges can then be passed). True when any took it.
    pub fn ensure_clearance_key(&mut self, key: &crate::base::mac::Key) -> bool {
        let mut took = false;
        for (_, p) in &mut self.profiles {
            took |= p.ensure_clearance_key(key);
        }
        if self.tiers.clearance.keys.is_empty() {
            self.tiers.clearance.keys.push(key.clone());
            took = true;
        }
        took
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Enforce,
            global_rate_limit: None,
            ip_rate_limit: None,
            client: ClientIdentity::default(),
            bot_detector: None,
            limits: Limits::default(),
            tiers: Tiers::default(),
            session: SessionConfig::default(),
            endpoints: Vec::new(),
            paths: PathSettings::default(),
            beacon: BeaconConfig::default(),
            weights: Weights::default(),
            blocklists: Vec::new(),
            vendors: None,
            crawlers: None,
            tls: Default::default(),
            sequence_rules: Vec::new(),
            profiles: Vec::new(),
            routes: Vec::new(),
            review: None,
            answers: answers::Answers::default(),
            fleet: None,
        }
    }
}

/// The outcome of reading a policy: the policy when there is no error, and every finding.
pub struct Parsed {
    pub policy: Option<Policy>,
    pub diags: Vec<Diag>,
}

impl Parsed {
    pub fn errors(&self) -> impl Iterator<Item = &Diag> {
        self.diags.iter().filter(|d| d.severity == Severity::Error)
    }
}

pub(crate) const MAX_WINDOW_SECONDS: u64 = 86_400;

/// Reads a policy from JSON text. An empty configuration is the default policy.
pub fn parse(text: &[u8]) -> Parsed {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Parsed { policy: Some(Policy::default()), diags: Vec::new() };
    }
    let value: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            let diag = Diag {
                severity: Severity::Error,
                path: "$".into(),
                message: format!("not valid JSON: {e} (line {}, column {})", e.line(), e.column()),
            };
            return Parsed { policy: None, diags: vec![diag] };
        }
    };
    let ctx = Ctx::default();
    let policy = read_policy(&ctx, &value, "$").map(|mut p| {
        read_profiles(&ctx, &value, &mut p);
        p
    });
    let failed = ctx.has_errors();
    Parsed { policy: if failed { None } else { policy }, diags: ctx.into_diags() }
}

/// The configuration's identity, as `botgate_policy_info{hash}` exports it and `botgate lint`
/// prints it: SHA-256 of the JSON with its keys sorted and no whitespace (so the YAML a mesh
/// re-serialises hashes alike), its first 16 hex digits; `None` when it is not JSON.
pub fn hash(text: &[u8]) -> Option<String> {
    use sha2::Digest;
    let value: Value = if text.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(text).ok()?
    };
    let mut value = value;
    scrub_secrets(&mut value);
    // serde_json's maps are sorted (no `preserve_order`): the serialisation is canonical.
    let digest = sha2::Sha256::digest(serde_json::to_vec(&value).ok()?);
    Some(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// Inline secrets (`secret`, `api_key`) blanked before hashing: the hash is a public metric
/// label, and must not let anyone who knows the rest of the policy check guesses of a key
/// offline. (Secrets from the environment are named, not included, anyway.)
fn scrub_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if matches!(k.as_str(), "secret" | "api_key") && item.is_string() {
                    *item = Value::String(String::new());
                } else {
                    scrub_secrets(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_secrets),
        _ => {}
    }
}

fn read_policy(ctx: &Ctx, value: &Value, path: &str) -> Option<Policy> {
    let root = Obj::new(ctx, path.into(), value)?;
    root.informational("profiles");
    root.informational("routes");
    let mode = match root.choice("mode", "enforce", &["enforce", "observe"]) {
        "observe" => Mode::Observe,
        _ => Mode::Enforce,
    };
    let global_rate_limit = root.obj("global_rate_limit").map(|o| read_rate_limit(o, false).0);
    let (ip_rate_limit, client) = match root.obj("ip_rate_limit") {
        Some(o) => {
            let (limit, client) = read_rate_limit(o, true);
            (Some(limit), client)
        }
        None => (None, ClientIdentity::default()),
    };
    let mut bot_detector = root.obj("bot_detector").map(read_bot_detector);
    read_seed_pack(&root, &mut bot_detector);
    let mut limits = root.obj("limits").map(read_limits).unwrap_or_default();
    if let Some(host) = root.obj("envoy") {
        limits::read_host(host, &mut limits);
    }
    let tiers = root.obj("tiers").map(tiers::read).unwrap_or_default();
    let session = root.obj("session").map(plane::read_session).unwrap_or_default();
    let endpoints = plane::read_endpoints(&root);
    let paths = root.obj("paths").map(plane::read_paths).unwrap_or_default();
    let beacon = root.obj("beacon").map(plane::read_beacon).unwrap_or_default();
    let weights = root.obj("scoring").map(plane::read_scoring).unwrap_or_default();
    let blocklists = root.obj("threat_intel").map(plane::read_threat_intel).unwrap_or_default();
    let vendors = vendors::read(ctx, &root);
    let tls = root.obj("tls_fingerprint").map(plane::read_tls).unwrap_or_default();
    let crawlers = match &tiers.crawler {
        Some(cond) => Some(crawlers::read(ctx, cond, root.obj("dns_over_https"), root.obj("crawlers"))),
        None => {
            for key in ["dns_over_https", "crawlers"] {
                if root.has(key) {
                    ctx.warn(&root.child_path(key), "read only with the verified_search_crawler allow condition");
                }
            }
            root.informational("dns_over_https");
            root.informational("crawlers");
            None
        }
    };
    let rules = plane::read_sequence_rules(&root);
    let has = |c: BlockCondition| {
        tiers.block.iter().any(|r| std::mem::discriminant(&r.condition) == std::mem::discriminant(&c))
    };
    if has(BlockCondition::ThreatIntel) && blocklists.is_empty() {
        ctx.warn(
            "$.threat_intel",
            "ip_in_threat_intel_blocklist is on but no blocklists are configured: it never matches",
        );
    }
    let visitor_asked = root.get("session").and_then(|s| s.get("visitor_cookie")).is_some();
    if visitor_asked && session.visitor.enabled && tiers.clearance.keys.is_empty() {
        ctx.warn(
            "$.session.visitor_cookie",
            "the visitor cookie is signed with the clearance keys and none are configured: anonymous \
             sessions stay one per address",
        );
    }
    warn_band_gaps(ctx, &tiers, &endpoints);
    let sequence_rules = match rules {
        Some(r) => r,
        None if has(BlockCondition::ImpossibleSequence) => plane::default_sequence_rules(),
        None => Vec::new(),
    };
    // Its dates are checked here; whether they are past is the audit's (the parser has no clock).
    let review = root.obj("threshold_review").map(audit::read_review);
    let answers = root.obj("answers").map(answers::read).unwrap_or_default();
    let fleet = root.obj("fleet").and_then(fleet::read);
    if ip_rate_limit.is_some_and(|l| l.fleet) && fleet.is_none() && !root.has("fleet") {
        ctx.error("$.ip_rate_limit.fleet", "needs the policy's `fleet` (the cluster of the fleet's webdis)");
    }
    root.informational("description");
    root.finish();
    let mut policy = Policy {
        mode,
        global_rate_limit,
        ip_rate_limit,
        client,
        bot_detector,
        limits,
        tiers,
        session,
        endpoints,
        weights,
        blocklists,
        vendors,
        crawlers,
        tls,
        sequence_rules,
        profiles: Vec::new(),
        routes: Vec::new(),
        paths,
        beacon,
        review,
        answers,
        fleet,
    };
    policy.normalise_paths();
    Some(policy)
}

impl Policy {
    /// The policy's own paths in normal form, as request paths are (see [`crate::request::path`]).
    fn normalise_paths(&mut self) {
        let fold = self.paths.case_insensitive;
        let norm = |p: &mut String| *p = crate::request::path::normalise_str(p, fold);
        for r in &mut self.endpoints {
            r.path = r.path.normalised(fold);
        }
        plane::sort_endpoints(&mut self.endpoints);
        self.tiers.challenge.iter_mut().flat_map(|c| c.endpoints.iter_mut()).for_each(norm);
        for r in &mut self.sequence_rules {
            r.when.path = r.when.path.normalised(fold);
            if let SequenceCheck::RequiresPrior(prior) = &mut r.check {
                prior.path = prior.path.normalised(fold);
            }
        }
        if let Some(d) = &mut self.bot_detector {
            d.applies_to.iter_mut().for_each(norm);
        }
    }
}

/// Reports, per endpoint tier and per path named in `endpoint_in`, the score ranges that no
/// challenge band covers and what the severity ladder does there ([`ladder`]).
fn warn_band_gaps(ctx: &Ctx, tiers: &Tiers, endpoints: &[EndpointRule]) {
    let block_above = tiers.block_above().map(|b| b.0);
    let gaps_where = |covers: &dyn Fn(&tiers::ChallengeCondition) -> bool| {
        let bands: Vec<(f64, f64)> = tiers.challenge.iter().filter(|c| covers(c)).map(|c| c.score_range).collect();
        ladder::gaps(&bands, block_above)
    };
    let report = |what: &str, gaps: &[ladder::Gap]| {
        for g in gaps {
            let end = if g.blocked || g.to >= 1.0 { "]" } else { ")" };
            let action = if g.blocked {
                "blocked (the stronger neighbour: bot_score_above)"
            } else {
                "challenged (the stronger neighbour)"
            };
            ctx.warn(
                "$.tiers.challenge.conditions",
                format!("on {what}, scores ({:.2}, {:.2}{end} meet no challenge band: they are {action}", g.from, g.to),
            );
        }
    };
    let all = [
        ("critical", RiskTier::Critical),
        ("high", RiskTier::High),
        ("medium", RiskTier::Medium),
        ("low", RiskTier::Low),
    ];
    let by_tier: Vec<Vec<ladder::Gap>> = all.iter().map(|(_, t)| gaps_where(&|c| c.covers(b"", *t))).collect();
    for ((name, _), gaps) in all.iter().zip(&by_tier) {
        report(&format!("{name} endpoints"), gaps);
    }
    // A path named in `endpoint_in` is reported only where its ladder differs from its tier's.
    let mut listed: Vec<&str> = tiers.challenge.iter().flat_map(|c| c.endpoints.iter().map(String::as_str)).collect();
    listed.sort_unstable();
    listed.dedup();
    for path in listed {
        let tier = endpoints.iter().find(|r| r.path.matches(path.as_bytes())).map_or(RiskTier::Medium, |r| r.tier);
        let gaps = gaps_where(&|c| c.covers(path.as_bytes(), tier));
        if by_tier.get(tier.number() as usize) != Some(&gaps) {
            report(path, &gaps);
        }
    }
}

/// `profiles`: each is the base policy with its keys replaced (objects merged key by key);
/// `routes`: route name → profile name or "disabled". Route metadata
/// (`filter_metadata.botgate.profile` / `.disabled`) selects the same way.
fn read_profiles(ctx: &Ctx, value: &Value, policy: &mut Policy) {
    let Some(root) = value.as_object() else { return };
    if let Some(profiles) = root.get("profiles") {
        let Some(map) = profiles.as_object() else {
            ctx.error("$.profiles", "expected an object of name → policy overrides");
            return;
        };
        for (name, overrides) in map {
            let path = format!("$.profiles.{name}");
            if !overrides.is_object() {
                ctx.error(&path, "expected an object of policy overrides");
                continue;
            }
            let mut merged = value.clone();
            if let Some(m) = merged.as_object_mut() {
                m.remove("profiles");
                m.remove("routes");
            }
            merge(&mut merged, overrides);
            if let Some(p) = read_policy(ctx, &merged, &path) {
                policy.profiles.push((name.clone(), p));
            }
        }
    }
    if let Some(routes) = root.get("routes") {
        let Some(map) = routes.as_object() else {
            ctx.error("$.routes", "expected an object of route name → profile name or \"disabled\"");
            return;
        };
        for (route, choice) in map {
            let path = format!("$.routes.{route}");
            match choice.as_str() {
                Some("disabled") => policy.routes.push((route.clone(), RouteChoice::Disabled)),
                Some(name) if policy.profiles.iter().any(|(n, _)| n == name) => {
                    policy.routes.push((route.clone(), RouteChoice::Profile(name.to_string())))
                }
                _ => ctx.error(&path, format!("{choice} is neither \"disabled\" nor a profile name")),
            }
        }
    }
}

fn merge(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(text.as_bytes()).errors().map(|d| d.to_string()).collect()
    }

    #[test]
    fn seed_003_settings_parse() {
        let p = parse(
            br#"{"global_rate_limit":{"max_requests":500,"window_seconds":60},
                "ip_rate_limit":{"max_requests":40,"window_seconds":60,"trust_proxy_depth":1},
                "pack":{"name":"bot-abuse-guard","version":"1.0.0","enabled":true},
                "policies":{"chain":["bot-detector","prompt-injection","audit-logger"]},
                "policy":{"bot-detector":{"fingerprint_fields":["user-agent","x-forwarded-for","authorization","body","model"],
                  "profile_window_seconds":60,"similarity_threshold":0.9,"max_requests_per_window":5,"action":"warn"},
                  "prompt-injection":{"use_embedding":true},"audit-logger":{}}}"#,
        );
        let policy = p.policy.expect("valid");
        let d = policy.bot_detector.unwrap();
        assert_eq!(d.fields.len(), 5);
        assert_eq!(d.fields[4], Field::Json(vec!["model".into()]));
        assert!(d.needs_body());
        assert_eq!(policy.client.trust_proxy_depth, 1);
        assert_eq!(policy.ip_rate_limit.unwrap().max_requests, 40);
        assert!(p.diags.iter().any(|d| d.path == "$.policy.prompt-injection" && d.severity == Severity::Warning));
    }

    #[test]
    fn every_signal_is_documented_in_the_readme() {
        let readme = include_str!("../../README.md");
        for (name, _) in SIGNALS {
            assert!(readme.contains(&format!("`{name}`")), "{name} is not in README.md");
        }
    }

    #[test]
    fn every_error_has_a_path() {
        let errs = errors(
            r#"{"mode":"enforcing","ip_rate_limit":{"max_requests":0},
                "bot_detector":{"similarity_threshold":2,"actoin":"block","fingerprint_fields":["bad header"]}}"#,
        );
        let joined = errs.join("\n");
        assert!(
            joined.contains("$.mode: \"enforcing\" is not one of \"enforce\", \"observe\" (did you mean \"enforce\"?)"),
            "{joined}"
        );
        assert!(joined.contains("$.ip_rate_limit.max_requests: 0 is out of range"), "{joined}");
        assert!(joined.contains("$.bot_detector.similarity_threshold: 2 is out of range"), "{joined}");
        assert!(joined.contains("$.bot_detector.actoin: unknown key \"actoin\"; did you mean \"action\"?"), "{joined}");
        assert!(joined.contains("$.bot_detector.fingerprint_fields[0]"), "{joined}");
        assert_eq!(errs.len(), 5, "{joined}");
    }

    #[test]
    fn bad_json_and_wrong_types_are_refused() {
        assert!(errors("{").iter().any(|e| e.contains("not valid JSON")));
        assert!(errors("[]").iter().any(|e| e.contains("$: expected an object")));
        assert!(
            errors(r#"{"limits":{"max_clients":"many"}}"#)[0].contains("$.limits.max_clients: expected a whole number")
        );
        assert!(parse(b"").policy.is_some());
    }

    #[test]
    fn tls_fingerprints_are_read_and_checked() {
        let p = parse(
            br#"{"tls_fingerprint":{"header":"X-TLS-JA4","automation_clients":[
                {"ja4":"t13d1812h1_85036bcba153_b26ce05bbdd6","client":"Python requests"}]}}"#,
        );
        let tls = p.policy.expect("valid").tls;
        assert_eq!(tls.header, "x-tls-ja4");
        assert_eq!(&tls.automation[0].bc, b"85036bcba153_b26ce05bbdd6");
        assert_eq!(tls.automation[0].label, "Python requests");
        let errs = errors(
            r#"{"tls_fingerprint":{"header":"x-botgate-ja4","automation_clients":[
                {"ja4":"t13d1812h1_85036BCBA153_b26ce05bbdd6","client":"x"},{"ja4":"t13d1812h1_85036bcba153_b26ce05bbdd6"},
                {"client":"y","ja3":"771,4865"}]}}"#,
        )
        .join("\n");
        assert!(errs.contains("$.tls_fingerprint.header: x-botgate-* headers from outside are removed"), "{errs}");
        assert!(errs.contains("$.tls_fingerprint.automation_clients[0].ja4: \"t13d1812h1_85036BCBA153"), "{errs}");
        assert!(errs.contains("$.tls_fingerprint.automation_clients[1].client: missing"), "{errs}");
        assert!(errs.contains("$.tls_fingerprint.automation_clients[2].ja4: missing"), "{errs}");
        assert!(errs.contains("$.tls_fingerprint.automation_clients[2].ja3: unknown key"), "{errs}");
        let empty = parse(br#"{"tls_fingerprint":{}}"#);
        assert!(empty.policy.is_some());
        assert!(empty.diags.iter().any(|d| d.message.contains("never fires")));
    }

    #[test]
    fn navigation_signal_weights_are_read_and_checked() {
        let p = parse(br#"{"scoring":{"weights":{"cold_navigations":0.2,"unrendered_navigations":0}}}"#);
        let w = p.policy.expect("valid").weights;
        assert_eq!((w.of("cold_navigations"), w.of("unrendered_navigations")), (0.2, 0.0));
        assert_eq!(Weights::default().of("unrendered_navigations"), 0.75);
        let errs = errors(r#"{"scoring":{"weights":{"cold_navigations":1.5,"unrendered_navigation":0.5}}}"#).join("\n");
        assert!(errs.contains("$.scoring.weights.cold_navigations: 1.5 is out of range"), "{errs}");
        assert!(errs.contains("did you mean \"unrendered_navigations\"?"), "{errs}");
    }

    #[test]
    fn the_visitor_cookie_is_on_by_default_and_checked() {
        let d = parse(b"{}").policy.expect("valid").session.visitor;
        assert_eq!((d.enabled, d.name.as_str(), d.max_age_s), (true, "botgate_visitor", 3600));
        let p = parse(br#"{"session":{"visitor_cookie":{"enabled":false,"name":"bv","max_age_seconds":600}}}"#);
        let v = p.policy.expect("valid").session.visitor;
        assert_eq!((v.enabled, v.name.as_str(), v.max_age_s), (false, "bv", 600));
        let errs = errors(r#"{"session":{"cookie":"sid","visitor_cookie":{"name":"sid"}}}"#).join("\n");
        assert!(errs.contains("$.session.visitor_cookie.name: must differ"), "{errs}");
        let errs = errors(r#"{"session":{"visitor_cookie":{"name":"a b","max_age_seconds":5,"ttl":1}}}"#).join("\n");
        assert!(errs.contains("$.session.visitor_cookie.name: \"a b\" is not a cookie name"), "{errs}");
        assert!(errs.contains("$.session.visitor_cookie.max_age_seconds"), "{errs}");
        assert!(errs.contains("$.session.visitor_cookie.ttl: unknown key"), "{errs}");
        let keyless = parse(br#"{"session":{"visitor_cookie":{}}}"#);
        assert!(keyless.diags.iter().any(|d| d.message.contains("one per address")), "{:?}", keyless.diags);
    }

    #[test]
    fn policy_paths_are_normalised_and_the_case_switch_is_checked() {
        let p = parse(
            br#"{"paths":{"case_insensitive":true},
                "endpoints":[{"prefix":"/Static/","tier":3},{"path":"/Login/./","tier":0},{"path":"/a","tier":1},
                             {"path":"/a/b","tier":0},{"prefix":"/a/b","tier":3}],
                "bot_detector":{"applies_to":["/V1/"]},
                "sequence_rules":[{"name":"r","when":{"path":"//Checkout"},"requires_prior":{"prefix":"/Cart"}}],
                "tiers":{"challenge":{"conditions":[{"endpoint_in":["/%4Cogin;x"]}]}}}"#,
        );
        let policy = p.policy.expect("valid");
        assert!(policy.paths.case_insensitive);
        let tier = |path: &[u8]| policy.endpoint_tier(b"GET", path).number();
        assert_eq!((tier(b"/login"), tier(b"/login/x"), tier(b"/logins")), (0, 0, 2));
        assert_eq!((tier(b"/a/b/c"), tier(b"/a/x"), tier(b"/a/bc"), tier(b"/static/x.css")), (0, 1, 3, 3));
        assert_eq!(policy.bot_detector.expect("set").applies_to, ["/v1/"]);
        assert_eq!(policy.sequence_rules[0].when.path, PathMatch::Path("/checkout".into()));
        assert!(
            matches!(&policy.sequence_rules[0].check, SequenceCheck::RequiresPrior(s) if s.path == PathMatch::Prefix("/cart".into()))
        );
        assert_eq!(policy.tiers.challenge[0].endpoints, ["/login"]);
        assert!(!parse(br#"{"endpoints":[{"path":"/Login","tier":0}]}"#).policy.expect("valid").paths.case_insensitive);

        let errs = errors(r#"{"paths":{"case_insensitive":"yes","merge_slashes":true}}"#).join(
            "
",
        );
        assert!(errs.contains("$.paths.case_insensitive: expected true or false"), "{errs}");
        assert!(errs.contains("$.paths.merge_slashes: unknown key"), "{errs}");
        let unrooted = parse(br#"{"endpoints":[{"path":"login","tier":0}]}"#);
        assert!(unrooted.policy.is_some(), "still accepted");
        let warning = unrooted.diags.iter().find(|d| d.path == "$.endpoints[0].path").expect("warned");
        assert!(warning.message.contains("matched as \"/login\""), "{warning}");
    }

    #[test]
    fn field_names() {
        assert_eq!(Field::parse("User-Agent"), Ok(Field::Header("user-agent".into())));
        assert_eq!(Field::parse("json:params.user"), Ok(Field::Json(vec!["params".into(), "user".into()])));
        assert_eq!(Field::parse("header:body"), Ok(Field::Header("body".into())));
        assert!(Field::parse("json:a..b").is_err());
    }
}
