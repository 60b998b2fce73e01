//! `botgate report`: the input of `botgate replay` (the shipped access log or plain JSONL)
//! through a policy, as one self-contained HTML page an operator opens offline: scores and
//! outcomes over time, heatmaps of the most suspicious clients (rate, regularity, distinct
//! endpoints, errors), a table of them, and the campaigns: flagged traffic grouped across
//! addresses and sessions by client shape or detector fingerprint, with what happened after it
//! was first challenged or blocked.
//!
//! The page makes no request of its own: inline CSS, SVG drawn here, no script, no link, and a
//! Content-Security-Policy of `default-src 'none'` in case anything slipped through. Everything
//! from the log (paths, user agents, addresses) is attacker-controlled and escaped.
//!
//! Memory is bounded: per-client and per-group aggregates (never the requests), time in at most
//! [`SLICES`] slices that widen as the log goes on, at most [`MAX_CLIENTS`] clients and
//! [`MAX_GROUPS`] groups (when full, the least active tenth is forgotten, and the page says so),
//! and capped lists of user agents, sessions and addresses per client and group.

use super::replay::{each_record, Replay, Replayed};
use crate::base::fasthash;
use crate::policy::Policy;
use crate::request::head::Head;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Columns of the time charts: the slice widens (1 s, 5 s, 10 s, 30 s, 1 min, …) to fit.
pub const SLICES: usize = 60;
/// Clients tracked at once.
pub const MAX_CLIENTS: usize = 100_000;
/// Client shapes and detector fingerprints tracked at once.
pub const MAX_GROUPS: usize = 20_000;
const TOP_CLIENTS: usize = 30;
const TOP_CAMPAIGNS: usize = 10;
/// The score from which a client never flagged is still listed as suspicious.
const SUSPICIOUS: f64 = 0.3;
const UAS_PER_CLIENT: usize = 5;
const SESSIONS_PER_CLIENT: usize = 16;
const ADDRESSES_PER_GROUP: usize = 2_000;
const SESSIONS_PER_GROUP: usize = 2_000;
const UAS_PER_GROUP: usize = 20;
const PATHS_PER_GROUP: usize = 50;
/// Characters kept of a user agent or path.
const TEXT_MAX: usize = 200;
/// Slice widths (ms), each a multiple of the one before; past the last, doubled.
const WIDTHS: [u64; 13] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000,
    86_400_000,
];

/// Score bands, lowest first: (lower bound, label).
const BUCKETS: [(f64, &str); 8] = [
    (0.0, "0 – 0.1"),
    (0.1, "0.1 – 0.2"),
    (0.2, "0.2 – 0.3"),
    (0.3, "0.3 – 0.45"),
    (0.45, "0.45 – 0.6"),
    (0.6, "0.6 – 0.75"),
    (0.75, "0.75 – 0.85"),
    (0.85, "0.85 – 1"),
];

/// Outcomes as `Decision::outcome` names them: (name, label, colour), drawn in this order.
const OUTCOMES: [(&str, &str, &str); 8] = [
    ("pass", "passed", "#9fcfae"),
    ("allow", "allowed", "#7fb4d8"),
    ("serve", "botgate's own", "#c3cad3"),
    ("would_challenge", "would challenge", "#f3d67a"),
    ("would_block", "would block", "#eeb06a"),
    ("challenge", "challenged", "#e07b39"),
    ("rate_limited", "rate-limited", "#9d78c2"),
    ("block", "blocked", "#c0303c"),
];

fn enforced(outcome: &str) -> bool {
    matches!(outcome, "challenge" | "block" | "rate_limited")
}

fn bucket(score: f64) -> usize {
    BUCKETS.iter().rposition(|(lo, _)| score >= *lo).unwrap_or(0)
}

fn outcome_index(outcome: &str) -> usize {
    OUTCOMES.iter().position(|(name, _, _)| *name == outcome).unwrap_or(0)
}

/// A client's shape, as the engine's campaign view computes it (`Decision::campaign` holds the
/// same value when the engine named the shape a campaign): the user agent, the language tags,
/// which of the shape headers are sent, and the TLS fingerprint (the value of `tls_header`).
pub fn shape(head: &Head, tls_header: &str) -> u64 {
    let tls = if tls_header.is_empty() { b"" as &[u8] } else { head.first(tls_header).unwrap_or(b"") };
    crate::score::campaigns::shape(head, tls)
}

/// Running mean and variance (Welford), for the spread of inter-arrival times.
#[derive(Debug, Clone, Copy, Default)]
struct Spread {
    n: u32,
    mean: f64,
    m2: f64,
}

impl Spread {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / f64::from(self.n);
        self.m2 += d * (x - self.mean);
    }

    /// Coefficient of variation (standard deviation over mean), from three gaps on.
    fn cv(&self) -> Option<f64> {
        (self.n >= 3 && self.mean > 0.0).then(|| (self.m2 / f64::from(self.n)).sqrt() / self.mean)
    }
}

/// Distinct paths: exact up to [`Distinct::EXACT`], then estimated by linear counting over 1024
/// bits (to a few percent below a few thousand).
#[derive(Debug, Clone, Default)]
struct Distinct {
    bits: [u64; 16],
    /// The first paths' hashes (`None` once there were more).
    exact: Option<Vec<u32>>,
}

impl Distinct {
    const BITS: f64 = 1024.0;
    const EXACT: usize = 32;

    fn new() -> Distinct {
        Distinct { bits: [0; 16], exact: Some(Vec::new()) }
    }

    fn add(&mut self, item: &[u8]) {
        let h = fasthash::hash(&[b"report path", item]);
        // The high bits: the hash's low bits are its weakest.
        let bit = (h >> 54) as usize;
        if let Some(w) = self.bits.get_mut(bit / 64) {
            *w |= 1 << (bit % 64);
        }
        let small = (h >> 32) as u32 ^ h as u32;
        if let Some(v) = &mut self.exact {
            if !v.contains(&small) {
                if v.len() < Self::EXACT {
                    v.push(small);
                } else {
                    self.exact = None;
                }
            }
        }
    }

    /// The count (estimated past [`Self::EXACT`]), and whether the sketch is full (the count is
    /// then a floor).
    fn estimate(&self) -> (f64, bool) {
        if let Some(v) = &self.exact {
            return (v.len() as f64, false);
        }
        let zeros: u32 = self.bits.iter().map(|w| w.count_zeros()).sum();
        if zeros == 0 {
            return (Self::BITS * Self::BITS.ln(), true);
        }
        (-Self::BITS * (f64::from(zeros) / Self::BITS).ln(), false)
    }
}

/// Adds one to a small (key, count) list, up to `cap` keys; false when the key did not fit.
fn count<K: PartialEq>(list: &mut Vec<(K, u32)>, key: K, cap: usize) -> bool {
    if let Some(e) = list.iter_mut().find(|(k, _)| *k == key) {
        e.1 = e.1.saturating_add(1);
        true
    } else if list.len() < cap {
        list.push((key, 1));
        true
    } else {
        false
    }
}

/// The `n` most counted, most first (then by name).
fn most<K: Clone + Ord>(list: &[(K, u32)], n: usize) -> Vec<(K, u32)> {
    let mut v = list.to_vec();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn clip(s: &str) -> String {
    if s.chars().count() > TEXT_MAX {
        let mut c: String = s.chars().take(TEXT_MAX).collect();
        c.push('…');
        c
    } else {
        s.to_string()
    }
}

/// Adds `k` consecutive slices into one (the slice width grew `k` times).
fn merge<T: Copy + Default>(bins: &mut Vec<T>, k: usize, add: fn(T, T) -> T) {
    let merged: Vec<T> = bins.chunks(k.max(1)).map(|c| c.iter().fold(T::default(), |a, b| add(a, *b))).collect();
    *bins = merged;
    bins.resize(SLICES, T::default());
}

fn add16(a: u16, b: u16) -> u16 {
    a.saturating_add(b)
}
fn add32(a: u32, b: u32) -> u32 {
    a.saturating_add(b)
}
fn add_row<const N: usize>(a: [u32; N], b: [u32; N]) -> [u32; N] {
    let mut out = a;
    for (o, x) in out.iter_mut().zip(b) {
        *o = o.saturating_add(x);
    }
    out
}

fn bump16(bins: &mut [u16], i: usize) {
    if let Some(b) = bins.get_mut(i) {
        *b = b.saturating_add(1);
    }
}
fn bump32(bins: &mut [u32], i: usize) {
    if let Some(b) = bins.get_mut(i) {
        *b = b.saturating_add(1);
    }
}

/// One client (address): aggregates only.
#[derive(Debug, Clone)]
struct Client {
    requests: u32,
    flagged: u32,
    enforced: u32,
    errors: u32,
    score_sum: f64,
    score_max: f64,
    first: u64,
    last: u64,
    gaps: Spread,
    paths: Distinct,
    reasons: Vec<(&'static str, u32)>,
    uas: Vec<(String, u32)>,
    more_uas: bool,
    sessions: Vec<u64>,
    more_sessions: bool,
    bins: Vec<u16>,
    flagged_bins: Vec<u16>,
}

impl Client {
    fn new(t: u64) -> Client {
        Client {
            requests: 0,
            flagged: 0,
            enforced: 0,
            errors: 0,
            score_sum: 0.0,
            score_max: 0.0,
            first: t,
            last: t,
            gaps: Spread::default(),
            paths: Distinct::new(),
            reasons: Vec::new(),
            uas: Vec::new(),
            more_uas: false,
            sessions: Vec::new(),
            more_sessions: false,
            bins: vec![0; SLICES],
            flagged_bins: vec![0; SLICES],
        }
    }

    fn add(&mut self, r: &Replayed, slice: usize) {
        let d = &r.decision;
        if self.requests > 0 {
            self.gaps.add(r.t_ms.abs_diff(self.last) as f64);
        }
        self.requests = self.requests.saturating_add(1);
        self.first = self.first.min(r.t_ms);
        self.last = self.last.max(r.t_ms);
        self.score_sum += d.score;
        self.score_max = self.score_max.max(d.score);
        self.errors += u32::from(r.status >= 400);
        self.paths.add(r.path.split('?').next().unwrap_or("").as_bytes());
        bump16(&mut self.bins, slice);
        if d.flagged() {
            self.flagged += 1;
            bump16(&mut self.flagged_bins, slice);
        }
        self.enforced += u32::from(enforced(d.outcome()));
        for reason in &d.reasons {
            count(&mut self.reasons, *reason, 64);
        }
        if !self.uas.iter().any(|(ua, _)| *ua == clip(&r.user_agent)) && self.uas.len() >= UAS_PER_CLIENT {
            self.more_uas = true;
        } else {
            count(&mut self.uas, clip(&r.user_agent), UAS_PER_CLIENT);
        }
        if let Some(s) = d.session.filter(|s| !self.sessions.contains(s)) {
            if self.sessions.len() < SESSIONS_PER_CLIENT {
                self.sessions.push(s);
            } else {
                self.more_sessions = true;
            }
        }
    }

    fn mean(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.score_sum / f64::from(self.requests)
        }
    }

    /// Requests per minute over the time it was active (at least a minute).
    fn rate(&self) -> f64 {
        f64::from(self.requests) * 60_000.0 / (self.last - self.first).max(60_000) as f64
    }

    /// Listed in the table: flagged at least once, or scored [`SUSPICIOUS`] or more.
    fn suspicious(&self) -> bool {
        self.flagged > 0 || self.score_max >= SUSPICIOUS
    }

    fn error_ratio(&self) -> f64 {
        f64::from(self.errors) / f64::from(self.requests.max(1))
    }
}

/// What groups flagged traffic across addresses and sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    /// The client's shape (user agent, languages, headers sent, TLS fingerprint).
    Shape(u64),
    /// The bot detector's request fingerprint (its configured fields).
    Fingerprint(u64),
}

