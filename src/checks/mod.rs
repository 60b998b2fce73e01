//! The checks on a request: the allow tier, rate limits, request sequences, the detector.

pub mod allow;
pub mod detector;
pub mod dns;
pub mod failed_sessions;
pub mod fcrdns;
pub mod fleet;
pub mod limits;
pub mod sequences;
pub mod similarity;
