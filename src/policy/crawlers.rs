//! Known crawlers: the user-agent tokens that claim each one, how a claim is proven (published
//! ranges, forward-confirmed reverse DNS under the operator's documented domains), and what a
//! proven one gets (allow, challenge, block, or ordinary scoring), by name or by purpose.
//!
//! Crawler handling is on when the allow tier lists `verified_search_crawler`. Its criteria keep
//! the seed's names: `rdns_matches_ua` turns FCrDNS on (it needs `dns_over_https`),
//! `ip_in_verified_range` names the crawlers the condition allows (all of them when it names
//! none), `rate_within_robots_txt` bounds each crawler's rate. Crawlers not named there are still
//! recognised and verified (an impersonator is blocked either way), and are scored like any
//! client unless `crawlers` gives them an action.

use super::reader::{Ctx, Obj};
use super::values::cidrs;
use super::RateLimit;
use crate::base::iptable::IpSet;

/// What a crawler is for: a label in headers, evidence and metrics, and a key for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Search,
    AiTraining,
    UserFetch,
    Agent,
    Preview,
    Monitoring,
    Archiver,
    FeedReader,
}

pub const PURPOSES: &[(&str, Purpose)] = &[
    ("search", Purpose::Search),
    ("ai_training", Purpose::AiTraining),
    ("user_fetch", Purpose::UserFetch),
    ("agent", Purpose::Agent),
    ("preview", Purpose::Preview),
    ("monitoring", Purpose::Monitoring),
    ("archiver", Purpose::Archiver),
    ("feed_reader", Purpose::FeedReader),
];

impl Purpose {
    pub fn name(self) -> &'static str {
        PURPOSES.iter().find(|(_, p)| *p == self).map_or("search", |(n, _)| n)
    }
}

/// What a verified crawler's request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlerAction {
    /// The allow tier: not scored.
    Allow,
    Challenge,
    Block,
    /// Nothing special: scored like any client (labelled).
    Score,
}

const ACTIONS: &[&str] = &["allow", "challenge", "block", "score"];

fn action_of(s: &str) -> CrawlerAction {
    match s {
        "allow" => CrawlerAction::Allow,
        "challenge" => CrawlerAction::Challenge,
        "block" => CrawlerAction::Block,
        _ => CrawlerAction::Score,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Crawler {
    pub name: String,
    pub operator: String,
    pub purpose: Purpose,
    /// Lower-case user-agent substrings that claim this crawler.
    pub user_agents: Vec<String>,
    /// Domains its reverse-DNS names are under (label boundary).
    pub rdns_suffixes: Vec<String>,
    /// Published ranges given inline.
    pub ranges: IpSet,
    /// Where its published ranges are fetched from, and the last good list.
    pub feed: Option<super::feeds::Feed>,
    pub fed: std::sync::Arc<IpSet>,
    /// Its Web Bot Auth identity: the `Signature-Agent` origin it signs as, and its keys.
    pub signer: Option<Signer>,
    pub action: CrawlerAction,
    /// Requests per window one crawler may make on this worker before it is rate limited.
    pub rate: Option<RateLimit>,
}

impl Crawler {
    /// A crawler claimed by its name as a user-agent token, with no proof, no operator and the
    /// ordinary scoring: what a definition or a default fills in.
    pub fn unproven(name: &str) -> Crawler {
        Crawler {
            name: name.into(),
            operator: String::new(),
            purpose: Purpose::Search,
            user_agents: vec![name.into()],
            rdns_suffixes: Vec::new(),
            ranges: IpSet::new(&[]),
            feed: None,
            fed: Default::default(),
            signer: None,
            action: CrawlerAction::Score,
            rate: None,
        }
    }

    /// Whether any proof is configured: a claim with nothing to prove it by is unverified, not
    /// an impersonation.
    pub fn provable(&self, rdns: bool) -> bool {
        !self.ranges.is_empty() || !self.fed.is_empty() || (rdns && !self.rdns_suffixes.is_empty())
    }

    /// Whether `ip` is in its published ranges (inline or fetched).
    pub fn in_ranges(&self, ip: std::net::IpAddr) -> bool {
        self.ranges.contains(ip) || self.fed.contains(ip)
    }
}

/// An agent that signs its requests (Web Bot Auth): the origin it names in `Signature-Agent`,
/// where its key directory is fetched from, and the keys last fetched (none yet: its signatures
/// cannot be checked, so they prove nothing).
#[derive(Debug, Clone)]
pub struct Signer {
    pub origin: String,
    pub feed: super::feeds::Feed,
    pub keys: std::sync::Arc<crate::formats::signature::KeySet>,
}

impl PartialEq for Signer {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin && self.feed == other.feed
    }
}

/// The resolver cluster for reverse-DNS verification (RFC 8484).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsOverHttps {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    /// The whole verification's budget (both lookups).
    pub timeout_ms: u64,
    pub cache_seconds: u64,
    pub negative_cache_seconds: u64,
}

