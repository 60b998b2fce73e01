//! Challenges: proof-of-work puzzles, clearance tokens, the pages that show them, where a
//! browser goes back to afterwards, and the silent challenge (the beacon added to pages).

pub mod back;
pub mod beacon;
pub mod gate;
pub mod inject;
pub mod nonces;
pub mod pages;
pub mod pow;
pub mod token;
