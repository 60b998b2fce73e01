//! The request as the engine sees it: its head, its path, what its user agent declares.

pub mod cookies;
pub mod fetch;
pub mod head;
pub mod path;
pub mod user_agent;
