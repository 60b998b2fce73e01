//! Challenges: proof-of-work puzzles, clearance tokens, the pages that show them.

pub mod gate;
pub mod pages;
pub mod pow;
pub mod token;
