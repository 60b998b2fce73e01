//! Sessions: what a run of requests looked like (how a session is named is
//! [`crate::identity::session_id`]). State is small and fixed-size per session, held in a
//! least-recently-used table with an idle timeout.

use crate::base::lru::Lru;
use crate::identity::session_id::SessionKey;
use crate::policy::SessionConfig;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Requests remembered per session for timing and variety.
const HISTORY: usize = 32;

/// A network, as coarse as the clearance token's binding: IPv4 /16, IPv6 /32 (never 0).
pub(crate) fn network(ip: IpAddr) -> u32 {
    let prefix = match ip {
        IpAddr::V4(a) => [4, a.octets()[0], a.octets()[1], 0, 0],
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => [4, v4.octets()[0], v4.octets()[1], 0, 0],
            None => {
                let o = a.octets();
                [6, o[0], o[1], o[2], o[3]]
            }
        },
    };
    ((crate::base::fasthash::hash(&[&prefix]) & 0xffff_ffff) as u32).max(1)
}

/// One request as a session remembers it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: u64,
    path: u32,
    sensitive: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Session {
    pub last_seen: u64,
    pub authenticated: bool,
    recent: VecDeque<Seen>,
    /// Responses to the last requests: (count, errors), decayed by halving when full.
    responses: (u16, u16),
    /// Session score, smoothed over its requests.
    pub score: f64,
    /// Bit `i`: the prior step of sequence rule `i` has been seen.
    pub seen_steps: u32,
    pub failed_challenges: u8,
    /// Puzzles and step-ups handed out since the last pass.
    pub challenges_issued: u8,
    /// Cleared by a passed challenge or a valid token until then (ms); this worker's memory.
    pub cleared_until: u64,
    /// Set once a challenge is failed for good: blocked for the session's remaining lifetime.
    pub challenge_failed: bool,
    /// The fleet knows of its failure: published by this worker, or learnt from another Envoy
    /// (`fleet.share_failures`).
    pub failure_shared: bool,
    /// Started from an anonymous session that failed its challenges, on a shared identity
    /// (address, user agent, language): it must pass a challenge, but is not blocked for
    /// someone else's failure.
    pub must_pass: bool,
    /// Page navigations (see [`crate::request::fetch::Fetch`]).
    pub navigations: u16,
    /// Navigations after the first that came from outside the site.
    pub cold_navigations: u16,
    /// Requests the pages made themselves (assets, XHR).
    pub subresources: u16,
    /// The last navigations' paths (hashed), newest at `nav_next - 1`.
    nav_paths: [u32; NAV_MEMORY],
    nav_next: u8,
    /// In-site navigations whose referer names a page this session never navigated to.
    pub phantom_referers: u16,
    /// How the session opened ([`crate::request::fetch::Landing`]): how a rotating
    /// scraper's sessions open gives it away.
    pub landing: crate::request::fetch::Landing,
    /// That way was a campaign's when it did ([`crate::score::campaigns`]): decided at the
    /// landing, so a campaign that starts later does not reach a visit already under way.
    pub landed_in_campaign: bool,
    /// Navigations after the first that named no page they came from (typed, bookmarked, a
    /// script's `goto`), halved every [`DIRECT_HALF_LIFE_S`], and when they last were (s).
    direct_navigations: (u16, u32),
    /// The client binding (hashed) that `cleared_until` holds for: a pass on one network does
    /// not clear the session on another, as the token would not.
    pub cleared_for: u64,
    /// The last puzzle whose attempt was given back ([`crate::challenge::gate::Gate::refund`]).
    pub refunded_nonce: u64,
    /// The last puzzle this session passed ([`crate::challenge::gate::nonce_id`]; 0: none).
    pub passed_nonce: u64,
    /// The pass that cleared it was a WebAuthn step-up (endpoints may require one).
    pub cleared_webauthn: bool,
    /// A step-up was asked of this session and not yet passed: only then can the backend's
    /// refusal of an assertion count as a failed step-up.
    pub step_up_pending: bool,
    /// A challenge was issued to it at some time, and whether it then said it was stopped
    /// wrongly ([`crate::challenge::pages::REPORT`]): one report per challenged session.
    pub challenged: bool,
    pub reported: bool,
    /// When (s, modulo 2^16: a window is a few minutes at most) the session's last
    /// [`PAGE_MEMORY`] pages were loaded, how many are kept, and where the next one goes: how many
    /// pages a repeated page call is explained by.
    page_loads: [u16; PAGE_MEMORY as usize],
    pages_kept: u8,
    page_next: u8,
    /// The session's own calls of its last few repeated requests: the detector's fingerprint
    /// (its low half), the calls in the current window, when that window began (s).
    calls: [(u32, u16, u32); CALL_MEMORY],
    /// The silent challenge's pages and answers.
    pub beacon: BeaconSeen,
    /// The tag of the visitor cookie that names this session, once its HMAC checked out: the
    /// same cookie again is compared with it (constant-time) instead of recomputing the HMAC.
    pub visitor_tag: Option<[u8; crate::identity::visitor::TAG_BYTES]>,
    /// The minute (s) the session last handed out visitor cookies in, and how many it did.
    handouts: (u32, u8),
    /// Networks (IPv4 /16, IPv6 /32; hashed) the session came from, with when (s) it last did.
    networks: [(u32, u32); NETWORK_MEMORY],
}

