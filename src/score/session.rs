//! Signals from the session's run of requests, and the site's rendering share they are read
//! against.

/// Weight of the newest request in the session's smoothed score.
pub const SESSION_ALPHA: f64 = 0.3;

use super::signal::Signal;
use crate::identity::session::Profile;

/// Navigations a session must have made before its navigation pattern counts.
const MIN_NAVIGATIONS: u16 = 4;

/// Signals from the session's run of requests. `site_renders`: most sessions on this worker
/// fetch their pages' sub-resources through it (see [`Rendering`]).
pub fn session_signals(p: &Profile, site_renders: bool, out: &mut Vec<Signal>) {
    let mut push = |name, strength: f64| {
        if strength > 0.0 {
            out.push(Signal { name, strength: strength.min(1.0) });
        }
    };
    // Humans rarely sustain more than a request every two seconds.
    push("velocity", (p.per_minute - 30.0) / 90.0);
    // Scheduled clients: many gaps, nearly all the same length, and short.
    if let (Some(cv), true) = (p.interval_cv, p.mean_interval_ms < 120_000.0) {
        push("regular_intervals", (0.15 - cv) / 0.15);
    }
    if p.requests >= 12 {
        push("low_variety", (0.3 - p.distinct_ratio) / 0.25);
    }
    if p.requests >= 6 {
        push("sensitive_share", (p.sensitive_share - 0.5) / 0.4);
    }
    if p.responses >= 6 {
        push("error_ratio", (p.error_ratio - 0.3) / 0.4);
    }
    // A session (kept by its cookie) that comes from one network after another: a rotating proxy
    // pool. People bring two (Wi-Fi, then their carrier), rarely three or four.
    push("address_hopping", (f64::from(p.networks) - 4.0) / 3.0);
    if p.navigations >= MIN_NAVIGATIONS {
        // People move through a site by its links (same-origin, with a referer); a client
        // that jumps to every page from outside (typed, bookmarked, `page.goto`, an HTTP
        // client) has a list of URLs. The landing navigation is cold for everyone.
        // People who open page after page from search results or bookmarks exist, so alone
        // this is weak.
        let after_first = f64::from(p.navigations - 1);
        let cold = f64::from(p.cold_navigations);
        // Claims of in-site navigation from pages the session never visited: a client replaying
        // a link click's headers with a fixed referer. One can be a person's odd path (a page
        // kept open from an earlier visit); three are a pattern.
        push("phantom_referers", (f64::from(p.phantom_referers) - 1.0) / 2.0);
        if cold >= 0.9 * after_first {
            push("cold_navigations", (cold - 2.0) / 8.0);
            // Typed or bookmarked, page after page, never a link: people open a handful that
            // way; a script's `goto` or an HTTP client's list of URLs, dozens.
            push("direct_navigations", (f64::from(p.direct_navigations) - 8.0) / 8.0);
            // A browser rendering those pages fetches scripts, styles, images or XHR; a
            // client that only reads the HTML of a list of URLs does not. People whose cache
            // holds every asset and whose pages run no script rarely also open a dozen pages
            // from outside.
            if site_renders && p.subresources == 0 {
                push("unrendered_navigations", (cold - 5.0) / 8.0);
            }
        }
    }
}

/// Whether the pages served through this worker are rendered through it too: the share of
/// repeat navigations (a session's second and later) whose session has fetched a sub-resource.
/// A site whose assets come from a CDN sees almost none, and `unrendered_navigations` stays silent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rendering {
    navigations: u32,
    rendered: u32,
}

impl Rendering {
    /// Sessions heard before the share is trusted.
    pub const WARM_UP: u32 = 25;

    /// One session's word on whether the site's pages render: given once per session (its
    /// second navigation), and only by sessions nothing flags, so a flood of throwaway visits
    /// cannot outvote the people and turn `unrendered_navigations` off.
    pub fn record(&mut self, rendered: bool) {
        if self.navigations >= 4096 {
            self.navigations /= 2;
            self.rendered /= 2;
        }
        self.navigations += 1;
        self.rendered += u32::from(rendered);
    }

    pub fn site_renders(&self) -> bool {
        self.navigations >= Self::WARM_UP && self.rendered * 2 >= self.navigations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Weights;
    use crate::request::fetch::Fetch;
    use crate::score::signal::combine;

    /// A session's signals after `navs` navigations (`cold`: how each is started) and `subs`
    /// sub-resources.
    fn session(navs: &[Option<bool>], subs: u16, site_renders: bool) -> (f64, Vec<&'static str>) {
        let mut s = crate::identity::session::Session::default();
        let at = |i: u64| i * 9_000 + (i * i * 1_237) % 7_000;
        for (i, cold) in navs.iter().enumerate() {
            s.record(at(i as u64), format!("/products/{i}").as_bytes(), false);
            s.record_fetch(Fetch::Navigation { cold: *cold }, b"/", None);
        }
        for _ in 0..subs {
            s.record_fetch(Fetch::Subresource, b"/", None);
        }
        let mut out = Vec::new();
        session_signals(&s.profile(at(navs.len() as u64)), site_renders, &mut out);
        combine(&Weights::default(), &out)
    }

    #[test]
    fn a_list_of_urls_read_without_rendering_is_named() {
        // Low-and-slow scraper: fourteen pages, each opened from nowhere, nothing rendered.
        let (score, reasons) = session(&[Some(true); 14], 0, true);
        assert_eq!(reasons, vec!["cold_navigations", "unrendered_navigations"]);
        // At full strength: inside the medium-tier challenge range, short of a block (0.85):
        // these two alone ask for proof of work, they never block.
        assert!((0.75..0.85).contains(&score), "{score}");
        // Twelve pages reach the medium-tier challenge (0.60); eleven do not.
        let (score, _) = session(&[Some(true); 12], 0, true);
        assert!(score >= 0.6, "{score}");
        let (score, _) = session(&[Some(true); 11], 0, true);
        assert!(score < 0.6, "{score}");
    }

    #[test]
    fn people_who_trip_one_half_stay_below_every_challenge_floor() {
        // Opening ten search results, each page rendered.
        let (score, reasons) = session(&[Some(true); 10], 6, true);
        assert_eq!(reasons, vec!["cold_navigations"]);
        assert!(score < 0.2, "{score}");
        // Warm cache and no scripts (reader mode, NoScript), following links.
        let mut navs = vec![Some(false); 15];
        navs[0] = Some(true);
        assert_eq!(session(&navs, 0, true), (0.0, vec![]));
        // Behind a proxy that strips every header: no evidence either way.
        assert_eq!(session(&[None; 15], 0, true), (0.0, vec![]));
        // One link followed among many typed addresses breaks the run.
        let mut navs = vec![Some(true); 8];
        navs[4] = Some(false);
        assert_eq!(session(&navs, 0, true), (0.0, vec![]));
        // A site whose assets come from a CDN: nothing to miss.
        let (_, reasons) = session(&[Some(true); 14], 0, false);
        assert_eq!(reasons, vec!["cold_navigations"]);
    }

    #[test]
    fn rendering_is_trusted_once_most_repeat_navigations_render() {
        let mut r = Rendering::default();
        for i in 0..Rendering::WARM_UP - 1 {
            r.record(i % 3 != 0);
        }
        assert!(!r.site_renders(), "warming up");
        r.record(true);
        assert!(r.site_renders());
        let mut cdn = Rendering::default();
        for i in 0..5_000 {
            cdn.record(i % 10 == 0);
        }
        assert!(!cdn.site_renders());
    }
}
