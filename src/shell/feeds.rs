//! Feeds fetched by one worker and shared with all ([`crate::policy::feeds`]).
//!
//! Each feed has three shared-data keys: a lease (when the next fetch is due), the list (the
//! last good one, checked and normalised), and its meta (generation, fetch time, size). On the
//! tick every worker loads a generation it has not seen, and the worker that moves a due lease
//! forward with compare-and-swap is the one that fetches; a worker that dies holding it gives it
//! up when the lease runs out. A failed or refused update leaves the list and its meta alone, so
//! its age keeps growing in `botgate_feed_age_seconds`, and the fetch is tried again sooner than
//! the period.

use crate::engine::Engines;
use crate::policy::feeds::{self, Feed, Meta, Problem};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::time::Duration;

/// A failed fetch is tried again after this (or the feed's period, if shorter).
const RETRY_MS: u64 = 30_000;
/// Past its timeout, how long a fetch holds the lease before another worker may take it.
const LEASE_GRACE_MS: u64 = 5_000;

struct State {
    feed: Feed,
    id: String,
    /// This worker's fetch on its way.
    token: Option<u32>,
    /// The generation of the list this worker's engines hold.
    loaded: Option<u64>,
    /// When the loaded list's next decision expires (a CrowdSec stream's; the list is then
    /// loaded again without it).
    expires: Option<u64>,
    age: Option<u32>,
    entries: Option<u32>,
    /// When this worker took the policy: a list never fetched is as old as that.
    since_ms: u64,
}

#[derive(Default)]
pub struct Feeds {
    list: Vec<State>,
}

/// How a fetch ended, for its counter and the log.
enum Fetched {
    Applied(u64),
    Failed(String),
    Refused(String),
}

impl Feeds {
    /// The feeds of `engines`; lists already shared are loaded at once.
    pub fn new(engines: &mut Engines, now: u64) -> Feeds {
        let gauge = |kind: &str, name: &str| {
            hostcalls::define_metric(MetricType::Gauge, &format!("botgate_feed_{kind}.feed.{}", label(name))).ok()
        };
        let list = engines
            .feeds()
            .into_iter()
            .map(|feed| State {
                id: feed.id(),
                age: gauge("age_seconds", &feed.name),
                entries: gauge("entries", &feed.name),
                feed,
                token: None,
                loaded: None,
                expires: None,
                since_ms: now,
            })
            .collect();
        let mut feeds = Feeds { list };
        for s in &mut feeds.list {
            s.prepare();
            s.adopt(engines, now);
        }
        feeds
    }

    /// Loads lists fetched since the last tick, and fetches the feeds that are due.
    pub fn tick(&mut self, engines: &mut Engines, now: u64) {
        for s in &mut self.list {
            s.adopt(engines, now);
            if s.token.is_none() && s.take_lease(now) {
                s.token = s.send();
                if s.token.is_none() {
                    s.settle(&Fetched::Failed(format!("cannot call cluster {:?}", s.feed.cluster)), now);
                }
            }
        }
    }

    /// A feed's answer: `false` if the token is not a feed's.
    pub fn on_response(
        &mut self,
        token: u32,
        status: Option<u32>,
        body: &[u8],
        engines: &mut Engines,
        now: u64,
    ) -> bool {
        let Some(s) = self.list.iter_mut().find(|s| s.token == Some(token)) else { return false };
        s.token = None;
        let fetched = match feeds::check_at(s.feed.kind, status, body, now) {
            Ok((list, entries)) => Fetched::Applied(s.share(&list, entries, now)),
            Err(Problem::Failed(why)) => Fetched::Failed(why),
            Err(Problem::Refused(why)) => Fetched::Refused(why),
        };
        s.settle(&fetched, now);
        s.adopt(engines, now);
        true
    }
}

impl State {
    /// Makes the shared keys a worker compare-and-swaps (the host has no "create if absent":
    /// made here, at configuration, their first writes race only with each other, harmlessly).
    fn prepare(&self) {
        for (part, empty) in [("lease", &b"0"[..]), ("meta", &Meta::default().encode()[..])] {
            if get(&self.key(part)).1.is_none() {
                set(&self.key(part), empty, None);
            }
        }
    }

    /// When to fetch next, and what to say about this fetch.
    fn settle(&self, fetched: &Fetched, now: u64) {
        let next = match fetched {
            Fetched::Applied(_) => now + self.feed.refresh_ms,
            _ => now + self.feed.refresh_ms.min(RETRY_MS),
        };
        set(&self.key("lease"), next.to_string().as_bytes(), None);
        self.report(fetched);
    }

    fn key(&self, part: &str) -> String {
        format!("botgate/v1/feed/{}/{part}", self.id)
    }

