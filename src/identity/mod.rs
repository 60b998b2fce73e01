//! Who a request is from: the client address, the session, the visitor cookie.

pub mod client;
pub mod session;
pub mod session_id;
pub mod visitor;
