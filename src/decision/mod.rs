//! The decision: the record of what happens to a request and why, the local reply, and the
//! evidence (verdict headers and the access-log object).

pub mod evidence;
pub mod record;
pub mod reply;
pub mod ruling;
