//! The severity ladder of one endpoint: pass, challenge, block, in that order as the score rises.
//!
//! A policy's challenge bands need not meet its block threshold: the seed's own policy challenges
//! critical endpoints at 0.20–0.75 and blocks above 0.85, so a score in (0.75, 0.85] would meet no
//! rule and pass, while a lower score is challenged. A higher score must never get a softer
//! answer, so a score that no band covers takes the stronger of its neighbours: between two
//! challenge bands it is challenged; between the top band and the block threshold it is blocked;
//! above the top band of a policy without a block threshold it is challenged. Below the lowest
//! band it passes. `botgate lint` reports every such gap ([`gaps`]).

use super::tiers::ChallengeCondition;

/// Where a score falls on an endpoint's ladder (the block threshold itself is ruled by the block
/// tier before this is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rung {
    Pass,
    /// Inside a challenge band (how strictly: [`strictest`]).
    Challenge,
    /// In a gap whose stronger neighbour is a challenge band below it.
    GapChallenge,
    /// Between the top challenge band and the block threshold.
    GapBlock,
}

/// The rung of `score` among the challenge conditions that `apply` to an endpoint, with the
/// policy's block threshold (`bot_score_above`), if any.
pub fn rung(
    conditions: &[ChallengeCondition],
    apply: impl Fn(&ChallengeCondition) -> bool,
    block_above: Option<f64>,
    score: f64,
) -> Rung {
    let (mut band_below, mut band_above) = (false, false);
    for c in conditions.iter().filter(|c| apply(c)) {
        let (lo, hi) = c.score_range;
        if score >= lo && score <= hi {
            return Rung::Challenge;
        }
        band_below |= hi < score;
        band_above |= lo > score;
    }
    match (band_below, band_above || block_above.is_none()) {
        (false, _) => Rung::Pass,
        (true, true) => Rung::GapChallenge,
        (true, false) => Rung::GapBlock,
    }
}

/// How strictly the bands that apply at `score` (those starting at or below it) are to be
/// applied: observed only if every one of them only observes, and WebAuthn-only if any of them
/// requires it. So a band that observes or accepts a proof of work above a stricter one never
/// lets a higher score off more lightly.
pub fn strictest(
    conditions: &[ChallengeCondition],
    apply: impl Fn(&ChallengeCondition) -> bool,
    score: f64,
) -> (bool, bool) {
    let at_or_below = conditions.iter().filter(|c| apply(c) && c.score_range.0 <= score);
    at_or_below.fold((true, false), |(observe, webauthn), c| (observe && c.observe, webauthn || c.require_webauthn))
}

/// A score range no challenge band covers, above some band: what the ladder does there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// Exclusive lower end (a band's top).
    pub from: f64,
    /// Upper end: exclusive when a band starts there, inclusive at the block threshold or 1.0.
    pub to: f64,
    pub blocked: bool,
}

/// The gaps of an endpoint's ladder, lowest first.
pub fn gaps(bands: &[(f64, f64)], block_above: Option<f64>) -> Vec<Gap> {
    let mut sorted: Vec<(f64, f64)> = bands.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (lo, hi) in sorted {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let mut out: Vec<Gap> = merged
        .windows(2)
        .filter_map(|w| match w {
            [a, b] if b.0 > a.1 => Some(Gap { from: a.1, to: b.0, blocked: false }),
            _ => None,
        })
        .collect();
    if let Some(&(_, top)) = merged.last() {
        let ceiling = block_above.unwrap_or(1.0);
        if top < ceiling {
            out.push(Gap { from: top, to: ceiling, blocked: block_above.is_some() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(lo: f64, hi: f64) -> ChallengeCondition {
        ChallengeCondition {
            score_range: (lo, hi),
            risk_tiers: Vec::new(),
            endpoints: Vec::new(),
            observe: false,
            require_webauthn: false,
        }
    }

    #[test]
    fn a_score_between_the_top_band_and_the_block_threshold_is_blocked() {
        let c = [band(0.20, 0.75)];
        let r = |s| rung(&c, |_| true, Some(0.85), s);
        assert_eq!(r(0.10), Rung::Pass);
        assert_eq!(r(0.20), Rung::Challenge);
        assert_eq!(r(0.75), Rung::Challenge);
        assert_eq!(r(0.76), Rung::GapBlock);
        assert_eq!(r(0.85), Rung::GapBlock);
    }

    #[test]
    fn a_score_between_two_bands_is_challenged() {
        let c = [band(0.6, 0.8), band(0.2, 0.3)];
        assert_eq!(rung(&c, |_| true, Some(0.9), 0.45), Rung::GapChallenge);
        assert_eq!(rung(&c, |_| true, Some(0.9), 0.85), Rung::GapBlock);
    }

    #[test]
    fn without_a_block_threshold_the_top_band_extends_upwards() {
        assert_eq!(rung(&[band(0.3, 0.6)], |_| true, None, 0.95), Rung::GapChallenge);
    }

    #[test]
    fn bands_that_do_not_apply_are_not_neighbours() {
        let c = [band(0.2, 0.75)];
        assert_eq!(rung(&c, |_| false, Some(0.85), 0.8), Rung::Pass);
    }

    #[test]
    fn the_ladder_is_monotone_in_the_score() {
        let c = [band(0.6, 0.7), band(0.1, 0.2), band(0.3, 0.35)];
        for threshold in [Some(0.9), None] {
            let mut last = 0;
            for i in 0..=1000 {
                let s = f64::from(i) / 1000.0;
                let severity = if threshold.is_some_and(|t| s > t) {
                    2
                } else {
                    match rung(&c, |_| true, threshold, s) {
                        Rung::Pass => 0,
                        Rung::Challenge | Rung::GapChallenge => 1,
                        Rung::GapBlock => 2,
                    }
                };
                assert!(severity >= last, "score {s} got a softer answer");
                last = severity;
            }
        }
    }

    #[test]
    fn gaps_are_reported_with_what_happens_in_them() {
        let g = gaps(&[(0.3, 0.75), (0.2, 0.75)], Some(0.85));
        assert_eq!(g, vec![Gap { from: 0.75, to: 0.85, blocked: true }]);
        let g = gaps(&[(0.6, 0.85)], Some(0.85));
        assert!(g.is_empty());
        let g = gaps(&[(0.1, 0.2), (0.4, 0.5)], None);
        assert_eq!(g, vec![Gap { from: 0.2, to: 0.4, blocked: false }, Gap { from: 0.5, to: 1.0, blocked: false }]);
    }
}