/// Networks remembered per session: enough to see a rotating proxy, small enough to stay cheap.
const NETWORK_MEMORY: usize = 8;
/// Networks count towards `Profile::networks` for this long after the session last came from
/// them (s): a phone that moves between Wi-Fi and its carrier has two, a proxy pool dozens.
const NETWORK_WINDOW_S: u32 = 30 * 60;

/// Visitor cookies a shared session hands out per minute ([`Session::hand_visitor`]).
const HANDOUTS_PER_MINUTE: u8 = 30;

/// Requests whose calls a session counts for [`Session::count_call`].
const CALL_MEMORY: usize = 4;

/// The most pages [`Session::pages_within`] counts: what a repeated page call can be excused by.
const PAGE_MEMORY: u32 = 16;

/// Direct navigations are counted over about this long (s): a scripted browser opens dozens in a
/// quarter of an hour; people behind one address whose browsers drop cookies (one shared
/// session) a few, spread over hours.
const DIRECT_HALF_LIFE_S: u32 = 15 * 60;

/// Navigations remembered for [`Session::record_fetch`]'s referer check: people go back a few pages, not dozens.
const NAV_MEMORY: usize = 16;

fn path_hash(path: &[u8]) -> u32 {
    (crate::base::fasthash::hash(&[path]) & 0xffff_ffff) as u32
}

/// Behaviour figures of a session, for the scorer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Profile {
    pub requests: usize,
    pub per_minute: f64,
    /// Coefficient of variation of the gaps between requests (None below 6 gaps).
    pub interval_cv: Option<f64>,
    pub mean_interval_ms: f64,
    pub distinct_ratio: f64,
    pub sensitive_share: f64,
    pub responses: u16,
    pub error_ratio: f64,
    pub navigations: u16,
    pub cold_navigations: u16,
    pub direct_navigations: u16,
    pub subresources: u16,
    pub phantom_referers: u16,
    /// Distinct networks the session came from in the last half hour.
    pub networks: u8,
    pub beacon: BeaconSeen,
}

/// The silent challenge as a session answered it ([`crate::challenge::beacon`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BeaconSeen {
    /// Pages that carried the script since the last answer, and when the first of them did
    /// (ms): one clean beacon does not excuse every page after it.
    pub unanswered: u16,
    pub unanswered_since: u64,
    /// A beacon reported automation itself (`navigator.webdriver`, a headless browser).
    pub driven: bool,
    /// A beacon reported traits that contradict the user agent (which a person's privacy
    /// extension can cause too).
    pub inconsistent: bool,
    /// The last tokens answered: (nonce hash, issued s). A token is bound to its session and
    /// client, so a replay can only be into the session it came from; these refuse it there.
    pub spent: [(u32, u32); 4],
}