/// The traffic of one shape or fingerprint: aggregates only.
#[derive(Debug, Clone)]
struct Group {
    requests: u32,
    flagged: u32,
    first: u64,
    last: u64,
    /// The first challenge, block or rate limit: when, what, and how many requests came before.
    action: Option<(u64, &'static str, u32)>,
    /// The first flagged request (a warn-mode policy only flags): when and what.
    flag: Option<(u64, &'static str)>,
    /// Requests after the first action, and how many of them were let through.
    after: u32,
    through_after: u32,
    /// The engine itself named it a campaign (`Decision::campaign`).
    named: bool,
    /// A fingerprint group's client shape (of its first request).
    shape: Option<u64>,
    addresses: HashMap<String, u64>,
    more_addresses: bool,
    sessions: HashMap<u64, u64>,
    more_sessions: bool,
    /// User agent, requests, first seen.
    uas: Vec<(String, u32, u64)>,
    more_uas: bool,
    /// The first paths seen, with their counts.
    paths: HashMap<String, u32>,
    distinct: Distinct,
    reasons: Vec<(&'static str, u32)>,
    bins: Vec<u32>,
    flagged_bins: Vec<u32>,
}

impl Group {
    fn new(t: u64, shape: Option<u64>) -> Group {
        Group {
            requests: 0,
            flagged: 0,
            first: t,
            last: t,
            action: None,
            flag: None,
            after: 0,
            through_after: 0,
            named: false,
            shape,
            addresses: HashMap::new(),
            more_addresses: false,
            sessions: HashMap::new(),
            more_sessions: false,
            uas: Vec::new(),
            more_uas: false,
            paths: HashMap::new(),
            distinct: Distinct::new(),
            reasons: Vec::new(),
            bins: vec![0; SLICES],
            flagged_bins: vec![0; SLICES],
        }
    }

    fn add(&mut self, r: &Replayed, client: &str, slice: usize) {
        let d = &r.decision;
        let (t, outcome) = (r.t_ms, d.outcome());
        self.requests = self.requests.saturating_add(1);
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        self.named |= d.campaign.is_some();
        bump32(&mut self.bins, slice);
        if let Some((at, _, _)) = self.action {
            if t > at {
                self.after += 1;
                self.through_after += u32::from(!enforced(outcome));
            }
        } else if enforced(outcome) {
            self.action = Some((t, outcome, self.requests - 1));
        }
        if d.flagged() {
            self.flagged += 1;
            bump32(&mut self.flagged_bins, slice);
            self.flag.get_or_insert((t, outcome));
            for reason in &d.reasons {
                count(&mut self.reasons, *reason, 64);
            }
        }
        if !self.addresses.contains_key(client) {
            if self.addresses.len() < ADDRESSES_PER_GROUP {
                self.addresses.insert(client.to_string(), t);
            } else {
                self.more_addresses = true;
            }
        }
        if let Some(s) = d.session.filter(|s| !self.sessions.contains_key(s)) {
            if self.sessions.len() < SESSIONS_PER_GROUP {
                self.sessions.insert(s, t);
            } else {
                self.more_sessions = true;
            }
        }
        let ua = clip(&r.user_agent);
        if let Some(e) = self.uas.iter_mut().find(|(u, _, _)| *u == ua) {
            e.1 = e.1.saturating_add(1);
        } else if self.uas.len() < UAS_PER_GROUP {
            self.uas.push((ua, 1, t));
        } else {
            self.more_uas = true;
        }
        let path = r.path.split('?').next().unwrap_or("");
        self.distinct.add(path.as_bytes());
        let clipped = clip(path);
        let room = self.paths.len() < PATHS_PER_GROUP;
        if let Some(n) = self.paths.get_mut(&clipped) {
            *n = n.saturating_add(1);
        } else if room {
            self.paths.insert(clipped, 1);
        }
    }

    /// Shown as a campaign: flagged, from more than one address or session.
    fn campaign(&self) -> bool {
        self.flagged > 0 && (self.addresses.len() > 1 || self.sessions.len() > 1)
    }
}

/// Groups, with their keys.
type Groups<'a> = Vec<(GroupKey, &'a Group)>;

/// The time axis: slices of `width` ms from `origin`.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Option<u64>,
    width: u64,
    used: usize,
}

/// Scores and outcomes of everyone, per slice.
#[derive(Debug, Clone, Default)]
struct Overall {
    requests: u64,
    flagged: u64,
    scores: Vec<[u32; 8]>,
    outcomes: Vec<[u32; 8]>,
    outcome_totals: [u64; 8],
    reasons: HashMap<&'static str, u64>,
    first: u64,
    last: u64,
}

/// What the page says it was made from.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// The log's name as given (`-` for stdin).
    pub log: String,
    pub policy: String,
    /// Lines that could not be read.
    pub skipped: usize,
    /// Requests on routes where botgate is off.
    pub undecided: usize,
}

/// The report's aggregates, fed one replayed request at a time.
#[derive(Debug, Clone)]
pub struct Report {
    clock: Clock,
    overall: Overall,
    clients: HashMap<String, Client>,
    groups: HashMap<GroupKey, Group>,
    /// Caps (the constants, lowered by tests).
    max_clients: usize,
    max_groups: usize,
    forgotten_clients: (u64, u64),
    forgotten_groups: (u64, u64),
}

impl Default for Report {
    fn default() -> Self {
        Report::with_caps(MAX_CLIENTS, MAX_GROUPS)
    }
}

impl Report {
    pub fn with_caps(max_clients: usize, max_groups: usize) -> Report {
        Report {
            clock: Clock { origin: None, width: WIDTHS[0], used: 0 },
            overall: Overall { scores: vec![[0; 8]; SLICES], outcomes: vec![[0; 8]; SLICES], ..Overall::default() },
            clients: HashMap::new(),
            groups: HashMap::new(),
            max_clients: max_clients.max(10),
            max_groups: max_groups.max(10),
            forgotten_clients: (0, 0),
            forgotten_groups: (0, 0),
        }
    }

    /// The slice of `t`, widening the slices (and merging every aggregate's) when it lies
    /// past the last.
    fn slice(&mut self, t: u64) -> usize {
        let origin = *self.clock.origin.get_or_insert(t - t % 1_000);
        loop {
            let i = (t.saturating_sub(origin) / self.clock.width.max(1)) as usize;
            if i < SLICES {
                self.clock.used = self.clock.used.max(i + 1);
                return i;
            }
            let next =
                WIDTHS.iter().copied().find(|w| *w > self.clock.width).unwrap_or(self.clock.width.saturating_mul(2));
            let k = (next / self.clock.width.max(1)) as usize;
            self.clock.width = next;
            self.clock.used = self.clock.used.div_ceil(k.max(1));
            merge(&mut self.overall.scores, k, add_row);
            merge(&mut self.overall.outcomes, k, add_row);
            for c in self.clients.values_mut() {
                merge(&mut c.bins, k, add16);
                merge(&mut c.flagged_bins, k, add16);
            }
            for g in self.groups.values_mut() {
                merge(&mut g.bins, k, add32);
                merge(&mut g.flagged_bins, k, add32);
            }
        }
    }