/// Crawler handling, present when `verified_search_crawler` is listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Crawlers {
    pub list: Vec<Crawler>,
    /// FCrDNS on (`rdns_matches_ua`) and a resolver to do it with.
    pub doh: Option<DnsOverHttps>,
    /// The origin's robots.txt, with `rate_within_robots_txt`.
    pub robots: Option<RobotsTxt>,
    /// How signatures are judged (`crawlers.signatures`); `None` when no crawler signs.
    pub signatures: Option<crate::formats::signature::Policy>,
    /// A signature without a nonce proves nothing (it could be replayed until it expires).
    pub require_nonce: bool,
}

/// Where the origin's robots.txt is fetched from, what a disallowed fetch by a verified crawler
/// costs it, and the last file fetched (none yet: no path is refused, no delay imposed).
#[derive(Debug, Clone)]
pub struct RobotsTxt {
    pub feed: super::feeds::Feed,
    /// Refused (the block tier), or let through and counted.
    pub refuse: bool,
    pub file: Option<std::sync::Arc<crate::formats::robots::Fetched>>,
}

impl PartialEq for RobotsTxt {
    fn eq(&self, other: &Self) -> bool {
        self.feed == other.feed && self.refuse == other.refuse
    }
}

impl RobotsTxt {
    /// Whether the crawler known by `tokens` (its own, then its family's) may fetch `path` (yes,
    /// while no file is known).
    pub fn allows(&self, tokens: &[&str], path: &str) -> bool {
        self.file.as_ref().is_none_or(|f| f.allows(f.pick(tokens), path))
    }

    /// The rate a crawl delay asks of the crawler known by `tokens`, with half again for timing
    /// jitter, over at least a minute.
    pub fn rate(&self, tokens: &[&str]) -> Option<RateLimit> {
        let file = self.file.as_ref()?;
        let delay = file.crawl_delay_ms(file.pick(tokens))?.max(1);
        let window_ms = (4 * delay).max(60_000);
        let max_requests = ((window_ms * 3 / 2).div_ceil(delay)).min(u64::from(u32::MAX)) as u32;
        Some(RateLimit { max_requests, window_ms, static_assets: true, throttle: false, fleet: false })
    }
}

impl Crawlers {
    /// The crawler `ua` claims to be, by its tokens (first defined wins).
    ///
    /// Every request asks this, so the user agent is lower-cased once and each token found by
    /// the standard library's substring search (tokens are lower case).
    pub fn claimed(&self, ua: &[u8]) -> Option<usize> {
        if ua.len() < 6 {
            return None;
        }
        let lower = ua.to_ascii_lowercase();
        let Ok(text) = std::str::from_utf8(&lower) else {
            return self.list.iter().position(|c| c.user_agents.iter().any(|t| contains_ignore_case(ua, t.as_bytes())));
        };
        self.list.iter().position(|c| c.user_agents.iter().any(|t| !t.is_empty() && text.contains(t.as_str())))
    }