impl BeaconSeen {
    /// A page of the session carried the script.
    pub fn sent(&mut self, now: u64) {
        if self.unanswered == 0 {
            self.unanswered_since = now;
        }
        self.unanswered = self.unanswered.saturating_add(1);
    }

    /// A genuine beacon of the session arrived.
    pub fn answer(&mut self) {
        self.unanswered = 0;
    }

    /// Spends a token's nonce; false for one already spent, or older than every one of the last
    /// four answered (spent before them, and forgotten since).
    pub fn spend(&mut self, nonce: &str, issued_s: u64) -> bool {
        let h = (crate::base::fasthash::hash(&[nonce.as_bytes()]) as u32).max(1);
        let issued = issued_s.min(u64::from(u32::MAX)) as u32;
        if self.spent.iter().any(|&(n, _)| n == h) {
            return false;
        }
        let full = self.spent.iter().all(|&(n, _)| n != 0);
        let oldest = self.spent.iter_mut().min_by_key(|(n, at)| (*n != 0, *at));
        match oldest {
            Some(slot) if !(full && issued < slot.1) => {
                *slot = (h, issued);
                true
            }
            _ => false,
        }
    }
}

impl Session {
    pub fn record(&mut self, now: u64, path: &[u8], sensitive: bool) {
        self.last_seen = now;
        if self.recent.len() >= HISTORY {
            self.recent.pop_front();
        }
        let path = path_hash(path);
        self.recent.push_back(Seen { at: now, path, sensitive });
    }

    /// Counts the request by what it is to the page (navigation, sub-resource). A navigation's
    /// `path` is remembered, and its in-site `referer` (path) checked against the pages this
    /// session navigated to: a person's referer is a page they were on; a client replaying a
    /// link click's headers names one it never fetched. The session's first navigation is not
    /// judged (a session can start mid-visit: a new address, a login).
    pub fn record_fetch(&mut self, fetch: crate::request::fetch::Fetch, path: &[u8], referer: Option<&[u8]>) {
        use crate::request::fetch::Fetch;
        match fetch {
            Fetch::Navigation { cold } => {
                let remembered = usize::from(self.navigations).min(NAV_MEMORY);
                if let (Some(r), true) = (referer, remembered > 0) {
                    let r = path_hash(r);
                    if !self.nav_paths.iter().take(remembered).any(|p| *p == r) {
                        self.phantom_referers = self.phantom_referers.saturating_add(1);
                    }
                }
                if let Some(slot) = self.nav_paths.get_mut(usize::from(self.nav_next) % NAV_MEMORY) {
                    *slot = path_hash(path);
                }
                self.nav_next = ((usize::from(self.nav_next) + 1) % NAV_MEMORY) as u8;
                let first = self.navigations == 0;
                self.navigations = self.navigations.saturating_add(1);
                if !first && cold == Some(true) {
                    self.cold_navigations = self.cold_navigations.saturating_add(1);
                }
            }
            Fetch::Subresource => self.subresources = self.subresources.saturating_add(1),
            Fetch::Other => {}
        }
    }

    /// Notes a page load (a navigation) at `now`.
    pub fn record_page(&mut self, now: u64) {
        if let Some(slot) = self.page_loads.get_mut(usize::from(self.page_next)) {
            *slot = (now / 1000) as u16;
        }
        self.page_next = ((u32::from(self.page_next) + 1) % PAGE_MEMORY) as u8;
        self.pages_kept = self.pages_kept.saturating_add(1).min(PAGE_MEMORY as u8);
    }

