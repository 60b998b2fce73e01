//! Driving the engine natively, a request in and a decision out, as the shell drives it in
//! Envoy: the one way the tests, the simulator, the fuzz targets and the benchmarks send
//! requests.

use super::lookups::{Answer, Lookup};
use super::{Engine, Step};
use crate::decision::record::Decision;
use crate::request::head::Head;

/// Decides `head` with its `body` (`None`: the request has none) at `now`; a lookup the engine
/// asks for is answered by `lookups`.
pub fn decide_with(
    e: &mut Engine,
    head: &Head,
    body: Option<&[u8]>,
    now: u64,
    lookups: &mut dyn FnMut(&Lookup) -> Answer,
) -> Decision {
    let mut step = e.begin(head, body.is_some(), now);
    loop {
        step = match step {
            Step::Decided(d) => return d,
            Step::NeedLookup(w) => {
                let answer = lookups(w.question());
                e.resume_lookup(w, head, answer, now)
            }
            Step::NeedBody(w) => return e.resume_body(w, head, body.unwrap_or_default(), now),
        }
    }
}

/// [`decide_with`] where no lookup can be had (natively there is no network): each is
/// [`Answer::Failed`], as when a callout fails in Envoy.
pub fn decide(e: &mut Engine, head: &Head, body: Option<&[u8]>, now: u64) -> Decision {
    decide_with(e, head, body, now, &mut |_| Answer::Failed)
}

/// [`decide`], then, when the request went upstream, the upstream's `status` fed back.
pub fn exchange(e: &mut Engine, head: &Head, body: Option<&[u8]>, now: u64, status: u32) -> Decision {
    let d = decide(e, head, body, now);
    if let Some(f) = d.follow_up {
        e.on_response(f, status);
    }
    d
}