    /// One request; `shape`: the client's shape ([`shape`]), when the request's head is at
    /// hand (otherwise the engine's campaign or follow-up shape, else the user agent's hash).
    pub fn add(&mut self, r: &Replayed, shape: Option<u64>) {
        let slice = self.slice(r.t_ms);
        let d = &r.decision;
        let outcome = d.outcome();
        let o = &mut self.overall;
        if o.requests == 0 {
            (o.first, o.last) = (r.t_ms, r.t_ms);
        }
        o.requests += 1;
        o.flagged += u64::from(d.flagged());
        o.first = o.first.min(r.t_ms);
        o.last = o.last.max(r.t_ms);
        if let Some(row) = o.scores.get_mut(slice).and_then(|row| row.get_mut(bucket(d.score))) {
            *row = row.saturating_add(1);
        }
        let oi = outcome_index(outcome);
        if let Some(row) = o.outcomes.get_mut(slice).and_then(|row| row.get_mut(oi)) {
            *row = row.saturating_add(1);
        }
        if let Some(n) = o.outcome_totals.get_mut(oi) {
            *n += 1;
        }
        for reason in &d.reasons {
            *o.reasons.entry(reason).or_default() += 1;
        }

        let client = r.client();
        if !self.clients.contains_key(&client) && self.clients.len() >= self.max_clients {
            self.forget_clients();
        }
        self.clients.entry(client.clone()).or_insert_with(|| Client::new(r.t_ms)).add(r, slice);

        let shape = shape
            .or(d.campaign)
            .or(d.follow_up.map(|f| f.shape))
            .unwrap_or_else(|| fasthash::hash(&[b"report user agent", r.user_agent.trim().as_bytes()]));
        let mut keys = vec![GroupKey::Shape(shape)];
        keys.extend(d.fingerprint.map(GroupKey::Fingerprint));
        for key in keys {
            if !self.groups.contains_key(&key) && self.groups.len() >= self.max_groups {
                self.forget_groups();
            }
            let of = matches!(key, GroupKey::Fingerprint(_)).then_some(shape);
            self.groups.entry(key).or_insert_with(|| Group::new(r.t_ms, of)).add(r, &client, slice);
        }
    }

    /// Forgets the least active tenth of the clients (those never flagged first).
    fn forget_clients(&mut self) {
        let mut order: Vec<(bool, u32, u64, String)> =
            self.clients.iter().map(|(k, c)| (c.flagged > 0, c.requests, c.last, k.clone())).collect();
        order.sort_unstable();
        for (_, requests, _, k) in order.into_iter().take((self.max_clients / 10).max(1)) {
            self.clients.remove(&k);
            self.forgotten_clients.0 += 1;
            self.forgotten_clients.1 += u64::from(requests);
        }
    }

    fn forget_groups(&mut self) {
        let mut order: Vec<(bool, u32, u64, GroupKey)> =
            self.groups.iter().map(|(k, g)| (g.flagged > 0, g.requests, g.last, *k)).collect();
        order.sort_unstable();
        for (_, requests, _, k) in order.into_iter().take((self.max_groups / 10).max(1)) {
            self.groups.remove(&k);
            self.forgotten_groups.0 += 1;
            self.forgotten_groups.1 += u64::from(requests);
        }
    }

    /// The most suspicious clients: most flagged, then highest score, then most requests.
    fn top_clients(&self, n: usize) -> Vec<(&String, &Client)> {
        let mut v: Vec<(&String, &Client)> = self.clients.iter().collect();
        v.sort_by(|a, b| {
            b.1.flagged
                .cmp(&a.1.flagged)
                .then(b.1.score_max.total_cmp(&a.1.score_max))
                .then(b.1.requests.cmp(&a.1.requests))
                .then(a.0.cmp(b.0))
        });
        v.truncate(n);
        v
    }

    /// The campaigns shown, most flagged first, and the fingerprint groups told inside the card
    /// of a shown shape instead of their own.
    fn campaigns(&self) -> (Groups<'_>, Groups<'_>) {
        let mut v: Vec<(GroupKey, &Group)> =
            self.groups.iter().filter(|(_, g)| g.campaign()).map(|(k, g)| (*k, g)).collect();
        v.sort_by(|a, b| b.1.flagged.cmp(&a.1.flagged).then(b.1.requests.cmp(&a.1.requests)).then(a.0.cmp(&b.0)));
        let shown: Vec<(u64, u32)> = v
            .iter()
            .filter_map(|(k, g)| match k {
                GroupKey::Shape(s) => Some((*s, g.requests)),
                GroupKey::Fingerprint(_) => None,
            })
            .take(TOP_CAMPAIGNS)
            .collect();
        // Folded when the shape covers it (at least as many requests): otherwise the fingerprint
        // ties together more than the shape does, and has a card of its own.
        let (folded, cards): (Vec<_>, Vec<_>) = v.into_iter().partition(|(k, g)| {
            matches!(k, GroupKey::Fingerprint(_))
                && g.shape.is_some_and(|s| shown.iter().any(|(shape, n)| *shape == s && *n >= g.requests))
        });
        (cards.into_iter().take(TOP_CAMPAIGNS).collect(), folded)
    }

    /// The page.
    pub fn render(&self, about: &About) -> String {
        Page { r: self, about }.render()
    }
}

/// Every request of `requests` (as replayed), as the page; what a caller with the whole
/// replay in memory uses (`botgate report` streams through [`Report`] instead).
pub fn html(requests: &[Replayed], about: &About) -> String {
    let mut r = Report::default();
    for q in requests {
        r.add(q, None);
    }
    r.render(about)
}

/// Reads `input` (either input of `botgate replay`) through `policy` and returns the page.
/// Lines that cannot be read are reported on `errors` with their number and skipped.
pub fn report(
    policy: Policy,
    input: impl std::io::BufRead,
    mut about: About,
    errors: &mut dyn std::io::Write,
) -> std::io::Result<String> {
    let tls = policy.tls.header.clone();
    let mut replay = Replay::new(policy);
    let mut report = Report::default();
    let mut undecided = 0;
    about.skipped += each_record(input, &tls, errors, |n, record| {
        match replay.run(n, &record) {
            Some(r) => report.add(&r, Some(shape(&record.head, &tls))),
            None => undecided += 1,
        }
        Ok(())
    })?;
    about.undecided += undecided;
    Ok(report.render(&about))
}

/// Text from the log (or anywhere) for HTML: markup characters escaped, control and
/// direction-override characters replaced.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => out.push('\u{fffd}'),
            c if c.is_control() => out.push('\u{fffd}'),
            c => crate::challenge::pages::escape_char(c, &mut out),
        }
    }
    out
}

/// A count with thin thousands separators.
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p > 0.0 && p < 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

fn rate_text(per_min: f64) -> String {
    if per_min < 10.0 {
        format!("{per_min:.1}/min")
    } else {
        format!("{per_min:.0}/min")
    }
}

/// A duration in words: `45 s`, `12 min 30 s`, `3 h 05 min`, `2 d 3 h`.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 if s % 60 == 0 => format!("{} min", s / 60),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=172_799 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Times from 2000 on are read as wall-clock (the access log); earlier ones as seconds from the
/// log's start (plain JSONL's `t`).
const WALL_CLOCK_FROM_MS: u64 = 946_684_800_000;

struct Page<'a> {
    r: &'a Report,
    about: &'a About,
}