    /// Counts one call of the request `fp` and returns the session's calls of it in the current
    /// window of `window_ms` (a fixed window from its first call; the least recently started of
    /// [`CALL_MEMORY`] is replaced by a new request).
    pub fn count_call(&mut self, fp: u64, now: u64, window_ms: u64) -> u32 {
        let (fp, now, window) = (fp as u32, (now / 1000) as u32, (window_ms / 1000) as u32);
        let i = match self.calls.iter().position(|c| c.0 == fp) {
            Some(i) => i,
            None => {
                let oldest = (0..CALL_MEMORY).min_by_key(|i| self.calls.get(*i).map_or(0, |c| c.2)).unwrap_or(0);
                if let Some(c) = self.calls.get_mut(oldest) {
                    *c = (fp, 0, now);
                }
                oldest
            }
        };
        let Some(c) = self.calls.get_mut(i) else { return 0 };
        if c.2.saturating_add(window) <= now {
            *c = (fp, 0, now);
        }
        c.1 = c.1.saturating_add(1);
        u32::from(c.1)
    }

    /// Pages the session loaded in the last `window_ms` (at most [`PAGE_MEMORY`]).
    pub fn pages_within(&self, now: u64, window_ms: u64) -> u32 {
        let (now_s, window_s) = ((now / 1000) as u16, (window_ms / 1000).min(u64::from(u16::MAX)) as u16);
        let kept = self.page_loads.get(..usize::from(self.pages_kept)).unwrap_or(&[]);
        kept.iter().filter(|at| now_s.wrapping_sub(**at) < window_s).count() as u32
    }

    /// Notes a navigation after the first that named no page it came from.
    pub fn record_direct(&mut self, now: u64) {
        let now_s = (now / 1000) as u32;
        let (count, at) = &mut self.direct_navigations;
        if *count == 0 {
            *at = now_s;
        }
        let halvings = now_s.saturating_sub(*at) / DIRECT_HALF_LIFE_S;
        *count = count.checked_shr(halvings).unwrap_or(0).saturating_add(1);
        *at = at.saturating_add(halvings.saturating_mul(DIRECT_HALF_LIFE_S));
    }

    /// The direct navigations, halved once per [`DIRECT_HALF_LIFE_S`] since they last were.
    fn direct_within(&self, now: u64) -> u16 {
        let (count, at) = self.direct_navigations;
        let halvings = ((now / 1000) as u32).saturating_sub(at) / DIRECT_HALF_LIFE_S;
        count.checked_shr(halvings).unwrap_or(0)
    }

    /// Notes the network the request came from (`None`: no client address).
    pub fn record_network(&mut self, client: Option<IpAddr>, now: u64) {
        let Some(net) = client.map(network) else { return };
        let now_s = (now / 1000) as u32;
        if let Some(slot) = self.networks.iter_mut().find(|(n, _)| *n == net) {
            slot.1 = now_s;
        } else if let Some(oldest) = self.networks.iter_mut().min_by_key(|(_, at)| *at) {
            *oldest = (net, now_s);
        }
    }

    /// Whether this (shared, cookieless) session may hand a visitor cookie to the navigation
    /// now: each newcomer behind one address with the same browser gets their own (everyone on
    /// an iCloud Private Relay or Tor exit, a carrier NAT), up to [`HANDOUTS_PER_MINUTE`], so a
    /// client that keeps none cannot churn more sessions than that.
    pub fn hand_visitor(&mut self, now: u64) -> bool {
        let now_s = (now / 1000) as u32;
        if self.handouts.0 / 60 != now_s / 60 {
            self.handouts = (now_s, 0);
        }
        if self.handouts.1 >= HANDOUTS_PER_MINUTE {
            return false;
        }
        self.handouts.1 += 1;
        true
    }

    fn networks_within(&self, now: u64) -> u8 {
        let now_s = (now / 1000) as u32;
        self.networks.iter().filter(|(n, at)| *n != 0 && at.saturating_add(NETWORK_WINDOW_S) > now_s).count() as u8
    }

