//! Graduated answers that take time ([`crate::policy::answers`]): a throttled request is
//! forwarded, a tarpitted one refused, once its delay is over. The requests are held per worker,
//! at most the policy's `max_delayed` (a full worker answers at once instead), and released on
//! the root's tick, which runs every [`FAST_TICK`] while any is held.

use crate::decision::record::Reply;
use std::time::Duration;

/// The tick while requests are held: their delays end within this much of their due time.
pub const FAST_TICK: Duration = Duration::from_millis(100);

/// A request held until `due` (ms): then answered with `reply`, or forwarded when there is none.
pub struct Held {
    pub id: u32,
    pub due: u64,
    pub reply: Option<Reply>,
}

#[derive(Default)]
pub struct Delays {
    held: Vec<Held>,
}

impl Delays {
    /// Holds a request; false when `max` are held already.
    pub fn hold(&mut self, held: Held, max: usize) -> bool {
        if self.held.len() >= max {
            return false;
        }
        self.held.push(held);
        true
    }

    /// A held request whose client left.
    pub fn forget(&mut self, id: u32) {
        self.held.retain(|h| h.id != id);
    }

    /// The requests due at `now`, taken out.
    pub fn due(&mut self, now: u64) -> Vec<Held> {
        let (due, rest) = std::mem::take(&mut self.held).into_iter().partition(|h| h.due <= now);
        self.held = rest;
        due
    }

    /// Whether request `id` is still held (a released one's body goes on).
    pub fn holds(&self, id: u32) -> bool {
        self.held.iter().any(|h| h.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
