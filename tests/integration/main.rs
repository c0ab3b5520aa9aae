//! Integration tests: the real `scimctl` binary against fixture directories.
//!
//! One test binary (`autotests = false`), one module per area.

// Test helpers fail loudly: an unwrap here is an assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adoption;
mod apply;
mod apply_stress;
mod audit_crash;
mod bulk;
mod cli;
mod doctor;
mod example;
mod explain;
mod export;
mod faults;
mod files;
mod genesys;
mod genesys_group_roles;
mod genesys_groups;
mod genesys_licenses;
mod genesys_paths;
mod genesys_restore;
mod genesys_settings;
mod genesys_writers;
mod hostile;
mod listener;
mod lookalike;
mod overrides;
mod passwords;
mod peer;
mod plan;
mod quirks;
mod reading;
mod recipes;
mod safety;
mod sandbox;
mod sandbox_crash;
mod sandbox_lock;
mod scenarios;
mod support;
mod watch;
mod watch_swap;
