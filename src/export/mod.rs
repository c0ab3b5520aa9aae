//! `scimctl export`: the live tenant written as desired-state YAML that plans to nothing.
//!
//! The work is split in three files, and only the last touches the filesystem:
//! - `convert.rs`: [`desired_of`] turns a [`Snapshot`] into desired-state model values
//!   ([`Exported`]): only the attributes the planner manages, with ids resolved to the names
//!   desired state uses (a manager by `userName`, members by `userName` or group
//!   `displayName`), sorted by name case-insensitively, and with every value desired state
//!   could not hold (an invalid email, a date that does not exist, two live users the planner
//!   could not tell apart) left out and explained in a warning, so that the directory always
//!   loads;
//! - `layout.rs`: [`render`] lays those values out as files (relative path → YAML text)
//!   through the one YAML writer, [`crate::desired::yaml`]: users by department, then groups,
//!   the role names users hold, and a `scimctl.yaml` with `ownership: listed`. The same
//!   snapshot gives the same bytes;
//! - `write.rs`: [`write`](mod@write) puts the files in a directory atomically, refusing a
//!   non-empty one unless forced.
//!
//! The round trip is the contract: loading the directory and planning it against the same
//! tenant gives an empty plan. When the export cannot name every member of a group (the
//! member is not in the tenant, or filtered out), the generated `scimctl.yaml` makes group
//! members additive and says why, since authoritative members would remove them.
//! Passwords are never read or written; nothing read-only (`id`, `meta`, a user's `groups`)
//! is written either.

mod convert;
mod filter;
mod layout;
mod licenses;
pub mod write;

use std::collections::BTreeMap;

use crate::model::{Group, License, Role, Target, User};
use crate::plan::AttributeSupport;
use crate::scim::Snapshot;

pub use convert::desired_of;
pub use filter::{Attribute, Filter, Filters, GroupAttr, UserAttr};
pub use layout::{ItemStore, NO_DEPARTMENT, render, slug};

/// Most users or groups written to one file: the loader parses files in parallel and caps
/// each at 8 MiB and half a million values, and smaller files make smaller diffs.
pub const MAX_ENTRIES_PER_FILE: usize = 1_000;

/// Most bytes of YAML in one file (half the loader's limit per file).
pub const MAX_BYTES_PER_FILE: usize = 4 << 20;

/// Deepest group nesting the loader accepts without a `policy.maxGroupDepth`.
const DEFAULT_MAX_DEPTH: usize = 5;

/// Most routing skills or languages a user may have in desired state.
const MAX_ROUTING_ENTRIES: usize = 50;

/// What an export is asked to do.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// `--include` / `--exclude`.
    pub filters: Filters,
    /// Which attributes the target stores (its `/Schemas`); others are not written.
    pub support: AttributeSupport,
    /// The `target:` of the generated `scimctl.yaml`; `None` leaves it out, which means the
    /// default sandbox.
    pub target: Option<Target>,
    /// What the target is, for the comments of `scimctl.yaml` (a URL or `sandbox (path)`).
    pub description: String,
    /// The `matchBy.externalIdAuthority` the tenant was read with, written back so that the
    /// exported `externalId`s (that authority's entries) are read the same way.
    pub external_id_authority: Option<String>,
    /// Directories `target:`'s `fromFile` secrets are in, for `secrets.allowedDirs` (absolute).
    pub secret_dirs: Vec<String>,
    /// The target keeps each user's userName as its read-only `other` email (Genesys Cloud):
    /// that email is not exported (desired state may not write it, and plans never compare
    /// it).
    pub username_email: bool,
}

/// Desired state read off a live tenant, sorted, ready to render.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exported {
    /// Users, by userName case-insensitively.
    pub users: Vec<User>,
    /// Groups, by displayName case-insensitively.
    pub groups: Vec<Group>,
    /// The role names users hold (no permissions: a SCIM target does not expose them).
    pub roles: Vec<Role>,
    /// One license per license definition the exported users hold (Genesys Cloud), by id;
    /// empty when the target has no licenses.
    pub licenses: Vec<License>,
    /// Why group members must be additive (some could not be named), if they must.
    pub additive_members: Option<String>,
    /// The deepest group nesting, when deeper than the default limit of 5.
    pub max_group_depth: Option<u32>,
    /// What was left out and why, one line per kind of problem, in a stable order.
    pub warnings: Vec<String>,
}

/// Files of an export, by relative path with `/` separators, plus counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Export {
    /// Relative path → YAML text.
    pub files: BTreeMap<String, String>,
    /// Users written.
    pub users: usize,
    /// Files the users were written to.
    pub user_files: usize,
    /// Groups written.
    pub groups: usize,
    /// Role names written.
    pub roles: usize,
    /// Licenses written.
    pub licenses: usize,
    /// What was left out and why.
    pub warnings: Vec<String>,
}

/// The whole export of a snapshot: [`desired_of`], then [`render`].
#[must_use]
pub fn export(snapshot: &Snapshot, options: &ExportOptions) -> Export {
    let started = tokio::time::Instant::now();
    let exported = desired_of(snapshot, options);
    let converted = started.elapsed();
    let export = render(&exported, options);
    tracing::debug!(
        convert_ms = converted.as_millis(),
        render_ms = started.elapsed().saturating_sub(converted).as_millis(),
        "export built"
    );
    export
}

/// [`export`] for a large tenant, as `scimctl export` runs it: each user is rendered as it is
/// converted and kept in `store` (a temporary file: [`write::Spill`]) until the files are
/// laid out, and each file handed to `put` (relative path, text) as soon as it is laid out,
/// so neither the users' desired-state values nor the files' text are ever held together;
/// each user's JSON is taken out of `snapshot` and freed once the user is converted (its
/// id and name stay). The same files as [`export`], byte for byte; the [`Export`] returned
/// has no `files`.
pub fn export_into<S: ItemStore, E: From<S::Error>>(
    snapshot: &mut Snapshot,
    options: &ExportOptions,
    store: S,
    put: &mut dyn FnMut(String, String) -> Result<(), E>,
) -> Result<Export, E> {
    let mut users = layout::UserFiles::new(store);
    let json = convert::UsersJson::Taken(
        snapshot
            .users
            .iter_mut()
            .map(|u| Some(u.take_raw()))
            .collect(),
    );
    let exported = convert::convert(snapshot, json, options, &mut |u| users.add(&u));
    let user_count = users.users();
    let user_files = users.into_files(put)?;
    layout::render_rest(&exported, options, put)?;
    Ok(Export {
        files: BTreeMap::new(),
        users: user_count,
        user_files,
        groups: exported.groups.len(),
        roles: exported.roles.len(),
        licenses: exported.licenses.len(),
        warnings: exported.warnings,
    })
}

#[cfg(test)]
mod tests;
