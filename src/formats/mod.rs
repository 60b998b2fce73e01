//! Formats botgate reads from outside, as pure parsers: robots.txt (RFC 9309) and HTTP message
//! signatures with their key directories (RFC 9421, Web Bot Auth), vendors' answers, webdis's
//! commands and replies. Below the policy, which holds
//! what they parse, and the stages, which ask them questions; they import nothing of the crate.

pub mod robots;
pub mod signature;
pub mod vendors;
pub mod webdis;