    /// Every suffix worth confirming a PTR name for.
    pub fn suffixes(&self) -> Vec<String> {
        let mut all: Vec<String> = self.list.iter().flat_map(|c| c.rdns_suffixes.iter().cloned()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// The crawlers botgate knows without configuration: name, operator, purpose, user-agent
/// tokens, reverse-DNS domains as each operator documents them. Crawlers whose operators publish
/// only IP lists (GPTBot, PerplexityBot, …) are proven by ranges given in the policy (inline or a
/// feed); without them their claims stay unverified, never allowed.
/// (name, operator, purpose, user-agent tokens, reverse-DNS domains).
type Known = (&'static str, &'static str, Purpose, &'static [&'static str], &'static [&'static str]);

const DEFAULTS: &[Known] = &[
    (
        "googlebot",
        "Google",
        Purpose::Search,
        &["googlebot", "storebot-google", "google-inspectiontool", "googleother", "adsbot-google"],
        &["googlebot.com", "google.com"],
    ),
    ("bingbot", "Microsoft", Purpose::Search, &["bingbot", "adidxbot", "bingpreview", "msnbot"], &["search.msn.com"]),
    ("duckduckbot", "DuckDuckGo", Purpose::Search, &["duckduckbot"], &["duckduckgo.com"]),
    (
        "yandexbot",
        "Yandex",
        Purpose::Search,
        &["yandexbot", "yandex.com/bots"],
        &["yandex.ru", "yandex.net", "yandex.com"],
    ),
    ("applebot", "Apple", Purpose::Search, &["applebot"], &["applebot.apple.com"]),
    ("baiduspider", "Baidu", Purpose::Search, &["baiduspider"], &["baidu.com", "baidu.jp"]),
    ("amazonbot", "Amazon", Purpose::Search, &["amazonbot"], &["crawl.amazonbot.amazon"]),
    ("gptbot", "OpenAI", Purpose::AiTraining, &["gptbot"], &[]),
    ("oai-searchbot", "OpenAI", Purpose::Search, &["oai-searchbot"], &[]),
    ("chatgpt-user", "OpenAI", Purpose::UserFetch, &["chatgpt-user"], &[]),
    ("claudebot", "Anthropic", Purpose::AiTraining, &["claudebot"], &[]),
    ("claude-user", "Anthropic", Purpose::UserFetch, &["claude-user"], &[]),
    ("perplexitybot", "Perplexity", Purpose::Search, &["perplexitybot"], &[]),
    ("perplexity-user", "Perplexity", Purpose::UserFetch, &["perplexity-user"], &[]),
    ("ccbot", "Common Crawl", Purpose::AiTraining, &["ccbot"], &[]),
    ("meta-externalagent", "Meta", Purpose::AiTraining, &["meta-externalagent"], &[]),
    ("facebookexternalhit", "Meta", Purpose::Preview, &["facebookexternalhit"], &[]),
];

pub fn defaults() -> Vec<Crawler> {
    DEFAULTS
        .iter()
        .map(|(name, operator, purpose, uas, suffixes)| Crawler {
            operator: (*operator).into(),
            purpose: *purpose,
            user_agents: uas.iter().map(|s| (*s).to_string()).collect(),
            rdns_suffixes: suffixes.iter().map(|s| (*s).to_string()).collect(),
            ..Crawler::unproven(name)
        })
        .collect()
}

/// Domains whose machines belong to an operator's cloud customers, not to its crawlers: Google
/// documents `googleusercontent.com` for its user-triggered fetchers, but every Compute Engine VM
/// forward-confirms as `*.bc.googleusercontent.com` and App Engine apps fetch from
/// `*.gae.googleusercontent.com`. So Googlebot's defaults leave `googleusercontent.com` out, and
/// a name under one of these proves nothing even where a policy adds it.
pub const CUSTOMER_DOMAINS: &[&str] = &["googleusercontent.com"];

/// The `verified_search_crawler` criteria as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrawlerCondition {
    pub rdns: bool,
    pub names: Vec<String>,
    pub robots: bool,
    /// Past its `expires`, proven crawlers are scored instead of allowed.
    pub stewardship: super::values::Stewardship,
}

