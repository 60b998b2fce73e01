//! Native only: the traffic simulator (labelled people and bot campaigns through the engine),
//! and the replay of recorded traffic through a policy.

pub mod bots;
mod clients;
mod humans;
pub mod replay;
pub mod report;
pub mod simulate;
