//! The behavioural score: signals from the head, the session and the client's shape.

pub mod behaviour;
pub mod tls;
