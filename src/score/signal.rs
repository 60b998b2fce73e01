//! The behavioural score: named signals, each with a strength in [0, 1] and a weight, combined
//! as a noisy-OR (`1 - Π(1 - w·s)`), so the score stays in [0, 1], grows with every independent
//! signal, and every point of it is explained by a reason.

use crate::policy::Weights;

/// A signal that contributed to a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    pub name: &'static str,
    pub strength: f64,
}

/// Signals below this weighted strength are not named as reasons.
const REASON_FLOOR: f64 = 0.05;

pub fn combine(weights: &Weights, signals: &[Signal]) -> (f64, Vec<&'static str>) {
    let mut reasons = Vec::new();
    let score = combine_into(weights, signals, &mut reasons);
    (score, reasons)
}

/// The score alone of [`combine`] (no reasons, no allocation).
pub fn score(weights: &Weights, signals: &[Signal]) -> f64 {
    let keep: f64 =
        signals.iter().map(|s| 1.0 - (weights.of(s.name) * s.strength.clamp(0.0, 1.0)).clamp(0.0, 1.0)).product();
    (1.0 - keep).clamp(0.0, 1.0)
}

/// [`combine`], naming the reasons into `reasons` (no allocation of its own).
pub fn combine_into(weights: &Weights, signals: &[Signal], reasons: &mut Vec<&'static str>) -> f64 {
    let mut keep = 1.0;
    for s in signals {
        let contribution = (weights.of(s.name) * s.strength.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        keep *= 1.0 - contribution;
        if contribution >= REASON_FLOOR && !reasons.contains(&s.name) {
            reasons.push(s.name);
        }
    }
    (1.0 - keep).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_stays_in_range() {
        let all: Vec<Signal> = crate::policy::SIGNALS.iter().map(|(n, _)| Signal { name: n, strength: 5.0 }).collect();
        let (s, r) = combine(&Weights::default(), &all);
        assert!((0.0..=1.0).contains(&s));
        assert_eq!(r.len(), all.len());
    }
}