impl Page<'_> {
    fn origin(&self) -> u64 {
        self.r.clock.origin.unwrap_or(0)
    }

    fn wall_clock(&self) -> bool {
        self.origin() >= WALL_CLOCK_FROM_MS
    }

    /// A time as the axis shows it: `HH:MM[:SS]` UTC, or `+MM:SS` from the log's start.
    fn at(&self, t: u64, seconds: bool) -> String {
        if self.wall_clock() {
            let s = t / 1000;
            let (h, m, sec) = (s % 86_400 / 3600, s % 3600 / 60, s % 60);
            if seconds {
                format!("{h:02}:{m:02}:{sec:02}")
            } else {
                format!("{h:02}:{m:02}")
            }
        } else {
            let s = t.saturating_sub(self.origin()) / 1000;
            if s >= 3600 {
                format!("+{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
            } else {
                format!("+{:02}:{:02}", s / 60, s % 60)
            }
        }
    }

    fn date(&self, t: u64) -> String {
        let (y, m, d) = crate::base::calendar::civil_from_days((t / 86_400_000) as i64);
        format!("{y:04}-{m:02}-{d:02}")
    }

    fn slice_start(&self, i: usize) -> u64 {
        self.origin() + i as u64 * self.r.clock.width
    }

    fn slice_label(&self, i: usize) -> String {
        let secs = self.r.clock.width < 60_000;
        format!("{} – {}", self.at(self.slice_start(i), secs), self.at(self.slice_start(i + 1), secs))
    }

    fn slices(&self) -> usize {
        self.r.clock.used.max(1)
    }

    fn render(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = format!("botgate report: {}", self.about.log);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
            esc(&title)
        );
        self.header(&mut out);
        if self.r.overall.requests == 0 {
            out.push_str("<section><p class=\"empty\">No request was decided: nothing to show.</p></section>\n");
        } else {
            self.scores(&mut out);
            self.heatmap(&mut out);
            self.table(&mut out);
            self.campaigns(&mut out);
        }
        self.footer(&mut out);
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }

    fn header(&self, out: &mut String) {
        let o = &self.r.overall;
        let when = if o.requests == 0 {
            String::new()
        } else if self.wall_clock() {
            format!(
                "{} {} – {} UTC ({})",
                self.date(o.first),
                self.at(o.first, true),
                self.at(o.last, true),
                span(o.last - o.first)
            )
        } else {
            format!("{} of traffic", span(o.last - o.first))
        };
        let _ = write!(
            out,
            "<header><h1>botgate report</h1><p class=\"sub\"><span class=\"mono\">{}</span> replayed through \
             <span class=\"mono\">{}</span> · {}</p>\n<div class=\"kpis\">",
            esc(&self.about.log),
            esc(&self.about.policy),
            esc(&when)
        );
        let total = |name: &str| o.outcome_totals.get(outcome_index(name)).copied().unwrap_or(0);
        let kpi = |out: &mut String, value: String, label: &str, class: &str| {
            let _ = write!(out, "<div class=\"kpi {class}\"><b>{value}</b><span>{}</span></div>", esc(label));
        };
        kpi(out, num(o.requests), "requests", "");
        kpi(out, num(self.r.clients.len() as u64 + self.r.forgotten_clients.0), "client addresses", "");
        kpi(out, format!("{} <small>{}</small>", num(o.flagged), pct(o.flagged, o.requests)), "flagged", "warn");
        kpi(out, num(total("challenge")), "challenged", "chal");
        kpi(out, num(total("rate_limited")), "rate-limited", "rate");
        kpi(out, num(total("block")), "blocked", "block");
        let would = total("would_challenge") + total("would_block");
        if would > 0 {
            kpi(out, num(would), "would act (warn mode)", "warn");
        }
        let (shown, _) = self.r.campaigns();
        kpi(out, num(shown.len() as u64), "campaigns", "");
        out.push_str("</div>\n");
        let mut reasons: Vec<(&&str, &u64)> = o.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !reasons.is_empty() {
            out.push_str("<p class=\"reasons\">Most frequent reasons: ");
            for (i, (reason, n)) in reasons.iter().take(8).enumerate() {
                let _ = write!(
                    out,
                    "{}<span class=\"tag\">{}</span> {}",
                    if i > 0 { " " } else { "" },
                    esc(reason),
                    num(**n)
                );
            }
            out.push_str("</p>\n");
        }
        out.push_str("</header>\n");
    }

    /// X-axis labels under a chart of `n` slices drawn from `x0` with `cell` px each.
    fn axis(&self, out: &mut String, x0: f64, cell: f64, y: f64) {
        let n = self.slices();
        let step = (n as f64 / 8.0).ceil().max(1.0) as usize;
        let secs = self.r.clock.width < 60_000;
        for i in (0..=n).step_by(step) {
            let x = x0 + i as f64 * cell;
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" class=\"tick\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                y,
                y + 4.0,
                y + 16.0,
                esc(&self.at(self.slice_start(i), secs))
            );
        }
    }

    fn scores(&self, out: &mut String) {
        let n = self.slices();
        let o = &self.r.overall;
        let (x0, width) = (118.0, 1000.0);
        let cell = (width - x0 - 12.0) / n as f64;
        let row_h = 22.0;
        let max = o.scores.iter().take(n).flat_map(|r| r.iter()).copied().max().unwrap_or(0).max(1);
        let heat_h = row_h * BUCKETS.len() as f64;
        let bars_top = heat_h + 40.0;
        let bars_h = 150.0;
        let total_h = bars_top + bars_h + 28.0;
        let _ = write!(
            out,
            "<section id=\"scores\"><h2><span>1</span>Scores and outcomes over time</h2>\n<p class=\"lead\">Each \
             column is {} of traffic. Top: how many requests fell in each score band (darker is more; green below the \
             challenge band, amber in it, red at the block end). Bottom: what the policy did with them.</p>\n\
             <svg viewBox=\"0 0 {width} {total_h}\" role=\"img\" aria-label=\"score bands and outcomes per time slice\">",
            span(self.r.clock.width)
        );
        for (b, (lo, label)) in BUCKETS.iter().enumerate().rev() {
            let y = (BUCKETS.len() - 1 - b) as f64 * row_h;
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text>",
                x0 - 8.0,
                y + row_h / 2.0 + 4.0,
                esc(label)
            );
            for i in 0..n {
                let c = o.scores.get(i).and_then(|r| r.get(b)).copied().unwrap_or(0);
                let v =
                    if c == 0 { 0.0 } else { 0.12 + 0.88 * (f64::from(c) + 1.0).ln() / (f64::from(max) + 1.0).ln() };
                let fill = if c == 0 {
                    "#f6f7f9".to_string()
                } else if *lo < 0.3 {
                    mix("#e7f3ea", "#1f7a4a", v)
                } else if *lo < 0.75 {
                    mix("#fbf0d4", "#c27a00", v)
                } else {
                    mix("#f9e0e0", "#a3141f", v)
                };
                let _ = write!(
                    out,
                    "<rect x=\"{:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{fill}\"><title>{} · score {} · {} \
                     request{}</title></rect>",
                    x0 + i as f64 * cell,
                    (cell - 1.0).max(0.5),
                    row_h - 2.0,
                    esc(&self.slice_label(i)),
                    esc(label),
                    num(u64::from(c)),
                    if c == 1 { "" } else { "s" }
                );
            }
        }
        let _ = write!(
            out,
            "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" class=\"band\"/>\
             <line x1=\"{x0}\" y1=\"{y2:.1}\" x2=\"{:.1}\" y2=\"{y2:.1}\" class=\"band\"/>",
            x0 + n as f64 * cell,
            x0 + n as f64 * cell,
            y = 2.0 * row_h - 1.0,
            y2 = 5.0 * row_h - 1.0
        );
        self.axis(out, x0, cell, heat_h);
        // Outcomes, stacked.
        let peak =
            o.outcomes.iter().take(n).map(|r| r.iter().map(|c| u64::from(*c)).sum::<u64>()).max().unwrap_or(0).max(1);
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">0</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label muted\" text-anchor=\"end\">requests</text>\
             <line x1=\"{x0}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"grid\"/>",
            x0 - 8.0,
            bars_top + 10.0,
            num(peak),
            x0 - 8.0,
            bars_top + bars_h,
            x0 - 8.0,
            bars_top + bars_h / 2.0 + 4.0,
            bars_top,
            x0 + n as f64 * cell,
            bars_top
        );
        for i in 0..n {
            let row = o.outcomes.get(i).copied().unwrap_or([0; 8]);
            let all: u32 = row.iter().sum();
            let mut y = bars_top + bars_h;
            let mut tip = format!("{} · {} requests", self.slice_label(i), num(u64::from(all)));
            for (k, (_, label, colour)) in OUTCOMES.iter().enumerate() {
                let c = row.get(k).copied().unwrap_or(0);
                if c == 0 {
                    continue;
                }
                let _ = write!(tip, "\n{label}: {}", num(u64::from(c)));
                let h = f64::from(c) / peak as f64 * bars_h;
                y -= h;
                let _ = write!(
                    out,
                    "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{colour}\"/>",
                    x0 + i as f64 * cell,
                    (cell - 1.0).max(0.5)
                );
            }
            if all > 0 {
                let _ = write!(
                    out,
                    "<rect x=\"{:.2}\" y=\"{bars_top:.1}\" width=\"{:.2}\" height=\"{bars_h:.1}\" fill=\"transparent\"><title>{}</title></rect>",
                    x0 + i as f64 * cell,
                    cell.max(0.5),
                    esc(&tip)
                );
            }
        }
        self.axis(out, x0, cell, bars_top + bars_h);
        out.push_str("</svg>\n<div class=\"legend\">");
        for (k, (_, label, colour)) in OUTCOMES.iter().enumerate() {
            let n = self.r.overall.outcome_totals.get(k).copied().unwrap_or(0);
            if n > 0 {
                let _ =
                    write!(out, "<span><i style=\"background:{colour}\"></i>{} <b>{}</b></span>", esc(label), num(n));
            }
        }
        out.push_str("</div>\n</section>\n");
    }

    fn heatmap(&self, out: &mut String) {
        let top = self.r.top_clients(TOP_CLIENTS);
        let n = self.slices();
        let (label_w, metric_w, gap, width) = (150.0, 70.0, 18.0, 1000.0);
        let metrics = ["max score", "flagged", "rate/min", "regularity", "endpoints", "errors"];
        let x_slices = label_w + metric_w * metrics.len() as f64 + gap;
        let cell = (width - x_slices - 6.0) / n as f64;
        let row_h = 20.0;
        let head_h = 30.0;
        let h = head_h + row_h * top.len() as f64 + 26.0;
        let _ = write!(
            out,
            "<section id=\"heatmap\"><h2><span>2</span>The most suspicious clients, side by side</h2>\n<p class=\"lead\">\
             One row per address, {} of them: the most flagged first, then the highest scores, with people for \
             contrast when few were flagged. Left: <b>max score</b>; share of requests \
             <b>flagged</b>; <b>rate</b> in requests per minute while active; <b>regularity</b>, the coefficient of \
             variation of the gaps between requests (near 0 is a metronome: a machine; people are above 1); distinct \
             <b>endpoints</b> (paths without query; blue, as many is a crawl and one a hammer); <b>errors</b>, the share of upstream answers of 400 or more. The \
             redder, the more it looks like a bot. Right: requests per time slice (blue), red where any was \
             flagged.</p>\n<svg viewBox=\"0 0 {width} {h}\" role=\"img\" aria-label=\"per-client heatmap\">",
            top.len()
        );
        for (m, name) in metrics.iter().enumerate() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"colhead\" text-anchor=\"middle\">{name}</text>",
                label_w + (m as f64 + 0.5) * metric_w,
                head_h - 10.0
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"colhead\">requests per {} slice</text>",
            x_slices,
            head_h - 10.0,
            span(self.r.clock.width)
        );
        let peak = top.iter().flat_map(|(_, c)| c.bins.iter().take(n)).copied().max().unwrap_or(0).max(1);
        for (row, (addr, c)) in top.iter().enumerate() {
            let y = head_h + row as f64 * row_h;
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"addr\" text-anchor=\"end\">{}</text>",
                label_w - 8.0,
                y + row_h / 2.0 + 4.0,
                esc(&clip_to(addr, 22))
            );
            let (paths, full) = c.paths.estimate();
            let cv = c.gaps.cv();
            let flagged_share = f64::from(c.flagged) / f64::from(c.requests.max(1));
            let cells: [(f64, String, String); 6] = [
                (
                    c.score_max,
                    format!("{:.2}", c.score_max),
                    format!("max score {:.3}, mean {:.3}", c.score_max, c.mean()),
                ),
                (
                    flagged_share,
                    pct(u64::from(c.flagged), u64::from(c.requests)),
                    format!("{} of {} requests flagged", c.flagged, c.requests),
                ),
                (
                    ((1.0 + c.rate()).ln() / 301f64.ln()).min(1.0),
                    rate_text(c.rate()).replace("/min", ""),
                    format!("{} over {}", rate_text(c.rate()), span(c.last - c.first)),
                ),
                match cv {
                    Some(cv) => (
                        (1.0 - cv).clamp(0.0, 1.0),
                        format!("{cv:.2}"),
                        format!("coefficient of variation of {} gaps: {cv:.2}", c.gaps.n),
                    ),
                    None => (-1.0, "–".into(), "too few requests to tell".into()),
                },
                (
                    ((1.0 + paths).ln() / 501f64.ln()).min(1.0),
                    format!("{}{}", paths.round(), if full { "+" } else { "" }),
                    format!("about {} distinct path{}", paths.round(), if paths.round() == 1.0 { "" } else { "s" }),
                ),
                (
                    c.error_ratio(),
                    pct(u64::from(c.errors), u64::from(c.requests)),
                    format!("{} of {} answers were 400 or more", c.errors, c.requests),
                ),
            ];
            for (m, (v, text, tip)) in cells.iter().enumerate() {
                // Distinct endpoints are a magnitude (many is a crawl, one a hammer), not a
                // suspicion: blue.
                let fill = match (m, *v < 0.0) {
                    (_, true) => "#f1f2f4".to_string(),
                    (4, false) => mix("#eef3fa", "#1f5fa8", *v),
                    _ => heat(*v),
                };
                let ink = if *v > 0.55 { "#fff" } else { "#1d2733" };
                let x = label_w + m as f64 * metric_w;
                let _ = write!(
                    out,
                    "<g><title>{} · {}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" class=\"cell\" text-anchor=\"middle\" fill=\"{ink}\">{}</text></g>",
                    esc(addr),
                    esc(tip),
                    metric_w - 2.0,
                    row_h - 2.0,
                    x + metric_w / 2.0 - 1.0,
                    y + row_h / 2.0 + 3.5,
                    esc(text)
                );
            }
            for i in 0..n {
                let req = c.bins.get(i).copied().unwrap_or(0);
                let fl = c.flagged_bins.get(i).copied().unwrap_or(0);
                let fill = if req == 0 {
                    "#f6f7f9".to_string()
                } else {
                    let v = 0.15 + 0.85 * (f64::from(req) + 1.0).ln() / (f64::from(peak) + 1.0).ln();
                    if fl > 0 {
                        mix("#fbe3e1", "#b3202c", v)
                    } else {
                        mix("#e3eefa", "#1f5fa8", v)
                    }
                };
                let _ = write!(
                    out,
                    "<rect x=\"{:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{fill}\">",
                    x_slices + i as f64 * cell,
                    (cell - 1.0).max(0.5),
                    row_h - 2.0
                );
                if req > 0 {
                    let _ = write!(
                        out,
                        "<title>{} · {} · {} request{}, {} flagged</title>",
                        esc(addr),
                        esc(&self.slice_label(i)),
                        req,
                        if req == 1 { "" } else { "s" },
                        fl
                    );
                }
                out.push_str("</rect>");
            }
        }
        self.axis(out, x_slices, cell, head_h + row_h * top.len() as f64);
        out.push_str("</svg>\n</section>\n");
    }

    fn table(&self, out: &mut String) {
        let top: Vec<(&String, &Client)> =
            self.r.top_clients(TOP_CLIENTS).into_iter().filter(|(_, c)| c.suspicious()).collect();
        let _ = write!(
            out,
            "<section id=\"clients\"><h2><span>3</span>The {} most suspicious clients</h2>\n<p class=\"lead\">Clients \
             flagged at least once or scored {SUSPICIOUS} or more, most flagged first.</p>\n",
            top.len()
        );
        if top.is_empty() {
            out.push_str("<p class=\"empty\">None.</p>\n</section>\n");
            return;
        }
        let _ = write!(
            out,
            "<table>\n<thead><tr>\
             <th>#</th><th>address</th><th class=\"n\">requests</th><th class=\"n\">flagged</th><th class=\"n\">score \
             max / mean</th><th>top reasons</th><th>user agents seen</th><th>sessions</th><th>active</th></tr></thead>\n<tbody>"
        );
        for (i, (addr, c)) in top.iter().enumerate() {
            let reasons = most(&c.reasons, 3)
                .iter()
                .map(|(r, n)| format!("<div class=\"line\"><span class=\"tag\">{}</span> ×{}</div>", esc(r), n))
                .collect::<String>();
            let mut uas = most(&c.uas, UAS_PER_CLIENT).iter().map(|(u, n)| ua_line(u, *n)).collect::<Vec<_>>().join("");
            if c.more_uas {
                uas.push_str("<div class=\"muted\">and more</div>");
            }
            let sessions = format!(
                "{}{} <span class=\"mono muted\">{}</span>",
                c.sessions.len(),
                if c.more_sessions { "+" } else { "" },
                c.sessions
                    .iter()
                    .take(1)
                    .map(|s| format!("{s:016x}").chars().take(8).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let _ = writeln!(
                out,
                "<tr{}><td class=\"muted\">{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{} / {:.2}</td><td class=\"why\">{}</td><td class=\"ua\">{}</td>\
                 <td class=\"nw\">{}</td><td class=\"muted nw\">{}–{}</td></tr>",
                if c.flagged == 0 { " class=\"calm\"" } else { "" },
                i + 1,
                esc(addr),
                num(u64::from(c.requests)),
                num(u64::from(c.flagged)),
                score_badge(c.score_max),
                c.mean(),
                if reasons.is_empty() { "<span class=\"muted\">none</span>".to_string() } else { reasons },
                uas,
                sessions,
                esc(&self.at(c.first, true)),
                esc(&self.at(c.last, true)),
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn campaigns(&self, out: &mut String) {
        let (cards, folded) = self.r.campaigns();
        out.push_str(
            "<section id=\"campaigns\"><h2><span>4</span>Campaigns</h2>\n<p class=\"lead\">Flagged traffic grouped across \
             addresses and sessions: by <b>client shape</b> (user agent, languages, which browser headers are sent, TLS \
             fingerprint: what a scripted client rotating addresses keeps) or by the bot detector's <b>request \
             fingerprint</b>. Each timeline shows all of the group's requests per slice, red where flagged; the line \
             marks the first challenge, block or rate limit.</p>\n",
        );
        if cards.is_empty() {
            out.push_str("<p class=\"empty\">No flagged traffic was shared across addresses or sessions.</p>\n");
        }
        for (i, (key, g)) in cards.iter().enumerate() {
            self.campaign(out, i + 1, *key, g, &folded);
        }
        out.push_str("</section>\n");
    }

    fn campaign(&self, out: &mut String, number: usize, key: GroupKey, g: &Group, folded: &[(GroupKey, &Group)]) {
        let (kind, id) = match key {
            GroupKey::Shape(s) => ("client shape", s),
            GroupKey::Fingerprint(f) => ("request fingerprint", f),
        };
        let top_ua = most(&g.uas.iter().map(|(u, n, _)| (u.clone(), *n)).collect::<Vec<_>>(), 1)
            .into_iter()
            .next()
            .map(|(u, _)| u)
            .unwrap_or_default();
        let _ = write!(
            out,
            "<article class=\"campaign\"><h3><span class=\"num\">{number}</span> {kind} <span class=\"mono\">{:016x}</span>{}</h3>\n\
             <p class=\"ua1 mono\">{}</p>\n",
            id,
            if g.named { " <span class=\"badge\">named a campaign by the engine</span>" } else { "" },
            if top_ua.is_empty() { "(no user agent)".to_string() } else { esc(&top_ua) }
        );
        let plus = |more: bool| if more { "+" } else { "" };
        let _ = writeln!(
            out,
            "<div class=\"facts\"><div><b>{}</b> requests</div><div><b>{}</b> flagged</div><div><b>{}{}</b> address{}</div>\
             <div><b>{}{}</b> session{}</div><div><b>{}{}</b> user agent{}</div><div><b>{}</b> active</div></div>",
            num(u64::from(g.requests)),
            num(u64::from(g.flagged)),
            g.addresses.len(),
            plus(g.more_addresses),
            if g.addresses.len() == 1 { "" } else { "es" },
            g.sessions.len(),
            plus(g.more_sessions),
            if g.sessions.len() == 1 { "" } else { "s" },
            g.uas.len(),
            plus(g.more_uas),
            if g.uas.len() == 1 { "" } else { "s" },
            esc(&span(g.last - g.first)),
        );
        out.push_str("<div class=\"cbody\"><div class=\"spark\">");
        self.sparkline(out, g);
        let _ = write!(out, "<p class=\"verdict\">{}</p></div><div class=\"details\">", self.verdict(g));
        let mut addrs: Vec<(&String, &u64)> = g.addresses.iter().collect();
        addrs.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
        let action = g.action.map(|(t, _, _)| t);
        let shown = addrs
            .iter()
            .take(24)
            .map(|(a, t)| {
                let new = action.is_some_and(|at| **t > at);
                format!("<span class=\"ip{}\">{}</span>", if new { " new" } else { "" }, esc(a))
            })
            .collect::<Vec<_>>()
            .join(" ");
        let more = addrs.len().saturating_sub(24);
        let _ = write!(
            out,
            "<div><h4>addresses{}</h4><p class=\"mono ips\">{shown}{}</p></div>",
            if action.is_some() { " <small>(underlined: first seen after the first action)</small>" } else { "" },
            if more > 0 || g.more_addresses {
                format!(" <span class=\"muted\">and {more}{} more</span>", plus(g.more_addresses))
            } else {
                String::new()
            }
        );
        let mut uas: Vec<&(String, u32, u64)> = g.uas.iter().collect();
        uas.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let ua_html: String = uas.iter().take(6).map(|(u, n, _)| ua_line(u, *n)).collect();
        let _ = write!(out, "<div><h4>user agents</h4>{ua_html}</div>");
        let paths = most(&g.paths.iter().map(|(p, n)| (p.clone(), *n)).collect::<Vec<_>>(), 5)
            .iter()
            .map(|(p, n)| {
                format!(
                    "<div><span class=\"mono\">{}</span> <span class=\"muted\">×{}</span></div>",
                    esc(p),
                    num(u64::from(*n))
                )
            })
            .collect::<String>();
        let reasons = most(&g.reasons, 5)
            .iter()
            .map(|(r, n)| format!("<span class=\"tag\">{}</span>&#8239;×{}", esc(r), num(u64::from(*n))))
            .collect::<Vec<_>>()
            .join(" ");
        let (distinct, full) = g.distinct.estimate();
        let _ = write!(
            out,
            "<div><h4>{} <small>({}{} distinct, without query)</small></h4>{paths}</div><div><h4>reasons</h4><p>{reasons}</p></div>",
            if g.paths.values().any(|n| *n > 1) { "top paths" } else { "paths, for example" },
            distinct.round(),
            if full { "+" } else { "" }
        );
        let inside: Vec<&(GroupKey, &Group)> =
            folded.iter().filter(|(_, f)| matches!(key, GroupKey::Shape(s) if f.shape == Some(s))).collect();
        if !inside.is_empty() {
            let (reqs, addrs) = inside
                .iter()
                .fold((0u64, 0usize), |(r, a), (_, f)| (r + u64::from(f.requests), a.max(f.addresses.len())));
            let _ = write!(
                out,
                "<div><h4>repeated requests</h4><p>{} detector fingerprint{} of this shape repeated across addresses \
                 ({} requests; up to {} addresses for one).</p></div>",
                inside.len(),
                if inside.len() == 1 { "" } else { "s" },
                num(reqs),
                addrs
            );
        }
        out.push_str("</div></div></article>\n");
    }

    fn sparkline(&self, out: &mut String, g: &Group) {
        let n = self.slices();
        let (w, h, pad_b, pad_t) = (460.0, 100.0, 18.0, 22.0);
        let cell = w / n as f64;
        let peak = g.bins.iter().take(n).copied().max().unwrap_or(0).max(1);
        let plot = h - pad_b - pad_t;
        let _ = write!(out, "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"requests per slice\">");
        let _ =
            write!(out, "<line x1=\"0\" y1=\"{:.1}\" x2=\"{w}\" y2=\"{:.1}\" class=\"grid\"/>", h - pad_b, h - pad_b);
        for i in 0..n {
            let all = g.bins.get(i).copied().unwrap_or(0);
            if all == 0 {
                continue;
            }
            let fl = g.flagged_bins.get(i).copied().unwrap_or(0);
            let ha = f64::from(all) / f64::from(peak) * plot;
            let hf = f64::from(fl) / f64::from(peak) * plot;
            let x = i as f64 * cell;
            let _ = write!(
                out,
                "<g><title>{} · {} request{}, {} flagged</title><rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#9fb3c8\"/>\
                 <rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#c8343f\"/></g>",
                esc(&self.slice_label(i)),
                all,
                if all == 1 { "" } else { "s" },
                fl,
                h - pad_b - ha,
                (cell - 0.8).max(0.5),
                ha,
                h - pad_b - hf,
                (cell - 0.8).max(0.5),
                hf
            );
        }
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\" class=\"axis\">{}</text><text x=\"{w}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis muted\" text-anchor=\"middle\">requests per {} (peak {})</text>",
            h - 4.0,
            esc(&self.at(self.slice_start(0), self.r.clock.width < 60_000)),
            h - 4.0,
            esc(&self.at(self.slice_start(n), self.r.clock.width < 60_000)),
            w / 2.0,
            h - 4.0,
            span(self.r.clock.width),
            peak
        );
        if let Some((t, outcome, _)) = g.action {
            let x = (t.saturating_sub(self.origin()) as f64 / self.r.clock.width as f64 * cell).clamp(1.0, w - 1.0);
            let anchor = if x > w * 0.7 { "end" } else { "start" };
            let dx = if x > w * 0.7 { -4.0 } else { 4.0 };
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"4\" x2=\"{x:.1}\" y2=\"{:.1}\" class=\"mark\"/>\
                 <text x=\"{:.1}\" y=\"13\" class=\"markt\" text-anchor=\"{anchor}\">first {} {}</text>",
                h - pad_b,
                x + dx,
                esc(&verb(outcome)),
                esc(&self.at(t, true))
            );
        }
        out.push_str("</svg>");
    }

    /// The comparison in words: what the first action did to the group's traffic.
    fn verdict(&self, g: &Group) -> String {
        let Some((at, outcome, before)) = g.action else {
            let what = match g.flag {
                Some((t, o)) => format!(
                    "First flagged at {} ({}), but never challenged, blocked or rate-limited: the policy only observed \
                     it (warn mode or a score below every action).",
                    self.at(t, true),
                    o.replace('_', " ")
                ),
                None => "Never challenged or blocked.".into(),
            };
            return esc(&what);
        };
        let before_ms = at.saturating_sub(g.first);
        let after_ms = g.last.saturating_sub(at);
        let rate_before = f64::from(before.max(1)) * 60_000.0 / before_ms.max(1_000) as f64;
        let new_addresses = g.addresses.values().filter(|t| **t > at).count();
        let new_uas = g.uas.iter().filter(|(_, _, t)| *t > at).count();
        let new_sessions = g.sessions.values().filter(|t| **t > at).count();
        let mut s = format!("First {} at {}", verb(outcome), self.at(at, true));
        if before > 0 {
            let _ = write!(
                s,
                ", after {} request{} in {}",
                num(u64::from(before)),
                if before == 1 { "" } else { "s" },
                span(before_ms)
            );
        } else {
            s.push_str(", on its first request");
        }
        s.push_str(". ");
        if g.after == 0 {
            s.push_str("No request came after it: the traffic stopped.");
            return esc(&s);
        }
        let rate_after = f64::from(g.after) * 60_000.0 / after_ms.max(1_000) as f64;
        let trend = if before == 0 {
            format!("Afterwards it ran at {}", rate_text(rate_after))
        } else if rate_after < rate_before * 0.67 {
            format!("Rate fell from {} to {}", rate_text(rate_before), rate_text(rate_after))
        } else if rate_after > rate_before * 1.5 {
            format!("Rate rose from {} to {}", rate_text(rate_before), rate_text(rate_after))
        } else {
            format!("Rate held at {} (before {})", rate_text(rate_after), rate_text(rate_before))
        };
        let _ = write!(
            s,
            "{trend} over the following {}; {} new address{}, {} new session{} and {} new user agent{} after. {} of the {} \
             requests after it were let through.",
            span(after_ms),
            new_addresses,
            if new_addresses == 1 { "" } else { "es" },
            new_sessions,
            if new_sessions == 1 { "" } else { "s" },
            new_uas,
            if new_uas == 1 { "" } else { "s" },
            num(u64::from(g.through_after)),
            num(u64::from(g.after)),
        );
        let slowed = before > 0 && rate_after < rate_before * 0.67;
        let rotated = new_addresses > 0 || new_uas > 0;
        let conclusion = match (slowed, rotated, g.through_after == 0) {
            (_, _, true) => " Nothing got through after the first action.",
            (true, false, _) => " The control slowed it down.",
            (true, true, _) => " The control slowed it down, but it rotated to new addresses or user agents.",
            (false, true, _) => " The control did not slow it down: it rotated to new addresses or user agents.",
            (false, false, _) => " The control did not slow it down.",
        };
        s.push_str(conclusion);
        esc(&s)
    }

    fn footer(&self, out: &mut String) {
        let r = self.r;
        let _ = write!(
            out,
            "<footer><h2>About this report</h2><ul>\
             <li>Made by <span class=\"mono\">botgate report</span>: the log replayed through the policy natively, each \
             request at its recorded time. A replay cannot have lookups (reverse DNS, vendor scores read as failed), live \
             feeds or cookie values (sessions fall back to the client's fingerprint).</li>\
             <li>Times are {}; the time axis has at most {SLICES} slices, now {} each.</li>\
             <li>Bounded memory: aggregates only, at most {} clients and {} client shapes and fingerprints tracked; when \
             full, the least active tenth (never-flagged first) is forgotten. Forgotten here: {} client{} ({} requests), \
             {} group{} ({} requests).</li>\
             <li>Per client at most {UAS_PER_CLIENT} user agents and {SESSIONS_PER_CLIENT} sessions are listed, per \
             campaign {ADDRESSES_PER_GROUP} addresses, {SESSIONS_PER_GROUP} sessions and {UAS_PER_GROUP} user agents \
             (a + marks more); past 32, distinct paths are estimated (1024-bit linear counting).</li>",
            if self.wall_clock() { "UTC" } else { "from the log's first request" },
            span(r.clock.width),
            num(r.max_clients as u64),
            num(r.max_groups as u64),
            num(r.forgotten_clients.0),
            if r.forgotten_clients.0 == 1 { "" } else { "s" },
            num(r.forgotten_clients.1),
            num(r.forgotten_groups.0),
            if r.forgotten_groups.0 == 1 { "" } else { "s" },
            num(r.forgotten_groups.1),
        );
        if self.about.skipped > 0 || self.about.undecided > 0 {
            let _ = write!(
                out,
                "<li>{} line{} could not be read (listed on stderr); {} request{} on routes where botgate is off.</li>",
                num(self.about.skipped as u64),
                if self.about.skipped == 1 { "" } else { "s" },
                num(self.about.undecided as u64),
                if self.about.undecided == 1 { " was" } else { "s were" }
            );
        }
        out.push_str(
            "<li>Everything from the log is shown as text. This page loads nothing: no script, no font, no image.</li>\
             </ul></footer>\n",
        );
    }
}

fn verb(outcome: &str) -> String {
    match outcome {
        "challenge" => "challenged".into(),
        "block" => "blocked".into(),
        "rate_limited" => "rate-limited".into(),
        other => other.replace('_', " "),
    }
}

/// A user agent on one line (cut with an ellipsis; whole in the tooltip), with its count.
fn ua_line(ua: &str, n: u32) -> String {
    let shown = if ua.is_empty() { "(none)".to_string() } else { esc(ua) };
    format!("<div class=\"line\" title=\"{shown}\"><span class=\"muted\">×{n}</span> <span class=\"mono\">{shown}</span></div>")
}

fn score_badge(score: f64) -> String {
    let ink = if score > 0.55 { "#fff" } else { "#1d2733" };
    format!("<span class=\"score\" style=\"background:{};color:{ink}\">{score:.2}</span>", heat(score))
}

fn clip_to(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    } else {
        s.to_string()
    }
}

fn rgb(hex: &str) -> (f64, f64, f64) {
    let c = |i: usize| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).map_or(0.0, f64::from);
    (c(1), c(3), c(5))
}

