//! Native only: the traffic simulator (labelled people and bot campaigns through the engine).

pub mod bots;
mod clients;
mod humans;
pub mod simulate;
