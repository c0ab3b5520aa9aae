//! scimctl keeps an identity tenant (Genesys Cloud, any SCIM 2.0 server) in line with a
//! directory of YAML files.
//!
//! Layers, each depending only on the ones after it:
//! - [`cli`]: the command line and exit codes (product.md §2);
//! - [`desired`]: loading and validating the desired-state directory (the only reader of it);
//! - [`schema`]: JSON Schemas generated from the model;
//! - [`model`]: the domain types and pure functions over them.

pub mod cli;
pub mod desired;
pub mod error;
pub mod model;
pub mod sandbox;
pub mod schema;
pub mod scim;
