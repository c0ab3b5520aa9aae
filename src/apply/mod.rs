//! The applier: runs a reviewed plan against the tenant, with its audit log, initial
//! passwords and progress reporting.

pub mod audit;
pub mod engine;
pub mod fingerprint;
mod graph;
pub(crate) mod merge;
pub mod password;
pub mod progress;
pub mod record;
pub mod rotation;
#[cfg(test)]
mod tests;
mod twins;
