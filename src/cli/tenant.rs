//! One read of the whole tenant for the commands that only read (`explain --live`, `export`;
//! `plan` and `apply` read through [`crate::session`]), and the log line every read leaves.

use super::Failure;
use super::reading::ReadProgress;
use super::runtime::{self, Runtime};
use crate::error::Error;

/// How a read shows its progress: the command's name on each line, and `-q`.
#[derive(Clone, Copy)]
pub(crate) struct Shown {
    pub(crate) label: &'static str,
    pub(crate) quiet: bool,
}

/// What one read of the tenant gives a command.
pub(crate) struct TenantRead {
    /// The attributes the target's `/Schemas` say it stores.
    pub(crate) support: crate::plan::AttributeSupport,
    /// Every user and group.
    pub(crate) snapshot: crate::scim::Snapshot,
    /// The target, as plans name it.
    pub(crate) target: String,
    /// SCIM requests sent.
    pub(crate) requests: u64,
    /// Whether the target keeps each user's userName as its read-only `other` email
    /// (Genesys Cloud).
    pub(crate) username_email: bool,
}

/// Connects to the target, reads its schemas and its whole tenant side by side, and closes
/// the connection (an embedded sandbox saves its state).
pub(crate) fn read_tenant(
    runtime: &Runtime,
    config: &crate::model::Config,
    dir: &std::path::Path,
    overrides: &crate::target::Overrides<'_>,
    shown: Shown,
) -> Result<TenantRead, Failure> {
    let runtime = runtime.get()?;
    let connection = runtime::connect(runtime, config, dir, overrides)?;
    let started = tokio::time::Instant::now();
    let progress = ReadProgress::tenant(
        runtime.handle(),
        shown.label,
        shown.quiet,
        &connection.client,
    );
    let live = runtime.block_on(crate::session::read(&connection.client, None));
    let target = connection.description.clone();
    let requests = connection.client.stats().requests;
    connection.close()?;
    let live = live.map_err(Error::from)?;
    progress.finish();
    log_read(&target, &live.snapshot, requests, started.elapsed());
    Ok(TenantRead {
        username_email: live.capabilities.username_email,
        support: live.capabilities.attributes,
        snapshot: live.snapshot,
        target,
        requests,
    })
}

/// Logs one read of the whole tenant.
pub(super) fn log_read(
    target: &str,
    snapshot: &crate::scim::Snapshot,
    requests: u64,
    elapsed: std::time::Duration,
) {
    tracing::info!(
        %target,
        users = snapshot.users.len(),
        groups = snapshot.groups.len(),
        requests,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "read the live tenant"
    );
}
