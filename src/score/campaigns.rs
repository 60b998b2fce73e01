//! Failures on critical endpoints per client shape: the view that sees a rotating
//! credential-stuffing campaign.

use super::signal::Signal;
use crate::base::lru::Lru;
use crate::request::head::Head;

/// Failures on critical endpoints per client *shape* (user agent, language, header names in
/// order), whatever the address: a credential-stuffing campaign rotating through hundreds of
/// addresses still sends one shape, and nearly all its logins fail.
///
/// Anyone can fail logins in a popular browser's exact shape, so the view must not be turned
/// against the people who share it: counts decay with a half-life of [`Campaigns::HALF_LIFE_S`]
/// (a campaign that stops is forgotten), and the signal is only given to a request that
/// something else already flags (it corroborates, never challenges alone; see
/// [`Campaigns::signal`]).
pub struct Campaigns {
    /// shape → (logins, failures, when last decayed in s), the counts in sixteenths.
    table: Lru<u64, (u32, u32, u32)>,
}

impl Campaigns {
    pub const HALF_LIFE_S: u32 = 15 * 60;
    const ONE: u32 = 16;

    pub fn new(cap: usize) -> Self {
        Campaigns { table: Lru::new(cap) }
    }

    /// Halves the counts once per half-life since they were last touched.
    fn decay(entry: &mut (u32, u32, u32), now_s: u32) {
        let halvings = now_s.saturating_sub(entry.2) / Self::HALF_LIFE_S;
        if halvings > 0 {
            entry.0 = entry.0.checked_shr(halvings).unwrap_or(0);
            entry.1 = entry.1.checked_shr(halvings).unwrap_or(0);
            entry.2 = entry.2.saturating_add(halvings.saturating_mul(Self::HALF_LIFE_S));
        }
    }

    pub fn record(&mut self, shape: u64, failed: bool, now_ms: u64) {
        let now_s = (now_ms / 1000) as u32;
        let e = self.table.get_or_insert_with(shape, || (0, 0, now_s));
        Self::decay(e, now_s);
        if e.0 >= 1000 * Self::ONE {
            e.0 /= 2;
            e.1 /= 2;
        }
        e.0 += Self::ONE;
        e.1 += if failed { Self::ONE } else { 0 };
    }

    /// The score the other signals must reach before `campaign_failures` joins them: a trace of
    /// `velocity` (a page with many assets) is not corroboration.
    pub const CORROBORATION: f64 = 0.1;

    /// `campaign_failures` for a request of `shape`, when the other signals (`others`: their
    /// combined score) already flag it.
    pub fn signal(&mut self, shape: u64, now_ms: u64, others: f64, out: &mut Vec<Signal>) {
        if others < Self::CORROBORATION {
            return;
        }
        let now_s = (now_ms / 1000) as u32;
        let Some(e) = self.table.get_mut(&shape) else { return };
        Self::decay(e, now_s);
        let (n, f) = (e.0 / Self::ONE, e.1 / Self::ONE);
        if n >= 20 {
            let ratio = f64::from(f) / f64::from(n);
            let strength = (ratio - 0.5) / 0.3;
            if strength > 0.0 {
                out.push(Signal { name: "campaign_failures", strength: strength.min(1.0) });
            }
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The client's shape: user agent, language and the order of its header names.
pub fn shape(head: &Head) -> u64 {
    let mut names = [0u8; 256];
    let mut n = 0;
    for (name, _) in head.iter() {
        if name.starts_with(b":") || name.starts_with(b"x-") || name == b"cookie" || name == b"content-length" {
            continue;
        }
        for &b in name.iter().chain(b",") {
            if let Some(slot) = names.get_mut(n) {
                *slot = b;
                n += 1;
            }
        }
    }
    crate::base::fasthash::hash(&[
        head.first("user-agent").unwrap_or(b""),
        head.first("accept-language").unwrap_or(b""),
        names.get(..n).unwrap_or(b""),
    ])
}
