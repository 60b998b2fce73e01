//! Rolling windows: how many events fell in the last `window` milliseconds.
//!
//! Small limits (up to [`EXACT_LIMIT`]) keep an exact log of timestamps, so "at most N in any
//! window" holds to the millisecond and the request past the limit is the one refused. Larger
//! limits use the two-bucket estimate (previous bucket weighted by its overlap), which needs
//! constant memory whatever the limit and errs by at most the previous bucket's share.

use std::collections::VecDeque;

/// Largest limit kept as an exact log (8 bytes per admitted request in the window).
pub const EXACT_LIMIT: u32 = 1024;

#[derive(Debug, Clone)]
pub enum RollingWindow {
    Exact(VecDeque<u64>),
    Estimated { start: u64, current: u32, previous: u32 },
}

/// Why a request was not admitted, and when trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after_ms: u64,
}

impl RollingWindow {
    pub fn for_limit(max: u32) -> Self {
        if max <= EXACT_LIMIT {
            RollingWindow::Exact(VecDeque::new())
        } else {
            RollingWindow::Estimated { start: 0, current: 0, previous: 0 }
        }
    }

    /// Admits one request if fewer than `max` were admitted in the last `window_ms`, and counts
    /// it. Refused requests are not counted, so a client that backs off recovers.
    pub fn admit(&mut self, now: u64, max: u32, window_ms: u64) -> Result<(), Refused> {
        if self.admitted(now, window_ms) >= f64::from(max) {
            return Err(Refused { retry_after_ms: self.retry_after(now, window_ms) });
        }
        match self {
            RollingWindow::Exact(log) => log.push_back(now),
            RollingWindow::Estimated { current, .. } => *current = current.saturating_add(1),
        }
        Ok(())
    }

    /// The share of `max` admitted in the last `window_ms` (1.0 or more: full).
    pub fn load(&mut self, now: u64, max: u32, window_ms: u64) -> f64 {
        self.admitted(now, window_ms) / f64::from(max.max(1))
    }

    /// How many were admitted in the last `window_ms`: exact, or the two-bucket estimate (the
    /// previous bucket weighted by its overlap with the window).
    fn admitted(&mut self, now: u64, window_ms: u64) -> f64 {
        match self {
            RollingWindow::Exact(log) => {
                prune(log, now, window_ms);
                log.len() as f64
            }
            RollingWindow::Estimated { start, current, previous } => {
                roll(start, current, previous, now, window_ms);
                let weight = 1.0 - (now.saturating_sub(*start) as f64 / window_ms as f64).min(1.0);
                f64::from(*previous) * weight + f64::from(*current)
            }
        }
    }

    /// When the oldest admitted request leaves the window (a refused client's `retry-after`).
    pub fn retry_after(&self, now: u64, window_ms: u64) -> u64 {
        let oldest = match self {
            RollingWindow::Exact(log) => log.front().copied().unwrap_or(now),
            RollingWindow::Estimated { start, .. } => *start,
        };
        (oldest + window_ms).saturating_sub(now).max(1)
    }

    /// Counts one event and returns how many fell in the window, this one included, keeping at
    /// most `keep` timestamps (callers only need to know whether a threshold was crossed).
    pub fn record(&mut self, now: u64, window_ms: u64, keep: usize) -> u32 {
        match self {
            RollingWindow::Exact(log) => {
                prune(log, now, window_ms);
                if log.len() >= keep.max(1) {
                    log.pop_front();
                }
                log.push_back(now);
                log.len() as u32
            }
            RollingWindow::Estimated { start, current, previous } => {
                roll(start, current, previous, now, window_ms);
                *current = current.saturating_add(1);
                *current
            }
        }
    }

    /// When the last event happened (for expiry).
    pub fn last(&self) -> Option<u64> {
        match self {
            RollingWindow::Exact(log) => log.back().copied(),
            RollingWindow::Estimated { start, current, previous } => (*current > 0 || *previous > 0).then_some(*start),
        }
    }

    /// Bytes held beyond the struct itself.
    pub fn heap_bytes(&self) -> usize {
        match self {
            RollingWindow::Exact(log) => log.capacity() * 8,
            RollingWindow::Estimated { .. } => 0,
        }
    }
}

fn prune(log: &mut VecDeque<u64>, now: u64, window_ms: u64) {
    while log.front().is_some_and(|&t| t + window_ms <= now) {
        log.pop_front();
    }
}

fn roll(start: &mut u64, current: &mut u32, previous: &mut u32, now: u64, window_ms: u64) {
    let elapsed = now.saturating_sub(*start);
    if elapsed >= 2 * window_ms {
        *previous = 0;
        *current = 0;
        *start = now - now % window_ms;
    } else if elapsed >= window_ms {
        *previous = *current;
        *current = 0;
        *start += window_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_exactly_past_the_limit_and_recovers() {
        let mut w = RollingWindow::for_limit(3);
        for t in [0, 10, 20] {
            assert!(w.admit(t, 3, 1000).is_ok());
        }
        assert_eq!(w.admit(30, 3, 1000), Err(Refused { retry_after_ms: 970 }));
        assert!(w.admit(999, 3, 1000).is_err());
        assert!(w.admit(1000, 3, 1000).is_ok(), "the first stamp left the window");
    }

    #[test]
    fn estimated_window_bounds_a_burst() {
        let mut w = RollingWindow::for_limit(EXACT_LIMIT + 1);
        let max = EXACT_LIMIT + 1;
        let admitted = (0..max + 50).filter(|_| w.admit(5, max, 1000).is_ok()).count();
        assert_eq!(admitted, max as usize);
        // Half a window later, half of the previous bucket still counts.
        let later = (0..max).filter(|_| w.admit(1500, max, 1000).is_ok()).count();
        assert!(later <= max as usize / 2 + 1, "{later}");
    }

    proptest! {
        /// In no window of `window` ms are more than `max` requests admitted, and a refusal only
        /// happens when `max` were admitted in the window before it.
        #[test]
        fn exact_log_never_admits_more_than_max(max in 1u32..20, window in 1u64..500,
                                                gaps in proptest::collection::vec(0u64..60, 1..400)) {
            let mut w = RollingWindow::for_limit(max);
            let mut now = 0;
            let mut admitted: Vec<u64> = Vec::new();
            for g in gaps {
                now += g;
                let in_window = admitted.iter().filter(|&&t| t + window > now).count();
                match w.admit(now, max, window) {
                    Ok(()) => { prop_assert!(in_window < max as usize); admitted.push(now); }
                    Err(r) => {
                        prop_assert_eq!(in_window, max as usize);
                        prop_assert!(r.retry_after_ms >= 1 && r.retry_after_ms <= window);
                    }
                }
            }
        }

        #[test]
        fn record_counts_events_in_window(window in 1u64..500, gaps in proptest::collection::vec(0u64..60, 1..200)) {
            let mut w = RollingWindow::for_limit(8);
            let mut now = 0;
            let mut seen: Vec<u64> = Vec::new();
            for g in gaps {
                now += g;
                seen.push(now);
                let expected = seen.iter().filter(|&&t| t + window > now).count().min(8);
                prop_assert_eq!(w.record(now, window, 8) as usize, expected);
            }
        }
    }
}