    pub fn record_response(&mut self, error: bool) {
        let (n, e) = &mut self.responses;
        if *n >= 64 {
            *n /= 2;
            *e /= 2;
        }
        *n += 1;
        *e += u16::from(error);
    }

    pub fn profile(&self, now: u64) -> Profile {
        let requests = self.recent.len();
        let (mut last_minute, mut sensitive) = (0usize, 0usize);
        let mut paths = [0u32; HISTORY];
        let (mut sum, mut sum_sq, mut gaps) = (0.0f64, 0.0f64, 0usize);
        let mut prev: Option<u64> = None;
        for (seen, slot) in self.recent.iter().zip(paths.iter_mut()) {
            last_minute += usize::from(seen.at + 60_000 > now);
            sensitive += usize::from(seen.sensitive);
            *slot = seen.path;
            if let Some(p) = prev {
                let g = seen.at.saturating_sub(p) as f64;
                sum += g;
                sum_sq += g * g;
                gaps += 1;
            }
            prev = Some(seen.at);
        }
        let mean = if gaps == 0 { 0.0 } else { sum / gaps as f64 };
        let interval_cv = (gaps >= 6 && mean > 0.0).then(|| {
            let var = (sum_sq / gaps as f64 - mean * mean).max(0.0);
            var.sqrt() / mean
        });
        let paths = paths.get_mut(..requests).unwrap_or(&mut []);
        paths.sort_unstable();
        let distinct =
            paths.iter().zip(paths.iter().skip(1)).filter(|(a, b)| a != b).count() + usize::from(requests > 0);
        let share = |n: usize| if requests == 0 { 0.0 } else { n as f64 / requests as f64 };
        let (responses, errors) = self.responses;
        Profile {
            requests,
            per_minute: last_minute as f64,
            interval_cv,
            mean_interval_ms: mean,
            distinct_ratio: share(distinct),
            sensitive_share: share(sensitive),
            responses,
            error_ratio: if responses == 0 { 0.0 } else { f64::from(errors) / f64::from(responses) },
            navigations: self.navigations,
            cold_navigations: self.cold_navigations,
            direct_navigations: self.direct_within(now),
            subresources: self.subresources,
            phantom_referers: self.phantom_referers,
            networks: self.networks_within(now),
            beacon: self.beacon,
        }
    }
}

pub struct Sessions {
    table: Lru<u64, Session>,
    ttl_ms: u64,
}

impl Sessions {
    pub fn new(cfg: &SessionConfig) -> Self {
        Sessions { table: Lru::new(cfg.max_sessions), ttl_ms: cfg.ttl_ms }
    }

    /// The live session for `key`, started afresh if it was idle past its lifetime.
    pub fn get(&mut self, key: SessionKey, now: u64) -> &mut Session {
        let ttl = self.ttl_ms;
        let s = self.table.get_or_insert_with(key.id, Session::default);
        if s.last_seen != 0 && s.last_seen + ttl <= now {
            *s = Session::default();
        }
        s.authenticated = key.authenticated;
        s
    }