    /// Loads the shared list if its generation is new to this worker; updates the age gauge.
    fn adopt(&mut self, engines: &mut Engines, now: u64) {
        let meta = get(&self.key("meta")).0.and_then(|b| Meta::decode(&b)).unwrap_or_default();
        if let Some(id) = self.age {
            // Never fetched: as old as this worker's policy, so an alert on age fires for a feed
            // that never loads as for one that stopped.
            let fetched = if meta.seq == 0 { self.since_ms } else { meta.fetched_ms };
            let _ = hostcalls::record_metric(id, now.saturating_sub(fetched) / 1000);
        }
        // The same generation again only when one of its decisions has expired since.
        let expired = self.expires.is_some_and(|at| at <= now);
        if meta.seq == 0 || (self.loaded == Some(meta.seq) && !expired) {
            return;
        }
        let Some(list) = get(&self.key("list")).0 else { return };
        let (seq, body) = split_generation(&list);
        match feeds::load_at(self.feed.kind, body, now) {
            Some((list, expires)) => {
                engines.load_feed(&self.id, &list);
                self.loaded = seq;
                self.expires = expires;
                if let Some(id) = self.entries {
                    let _ = hostcalls::record_metric(id, meta.entries);
                }
            }
            None => log::warn!("botgate: the shared list of feed {:?} does not load; keeping the last", self.feed.name),
        }
    }

    /// Moves a due lease forward; `true` if this worker now fetches.
    fn take_lease(&self, now: u64) -> bool {
        let key = self.key("lease");
        let (value, cas) = get(&key);
        let Some(cas) = cas else { return false }; // made by `prepare`
        if feeds::lease_due(value.as_deref()) > now {
            return false;
        }
        let held = now + self.feed.timeout_ms + LEASE_GRACE_MS;
        set(&key, held.to_string().as_bytes(), Some(cas))
    }

    fn send(&self) -> Option<u32> {
        let f = &self.feed;
        let mut headers = vec![(":method", "GET"), (":path", f.path.as_str()), (":authority", f.authority.as_str())];
        if f.kind == feeds::Kind::Keys {
            headers.push(("accept", crate::formats::signature::DIRECTORY_MEDIA_TYPE));
        }
        if let Some(h) = &f.secret_header {
            headers.push((h.name.as_str(), h.value.as_str()));
        }
        match hostcalls::dispatch_http_call(&f.cluster, headers, None, vec![], Duration::from_millis(f.timeout_ms)) {
            Ok(token) => Some(token),
            Err(e) => {
                log::warn!("botgate: feed {:?}: cannot call cluster {:?}: {e:?}", f.name, f.cluster);
                None
            }
        }
    }

    /// Shares a checked list as the next generation; its size.
    ///
    /// The generation is moved by compare-and-swap, so two workers that both fetched (a lease
    /// that ran out mid-fetch) publish two generations, never two lists under one.
    fn share(&self, checked: &[u8], entries: u64, now: u64) -> u64 {
        for _ in 0..4 {
            let (meta, cas) = get(&self.key("meta"));
            let seq = meta.and_then(|b| Meta::decode(&b)).map_or(0, |m| m.seq) + 1;
            let mut list = format!("{seq}\n").into_bytes();
            list.extend_from_slice(checked);
            // The list first: a worker that sees the new meta finds the new list.
            set(&self.key("list"), &list, None);
            if set(&self.key("meta"), &Meta { seq, fetched_ms: now, entries }.encode(), cas) {
                break;
            }
        }
        entries
    }

    fn report(&self, fetched: &Fetched) {
        let name = &self.feed.name;
        let result = match fetched {
            Fetched::Applied(n) => {
                log::info!("botgate: feed {name:?} refreshed: {n} entries");
                "ok"
            }
            Fetched::Failed(why) => {
                log::warn!("botgate: feed {name:?} refresh failed ({why}); keeping the last good list");
                "failed"
            }
            Fetched::Refused(why) => {
                log::warn!("botgate: feed {name:?} update refused: {why}; keeping the last good list");
                "refused"
            }
        };
        let metric = format!("botgate_feed_refreshes_total.feed.{}.result.{result}", label(name));
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &metric) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

/// `seq\nlist…` → (seq, list).
fn split_generation(b: &[u8]) -> (Option<u64>, &[u8]) {
    let at = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let (head, rest) = b.split_at(at);
    let seq = std::str::from_utf8(head).ok().and_then(|s| s.parse().ok());
    (seq, rest.get(1..).unwrap_or(&[]))
}

/// A list's name as a metric label (letters, digits, `-` and `_`).
fn label(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

fn set(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    hostcalls::set_shared_data(key, Some(value), cas).is_ok()
}
