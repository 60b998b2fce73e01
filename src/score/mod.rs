//! The behavioural score: signals from the head, the session, the TLS handshake and the client's
//! shape, combined into one number with its reasons.

pub mod beacon;
pub mod campaigns;
pub mod headers;
pub mod session;
pub mod signal;
pub mod tls;