/// The colour `v` (0–1) of the way from `a` to `b`.
fn mix(a: &str, b: &str, v: f64) -> String {
    let (a, b, v) = (rgb(a), rgb(b), v.clamp(0.0, 1.0));
    let m = |x: f64, y: f64| (x + (y - x) * v).round() as u8;
    format!("#{:02x}{:02x}{:02x}", m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Suspicion (0–1) as a colour: pale grey-green, yellow, orange, red, dark red.
fn heat(v: f64) -> String {
    const STOPS: [(f64, &str); 5] =
        [(0.0, "#eef3ee"), (0.25, "#fbe7a6"), (0.5, "#f4a45b"), (0.75, "#d9472f"), (1.0, "#8e1626")];
    let v = v.clamp(0.0, 1.0);
    for pair in STOPS.windows(2) {
        if let [(lo, a), (hi, b)] = pair {
            if v <= *hi {
                return mix(a, b, (v - lo) / (hi - lo));
            }
        }
    }
    "#8e1626".into()
}

const CSS: &str = r#"
:root { --ink:#1d2733; --muted:#6a7685; --line:#e3e7ec; --bg:#f5f7fa; --card:#fff; --accent:#2b59c3; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 40px; }
header h1 { margin: 0 0 2px; font-size: 26px; letter-spacing: -0.01em; }
.sub { margin: 0 0 16px; color: var(--muted); }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 10px; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 10px 16px; min-width: 120px;
  border-top: 4px solid #c3cad3; }
.kpi b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.kpi b small { font-size: 13px; color: var(--muted); font-weight: 500; }
.kpi span { color: var(--muted); font-size: 12.5px; }
.kpi.warn { border-top-color: #e8b64a; } .kpi.chal { border-top-color: #e07b39; }
.kpi.rate { border-top-color: #9d78c2; } .kpi.block { border-top-color: #c0303c; }
.reasons { color: var(--muted); margin: 6px 0 0; }
.tag { display: inline-block; background: #eef1f6; border: 1px solid #dde3ec; border-radius: 5px; padding: 0 6px;
  font: 12px ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; color: #2d3b4e; }
section { overflow-x: auto; }
section, footer { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 18px 22px;
  margin-top: 18px; box-shadow: 0 1px 2px rgba(20,30,50,.04); }
h2 { margin: 0 0 6px; font-size: 18px; display: flex; align-items: center; gap: 10px; }
h2 span { display: inline-grid; place-items: center; width: 26px; height: 26px; border-radius: 50%; background: var(--ink);
  color: #fff; font-size: 13px; }
.lead { color: var(--muted); margin: 0 0 12px; max-width: 980px; }
svg { display: block; width: 100%; height: auto; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .label { font-size: 11px; fill: #4a5666; }
svg .axis { font-size: 10.5px; fill: #6a7685; }
svg .muted { fill: #8a95a3; }
svg .tick { stroke: #b9c2cc; }
svg .grid { stroke: #d5dbe2; }
svg .band { stroke: #ffffff; stroke-width: 2; }
svg .colhead { font-size: 11px; font-weight: 600; fill: #394556; }
svg .addr { font: 11.5px ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; fill: #1d2733; }
svg .cell { font-size: 11px; font-variant-numeric: tabular-nums; }
svg .mark { stroke: #1d2733; stroke-width: 1.5; stroke-dasharray: 3 2; }
svg .markt { font-size: 10.5px; font-weight: 600; fill: #1d2733; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin-top: 8px; font-size: 12.5px; color: #394556; }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 5px; vertical-align: -1px; }
table { width: 100%; border-collapse: collapse; font-size: 12.5px; }
th { text-align: left; font-weight: 600; color: #394556; border-bottom: 2px solid var(--line); padding: 6px 7px; white-space: nowrap; }
td { border-bottom: 1px solid var(--line); padding: 6px 7px; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.calm td { color: #7b8694; }
td.ua { max-width: 250px; }
td.nw { white-space: nowrap; }
td.why { white-space: nowrap; }
td .line { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
td.ua .mono { font-size: 11.5px; }
td.mono, td.n { white-space: nowrap; }
.score { display: inline-block; min-width: 38px; text-align: center; border-radius: 4px; padding: 0 4px; font-weight: 600; }
.campaign { border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; margin-top: 14px; background: #fcfdfe; }
.campaign h3 { margin: 0; font-size: 15px; display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.campaign h3 .num { display: inline-grid; place-items: center; width: 22px; height: 22px; border-radius: 6px;
  background: #c0303c; color: #fff; font-size: 12px; }
.badge { background: #fdecea; color: #a3141f; border: 1px solid #f3c2bd; border-radius: 20px; padding: 1px 8px;
  font-size: 11.5px; font-weight: 600; }
.ua1 { margin: 4px 0 8px; color: #394556; overflow-wrap: anywhere; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-bottom: 8px; color: var(--muted); }
.facts b { color: var(--ink); font-variant-numeric: tabular-nums; }
.cbody { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 18px; }
.verdict { background: #f3f6fb; border-left: 4px solid var(--accent); padding: 8px 12px; margin: 8px 0 0; border-radius: 0 6px 6px 0; }
.details h4 { margin: 6px 0 2px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.details h4 small { text-transform: none; letter-spacing: 0; font-weight: 400; }
.details p { margin: 0; }
.details .mono { overflow-wrap: anywhere; }
.ips .ip { display: inline-block; margin-right: 8px; }
.ips .ip.new { text-decoration: underline; text-decoration-color: #c0303c; text-decoration-thickness: 2px; }
.empty { color: var(--muted); font-style: italic; }
footer h2 { font-size: 15px; }
footer ul { margin: 6px 0 0; padding-left: 18px; color: var(--muted); font-size: 12.5px; }
@media (max-width: 820px) { .cbody { grid-template-columns: 1fr; } }
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::decision::record::{Decision, Verdict};
    use crate::policy::ChallengeType;

    fn request(t_s: f64, ip: &str, path: &str, ua: &str) -> Replayed {
        Replayed {
            line: 1,
            t_ms: (t_s * 1000.0) as u64,
            method: "GET".into(),
            path: path.into(),
            user_agent: ua.into(),
            status: 200,
            recorded: None,
            decision: Decision::pass(ip.parse().ok()),
        }
    }

    fn flagged(mut r: Replayed, verdict: Verdict, score: f64) -> Replayed {
        r.decision.verdict = verdict;
        r.decision.score = score;
        r.decision.reasons = vec!["fingerprint_repeat"];
        r
    }

    fn about() -> About {
        About { log: "traffic.jsonl".into(), policy: "policy.json".into(), ..About::default() }
    }

    /// A person browsing from `ip` and a scripted client rotating across ten addresses, one
    /// request fingerprint and one user agent, challenged from its 40th request on.
    fn traffic() -> Vec<Replayed> {
        let mut v = Vec::new();
        for i in 0..30 {
            v.push(request(
                i as f64 * 17.3 + (i % 7) as f64 * 2.1,
                "203.0.113.5",
                &format!("/products/{i}"),
                "Firefox",
            ));
        }
        for i in 0..120 {
            let mut r =
                request(100.0 + i as f64 * 2.0, &format!("198.51.100.{}", i % 10), "/api/prices", "scraper/1.0");
            r.decision.fingerprint = Some(0xfeed);
            r.decision.session = Some(1000 + (i % 10) as u64);
            if i >= 40 {
                r = flagged(r, Verdict::Challenge(ChallengeType::ProofOfWork), 0.6);
            }
            v.push(r);
        }
        v
    }

    #[test]
    fn a_hostile_user_agent_is_shown_as_text() {
        let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
        let mut v = traffic();
        let mut r = flagged(request(50.0, "192.0.2.66", "/<svg onload=alert(3)>?q='x'", hostile), Verdict::Block, 0.95);
        r.decision.session = Some(7);
        v.push(r.clone());
        r.decision.client_ip = "192.0.2.67".parse().ok();
        r.decision.session = Some(8);
        v.push(r);
        let page = html(&v, &About { log: "<b>log</b>".into(), ..about() });
        assert!(!page.contains("<script"), "no script element at all");
        assert!(!page.contains("<img") && !page.contains("<svg onload"), "markup from the log stays text");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the user agent is shown, escaped");
        assert!(page.contains("/&lt;svg onload=alert(3)&gt;"), "the path is shown, escaped");
        assert!(page.contains("&lt;b&gt;log&lt;/b&gt;"));
        assert_eq!(esc("a\u{202e}b\u{7}c'"), "a\u{fffd}b\u{fffd}c&#39;");
    }

    #[test]
    fn the_page_makes_no_request_of_its_own() {
        let page = html(&traffic(), &about());
        for forbidden in
            ["src=", "href=", "url(", "@import", "<script", "<link", "<img", "<iframe", "http://", "https://"]
        {
            assert!(!page.to_ascii_lowercase().contains(forbidden), "{forbidden}");
        }
        assert!(page.contains("default-src 'none'"), "and the page forbids itself any");
    }

    #[test]
    fn a_campaign_across_addresses_is_grouped_by_fingerprint() {
        let mut v = traffic();
        // Different user agents, so only the fingerprint ties them together.
        for r in v.iter_mut().filter(|r| r.path == "/api/prices") {
            r.user_agent = format!("scraper/{}", r.t_ms % 7);
        }
        let mut report = Report::default();
        for r in &v {
            report.add(r, None);
        }
        let (cards, _) = report.campaigns();
        let (key, g) = cards.first().unwrap();
        assert_eq!(*key, GroupKey::Fingerprint(0xfeed));
        assert_eq!((g.requests, g.flagged, g.addresses.len(), g.sessions.len()), (120, 80, 10, 10));
        let page = report.render(&about());
        assert!(page.contains("request fingerprint <span class=\"mono\">000000000000feed</span>"), "{page}");
    }

    #[test]
    fn a_campaign_across_addresses_is_grouped_by_client_shape() {
        let mut report = Report::default();
        for r in traffic() {
            let shape = if r.user_agent == "scraper/1.0" { 42 } else { 7 };
            report.add(&r, Some(shape));
        }
        let (cards, folded) = report.campaigns();
        assert_eq!(cards.len(), 1, "the fingerprint of a shown shape is told inside its card");
        assert_eq!(cards[0].0, GroupKey::Shape(42));
        assert_eq!(folded.len(), 1);
        assert!(report.render(&about()).contains("1 detector fingerprint of this shape repeated across addresses"));
    }

    #[test]
    fn what_happened_after_the_first_challenge_is_said_in_words() {
        let mut v = traffic();
        // After the challenge the scraper slows to one request a minute, from two new addresses.
        for i in 0..10 {
            let mut r =
                request(400.0 + i as f64 * 60.0, &format!("198.51.100.{}", 50 + i % 2), "/api/prices", "scraper/1.0");
            r.decision.fingerprint = Some(0xfeed);
            v.push(flagged(r, Verdict::Challenge(ChallengeType::ProofOfWork), 0.6));
        }
        let page = html(&v, &about());
        assert!(page.contains("First challenged at +03:00, after 40 requests in 1 min 20 s."), "{page}");
        assert!(page.contains("2 new addresses"), "{page}");
        assert!(page.contains("Rate fell from 30/min to 7.0/min"), "{page}");
        assert!(page.contains("Nothing got through after the first action."), "{page}");
    }

    #[test]
    fn a_warn_only_campaign_is_said_to_have_been_observed_only() {
        let mut v = traffic();
        for r in v.iter_mut().filter(|r| r.decision.verdict != Verdict::Pass) {
            r.decision.verdict = Verdict::Pass;
            r.decision.would = Some(Verdict::Block);
        }
        let page = html(&v, &about());
        assert!(page.contains("never challenged, blocked or rate-limited"), "{page}");
        assert!(page.contains("would act (warn mode)"));
    }

    #[test]
    fn the_most_suspicious_clients_come_first_with_their_metrics() {
        let mut report = Report::default();
        for r in traffic() {
            report.add(&r, None);
        }
        let top = report.top_clients(30);
        assert_eq!(top.len(), 11);
        assert!(top[0].0.starts_with("198.51.100."), "flagged clients first");
        assert_eq!(top.last().unwrap().0, "203.0.113.5");
        let scraper = top[0].1;
        assert!(scraper.gaps.cv().unwrap() < 0.01, "a metronome: one request every 20 s");
        let person = top.last().unwrap().1;
        assert!(person.gaps.cv().unwrap() > 0.1);
        assert_eq!(person.paths.estimate().0.round(), 30.0);
        assert_eq!(scraper.paths.estimate().0.round(), 1.0);
    }

    #[test]
    fn slices_widen_to_fit_a_long_log_without_losing_counts() {
        let mut report = Report::default();
        for i in 0..1000u64 {
            report.add(&request(i as f64 * 36.0, "192.0.2.1", "/", "x"), None);
        }
        assert_eq!(report.clock.width, 600_000, "10 hours in 10-minute slices");
        assert!(report.clock.used <= SLICES);
        let total: u32 = report.overall.scores.iter().flat_map(|r| r.iter()).sum();
        assert_eq!(total, 1000);
        let client = report.clients.values().next().unwrap();
        assert_eq!(client.bins.iter().map(|b| u32::from(*b)).sum::<u32>(), 1000);
        assert_eq!(client.bins.len(), SLICES);
    }

    #[test]
    fn the_least_active_clients_are_forgotten_when_the_cap_is_reached_and_the_page_says_so() {
        let mut report = Report::with_caps(100, 100);
        let mut busy = flagged(request(0.0, "192.0.2.1", "/", "x"), Verdict::Block, 0.9);
        for i in 0..5 {
            busy.t_ms = i * 1000;
            report.add(&busy, None);
        }
        for i in 0..300 {
            report.add(&request(10.0 + i as f64, &format!("10.0.{}.{}", i / 250, i % 250), "/", "x"), None);
        }
        assert!(report.clients.len() <= 100);
        assert!(report.clients.contains_key("192.0.2.1"), "the flagged, busy client is kept");
        assert!(report.forgotten_clients.0 >= 200);
        let page = report.render(&about());
        assert!(page.contains(&format!("Forgotten here: {} clients", report.forgotten_clients.0)), "{page}");
    }

    #[test]
    fn distinct_endpoints_are_exact_at_first_and_close_past_that() {
        for (n, tolerance) in [(1usize, 0.0), (32, 0.0), (351, 0.06), (2_000, 0.08)] {
            let mut d = Distinct::new();
            for i in 0..n {
                d.add(format!("/api/products/{}", 1000 + i).as_bytes());
                d.add(b"/api/products/1000");
            }
            let (estimate, full) = d.estimate();
            assert!(!full && (estimate - n as f64).abs() <= n as f64 * tolerance, "{n}: {estimate}");
        }
    }

    #[test]
    fn access_log_times_are_shown_as_utc() {
        let mut r = request(0.0, "192.0.2.1", "/", "x");
        r.t_ms = 1_795_831_140_123; // 2026-11-28T01:59:00.123Z
        let mut later = r.clone();
        later.t_ms += 90_000;
        let page = html(&[r, later], &about());
        assert!(page.contains("2026-11-28 01:59:00 – 02:00:30 UTC (1 min 30 s)"), "{page}");
        assert!(page.contains("Times are UTC"));
    }

    #[test]
    fn an_empty_log_is_a_page_that_says_so() {
        let page = html(&[], &about());
        assert!(page.contains("No request was decided"));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn the_cli_input_goes_through_the_policy() {
        let policy = crate::policy::parse(br#"{"mode": "enforce"}"#).policy.unwrap();
        let log = "{\"t\": 0, \"ip\": \"192.0.2.1\", \"method\": \"GET\", \"path\": \"/\", \"headers\": {\"user-agent\": \"<i>x</i>\"}}\n\
                   not json\n\n";
        let mut errors = Vec::new();
        let page = report(policy, log.as_bytes(), about(), &mut errors).unwrap();
        assert!(String::from_utf8(errors).unwrap().starts_with("line 2: not JSON"));
        assert!(page.contains("&lt;i&gt;x&lt;/i&gt;") && page.contains("1 line could not be read"), "{page}");
    }
}
