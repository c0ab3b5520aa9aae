//! scimctl keeps an identity tenant (Genesys Cloud, any SCIM 2.0 server) in line with a
//! directory of YAML files.
//!
//! Layers, each depending only on the ones after it:
//! - [`cli`]: the command line and exit codes (docs/contract.md §2);
//! - [`apply`]: running a plan against the tenant, with audit log, initial passwords and progress;
//! - [`export`]: the live tenant written as desired-state YAML;
//! - [`desired`]: loading and validating the desired-state directory (the only reader of it);
//! - [`explain`]: why a user, group or role has what it has, with the YAML chain behind it;
//! - [`schema`]: JSON Schemas generated from the model;
//! - [`target`]: `scimctl.yaml`'s target (or `--target`) turned into a connected client;
//! - [`overrides`]: facts from outside the YAML (HRIS terminations) that reconciles respect;
//! - [`webhook`]: signed outbound event webhooks and the inbound HRIS termination endpoint;
//! - [`scim`]: the client layer, the only code that speaks HTTP to a tenant;
//! - [`sandbox`]: the embedded SCIM 2.0 store, the default target and the test bed;
//! - [`model`]: the domain types and pure functions over them;
//! - [`backoff`]: the one retry delay schedule (exponential, capped, jittered);
//! - [`disk`]: advisory file locks and atomic file writes, for every module that keeps files.

pub mod apply;
pub mod backoff;
pub mod cli;
pub mod desired;
pub mod disk;
pub mod doctor;
pub mod error;
pub mod explain;
pub mod export;
pub mod model;
pub mod overrides;
pub mod plan;
pub mod sandbox;
pub mod schema;
pub mod scim;
pub mod session;
pub mod target;
pub mod watch;
pub mod webhook;
