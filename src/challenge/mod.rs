//! Challenges: proof-of-work puzzles, clearance tokens, the pages that show them, and where a
//! browser goes back to afterwards.

pub mod back;
pub mod gate;
pub mod nonces;
pub mod pages;
pub mod pow;
pub mod token;