/// `dns_over_https` and `crawlers`, with the allow condition: the crawler table.
pub(super) fn read(ctx: &Ctx, cond: &CrawlerCondition, doh: Option<Obj<'_>>, crawlers: Option<Obj<'_>>) -> Crawlers {
    let mut list = defaults();
    let mut robots = None;
    let mut signatures = crate::formats::signature::Policy { max_validity: 3_600, ..Default::default() };
    let mut require_nonce = true;
    let mut by_purpose: Vec<(Purpose, CrawlerAction)> = Vec::new();
    let mut explicit: Vec<String> = Vec::new();
    if let Some(o) = crawlers {
        if let Some(p) = o.obj("by_purpose") {
            for (name, purpose) in PURPOSES {
                if p.has(name) {
                    by_purpose.push((*purpose, action_of(p.choice(name, "score", ACTIONS))));
                }
            }
            p.finish();
        }
        for (path, v) in o.array("definitions") {
            let Some(d) = Obj::new(ctx, path, v) else { continue };
            if let Some(name) = read_definition(&d, &mut list) {
                if d.has("action") {
                    explicit.push(name);
                }
            }
            d.finish();
        }
        if let Some(r) = o.obj("robots_txt") {
            robots = read_robots(r, cond);
        }
        if let Some(sig) = o.obj("signatures") {
            // Spent nonces are kept until their signature expires, for at most an hour (the
            // shared store's ring): longer-lived signatures could be replayed after it.
            let max_validity = sig.u64_in("max_validity_seconds", 3_600, 1, 3_600);
            // Together at most 62 minutes of spent nonces: the shared ring holds 64.
            let skew = sig.u64_in("clock_skew_seconds", 60, 0, 60);
            require_nonce = sig.bool("require_nonce", true);
            sig.finish();
            signatures = crate::formats::signature::Policy { max_validity, skew, allow_insecure_agent: false };
        }
        o.finish();
    }
    for n in &cond.names {
        if !list.iter().any(|c| &c.name == n) {
            let known: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
            ctx.warn(
                "$.tiers.allow.conditions",
                format!(
                    "ip_in_verified_range names \"{n}\", which no crawler definition has (known: {})",
                    known.join(", ")
                ),
            );
        }
    }
    for c in &mut list {
        if explicit.contains(&c.name) {
            continue;
        }
        let named = cond.names.is_empty() || cond.names.contains(&c.name);
        c.action = by_purpose.iter().find(|(p, _)| *p == c.purpose).map(|(_, a)| *a).unwrap_or(if named {
            CrawlerAction::Allow
        } else {
            CrawlerAction::Score
        });
        if cond.robots && c.rate.is_none() {
            c.rate = Some(RateLimit {
                max_requests: 600,
                window_ms: 60_000,
                static_assets: true,
                throttle: false,
                fleet: false,
            });
        }
    }
    let doh = match (cond.rdns, doh) {
        (_, Some(o)) => read_doh(o).filter(|_| cond.rdns),
        (true, None) => {
            ctx.warn(
                "$.tiers.allow.conditions",
                "rdns_matches_ua is on but dns_over_https is not configured: crawlers are proven by published \
                 ranges only",
            );
            None
        }
        (false, None) => None,
    };
    let signatures = list.iter().any(|c| c.signer.is_some()).then_some(signatures);
    Crawlers { list, doh, robots, signatures, require_nonce }
}

/// `signature_agent: {url, cluster, authority, refresh_seconds}`: the `Signature-Agent` origin
/// and the cluster its key directory is fetched through.
fn read_signer(s: Obj<'_>, name: &str) -> Option<Signer> {
    use crate::formats::signature::{Agent, KeySet, DIRECTORY_PATH};
    let url = s.string("url").unwrap_or_default().to_string();
    let Some(agent) = Agent::parse(&url, false) else {
        s.ctx.error(&s.child_path("url"), format!("{url:?} is not an https origin (like \"https://chatgpt.com\")"));
        s.informational("cluster");
        s.informational("authority");
        s.informational("refresh_seconds");
        s.informational("timeout_ms");
        s.finish();
        return None;
    };
    let host = agent.origin.trim_start_matches("https://").to_string();
    let mut feed = super::feeds::read_feed(s, name, super::feeds::Kind::Keys, Some(DIRECTORY_PATH))?;
    if feed.authority == feed.cluster {
        feed.authority = host; // the directory is the origin's: ask for it by its name
    }
    Some(Signer { origin: agent.origin, feed, keys: std::sync::Arc::new(KeySet::new(Vec::new())) })
}

/// `crawlers.robots_txt`: `{cluster, path, authority, refresh_seconds, disallowed}`.
fn read_robots(r: Obj<'_>, cond: &CrawlerCondition) -> Option<RobotsTxt> {
    let refuse = r.choice("disallowed", "refuse", &["refuse", "count"]) == "refuse";
    if !cond.robots {
        r.ctx.warn(&r.path, "rate_within_robots_txt is off in the crawler condition: robots.txt is not read");
    }
    if !r.has("authority") {
        r.ctx.warn(
            &r.child_path("authority"),
            "not set: robots.txt is asked for with the cluster's name as Host; set the site's host name \
             (a virtual host may answer another site's file, or 404, which allows everything)",
        );
    }
    let feed = super::feeds::read_feed(r, "robots_txt", super::feeds::Kind::Robots, Some("/robots.txt"));
    feed.filter(|_| cond.robots).map(|feed| RobotsTxt { feed, refuse, file: None })
}

