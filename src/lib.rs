//! botgate: a bot-mitigation filter for Envoy, as a pure engine and a thin proxy-wasm shell.

pub mod base;
pub mod challenge;
pub mod checks;
pub mod decision;
pub mod engine;
pub mod identity;
#[cfg(not(target_arch = "wasm32"))]
pub mod lab;
pub mod policy;
pub mod request;
pub mod score;

#[cfg(target_arch = "wasm32")]
mod shell;