    pub fn peek_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.table.get_mut(&id)
    }

    /// Session `id` unless it is idle past its lifetime (as [`Sessions::get`] would start it
    /// afresh); nothing is written.
    pub fn live(&self, id: u64, now: u64) -> Option<&Session> {
        self.table.peek(&id).filter(|s| s.last_seen == 0 || s.last_seen + self.ttl_ms > now)
    }

    /// Starts session `to` as a copy of session `from` (a visitor cookie handed out: the
    /// visitor's session begins with what its address's session knew, so taking a cookie sheds
    /// nothing).
    pub fn fork(&mut self, from: u64, to: u64) {
        if let Some(copy) = self.table.peek(&from).cloned() {
            *self.table.get_or_insert_with(to, Session::default) = copy;
        }
    }

    /// Starts the new signed-in session `to` from the anonymous session `from`: the visit
    /// carries over, its clearance does not (a proof of work solved anonymously does not stand in
    /// for what the policy asks of signed-in sessions). Its penalties carry over from a browser's
    /// own (visitor) session; from a shared one (`own: false`: address, user agent, language), a
    /// failure becomes a challenge to pass, so nobody is blocked for a stranger's failure and
    /// nobody sheds their own by sending a session cookie they made up.
    pub fn inherit(&mut self, from: u64, to: u64, own: bool) {
        self.fork(from, to);
        if let Some(s) = self.table.get_mut(&to) {
            s.cleared_until = 0;
            s.cleared_for = 0;
            s.cleared_webauthn = false;
            s.step_up_pending = false;
            if !own && s.challenge_failed {
                s.challenge_failed = false;
                s.failed_challenges = 0;
                s.score = 0.0;
                s.must_pass = true;
            }
        }
    }

    pub fn sweep(&mut self, now: u64, max: usize) -> usize {
        let ttl = self.ttl_ms;
        self.table.sweep(|s| s.last_seen + ttl <= now, max)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.len() * (std::mem::size_of::<Session>() + 64 + HISTORY * std::mem::size_of::<Seen>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_counted_coarsely_and_forgotten_after_half_an_hour() {
        let mut s = Session::default();
        let at = |ip: &str| ip.parse().ok();
        s.record_network(at("192.0.2.1"), 1_000);
        s.record_network(at("192.0.77.9"), 2_000); // same /16
        s.record_network(at("::ffff:192.0.3.3"), 3_000); // same /16, mapped
        assert_eq!(s.profile(3_000).networks, 1);
        s.record_network(at("2001:db8:1::1"), 4_000);
        s.record_network(at("2001:db8:ffff::1"), 5_000); // same /32
        s.record_network(None, 5_000);
        assert_eq!(s.profile(5_000).networks, 2);
        for i in 0..20u64 {
            s.record_network(Some(std::net::IpAddr::from([10, i as u8, 0, 1])), 10_000 + i);
        }
        assert_eq!(s.profile(20_000).networks, NETWORK_MEMORY as u8);
        assert_eq!(s.profile(10_019 + 1_800_000).networks, 0);
    }

    #[test]
    fn idle_sessions_start_afresh() {
        let mut s = Sessions::new(&SessionConfig { ttl_ms: 1000, ..SessionConfig::default() });
        let key = SessionKey { id: 1, authenticated: false, visitor: false };
        s.get(key, 10).challenge_failed = true;
        s.get(key, 10).record(10, b"/", false);
        assert!(s.get(key, 500).challenge_failed);
        assert!(!s.get(key, 2000).challenge_failed);
    }

    #[test]
    fn profile_of_a_scheduled_client() {
        let mut s = Session::default();
        for i in 0..10 {
            s.record(i * 5_000, b"/price", false);
        }
        let p = s.profile(50_000);
        assert_eq!(p.interval_cv, Some(0.0));
        assert!((p.distinct_ratio - 0.1).abs() < 1e-9);
        assert_eq!(p.per_minute, 10.0);
    }
}
#[cfg(test)]
mod referer_tests {
    use super::*;
    use crate::request::fetch::Fetch;

    #[test]
    fn following_links_is_not_phantom() {
        let mut s = Session::default();
        let pages: [&[u8]; 4] = [b"/", b"/products", b"/products/4", b"/cart"];
        let mut prev: Option<&[u8]> = None;
        for p in pages {
            s.record_fetch(Fetch::Navigation { cold: Some(prev.is_none()) }, p, prev);
            prev = Some(p);
        }
        assert_eq!(s.phantom_referers, 0);
        s.record_fetch(Fetch::Navigation { cold: Some(false) }, b"/x", Some(b"/never"));
        assert_eq!(s.phantom_referers, 1);
    }
}
