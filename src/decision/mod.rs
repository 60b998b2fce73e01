//! The decision: the record, its replies, the evidence.

pub mod record;
