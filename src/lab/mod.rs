//! Native only: the simulator.

pub mod simulate;