/// One entry of `crawlers.definitions`: a default changed (by `name`) or a new crawler.
fn read_definition(d: &Obj<'_>, list: &mut Vec<Crawler>) -> Option<String> {
    let name_path = d.child_path("name");
    let Some(name) = d.string("name").map(str::to_ascii_lowercase) else {
        d.ctx.error(&name_path, "missing");
        return None;
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        d.ctx.error(&name_path, "letters, digits, '-' and '_' only (it is a metric label)");
        return None;
    }
    let i = match list.iter().position(|c| c.name == name) {
        Some(i) => i,
        None => {
            list.push(Crawler::unproven(&name));
            list.len() - 1
        }
    };
    let c = list.get_mut(i)?;
    if let Some(op) = d.string("operator") {
        c.operator = op.to_string();
    }
    if let Some(p) = d.string("purpose") {
        match PURPOSES.iter().find(|(n, _)| *n == p) {
            Some((_, purpose)) => c.purpose = *purpose,
            None => {
                let names: Vec<&str> = PURPOSES.iter().map(|(n, _)| *n).collect();
                d.ctx.error(&d.child_path("purpose"), format!("\"{p}\" is not one of {}", names.join(", ")));
            }
        }
    }
    if d.has("user_agents") {
        c.user_agents = d.strings("user_agents").iter().map(|s| s.to_ascii_lowercase()).collect();
        if c.user_agents.iter().any(|t| t.len() < 3) {
            d.ctx.error(&d.child_path("user_agents"), "a token shorter than 3 characters would match nearly anyone");
        }
    }
    if d.has("rdns_suffixes") {
        c.rdns_suffixes = d.strings("rdns_suffixes").iter().map(|s| s.trim_matches('.').to_ascii_lowercase()).collect();
        if c.rdns_suffixes.iter().any(|s| !s.contains('.')) {
            d.ctx.error(&d.child_path("rdns_suffixes"), "a suffix needs at least two labels (e.g. \"googlebot.com\")");
        }
    }
    if d.has("ranges") {
        c.ranges = IpSet::new(&cidrs(d, "ranges"));
    }
    if d.has("source") {
        c.feed = super::feeds::read_source(d, &name, super::feeds::Kind::Ranges);
    }
    if let Some(sig) = d.obj("signature_agent") {
        c.signer = read_signer(sig, &name);
    }
    if d.has("action") {
        c.action = action_of(d.choice("action", "score", ACTIONS));
    }
    if let Some(r) = d.obj("rate") {
        let max_requests = r.u64_in("max_requests", 600, 1, 1_000_000) as u32;
        let window_ms = r.u64_in("window_seconds", 60, 1, super::MAX_WINDOW_SECONDS) * 1000;
        r.finish();
        c.rate = Some(RateLimit { max_requests, window_ms, static_assets: true, throttle: false, fleet: false });
    }
    Some(name)
}

fn read_doh(o: Obj<'_>) -> Option<DnsOverHttps> {
    let cluster = o.string("cluster").map(str::to_string);
    let path = o.string("path").unwrap_or("/dns-query").to_string();
    if !path.starts_with('/') {
        o.ctx.error(&o.child_path("path"), "must start with '/'");
    }
    let authority = o.string("authority").map(str::to_string);
    let timeout_ms = o.u64_in("timeout_ms", 1_000, 10, 30_000);
    let cache_seconds = o.u64_in("cache_seconds", 3_600, 1, 7 * 86_400);
    let negative_cache_seconds = o.u64_in("negative_cache_seconds", 600, 1, 86_400);
    let Some(cluster) = cluster else {
        o.ctx.error(&o.child_path("cluster"), "missing: the Envoy cluster of the DNS-over-HTTPS resolver");
        o.finish();
        return None;
    };
    o.finish();
    let authority = authority.unwrap_or_else(|| cluster.clone());
    Some(DnsOverHttps { cluster, path, authority, timeout_ms, cache_seconds, negative_cache_seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Crawlers {
        Crawlers { list: defaults(), doh: None, robots: None, signatures: None, require_nonce: true }
    }

    #[test]
    fn claims_are_read_from_user_agent_tokens_in_any_case() {
        let t = table();
        let ua = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(t.claimed(ua).map(|i| t.list[i].name.as_str()), Some("googlebot"));
        let gpt =
            b"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)";
        assert_eq!(t.claimed(gpt).map(|i| t.list[i].name.as_str()), Some("gptbot"));
        assert_eq!(t.claimed(b"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"), None);
    }

    #[test]
    fn a_crawler_without_any_proof_configured_is_not_provable() {
        let t = table();
        let gpt = t.list.iter().find(|c| c.name == "gptbot").unwrap();
        assert!(!gpt.provable(true));
        let google = t.list.iter().find(|c| c.name == "googlebot").unwrap();
        assert!(google.provable(true));
        assert!(!google.provable(false), "ranges only, and none given");
    }
}
