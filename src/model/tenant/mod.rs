//! The tenant as read: a [`Snapshot`] of every user and group (each a [`Live`] resource,
//! the server's JSON parsed on demand), and on Genesys Cloud the role definitions, divisions
//! and direct grants beside them.
//!
//! This is what the planner compares desired state against. It is pure data: reading it
//! from a server (HTTP, paging, retries) is the client layer's job (`scim::snapshot`), and
//! so is turning a plan's edits into requests.

pub(crate) mod lenient;
mod live;
mod platform;
mod resource;

use std::collections::HashMap;

pub use live::{Live, LiveGroup, LiveUser};
pub use platform::{
    ALL_DIVISIONS, DeletedUser, Division, Grant, LicenseDefinition, PermissionPolicy, PlatformRole,
    RoleBody, UserLicenses,
};
pub use resource::{
    ENTERPRISE_SCHEMA, EnterpriseUser, ExternalIdEntry, GENESYS_SCHEMA, GROUP_SCHEMA, GenesysUser,
    Group, GroupSettings, Meta, MultiValue, Proficiency, Reference, Resource, USER_SCHEMA, User,
};

/// Every user and group of the tenant, as read at (about) one moment, each kept as the
/// server's JSON and parsed on demand (see [`Live`]).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// All users, in the server's order.
    pub users: Vec<LiveUser>,
    /// All groups, in the server's order.
    pub groups: Vec<LiveGroup>,
    /// Every role definition (Genesys Cloud, read through the Platform API); `None` when the
    /// target does not manage role definitions (plain SCIM).
    pub roles: Option<Vec<PlatformRole>>,
    /// Every division (Genesys Cloud); `None` on plain SCIM.
    pub divisions: Option<Vec<Division>>,
    /// Direct role grants by user id (Genesys Cloud), read only for the users whose desired
    /// roles are limited to divisions (`ScimClient::read_grants`); `None` when none
    /// were read.
    pub grants: Option<HashMap<String, Vec<Grant>>>,
    /// Role grants made to groups (subject type `PC_GROUP`, Genesys Cloud) by group id, read
    /// for the live groups when a desired group declares roles or `policy.adminRoles` is set
    /// (`ScimClient::read_group_grants`); `None` when none were read.
    pub group_grants: Option<HashMap<String, Vec<Grant>>>,
    /// Users in the `deleted` state (Genesys Cloud) whose email a desired user would take,
    /// read only for desired users with no live match (`ScimClient::find_deleted_users`);
    /// empty elsewhere. The planner restores them instead of creating.
    pub deleted_users: Vec<DeletedUser>,
    /// The org's license definitions and the licenses each user holds (Genesys Cloud), read
    /// only when some YAML license maps a definition (`genesysLicense`); `None` otherwise.
    pub licenses: Option<LiveLicenses>,
}

/// The license definitions of a Genesys Cloud org and who holds which (issue 18, item 1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveLicenses {
    /// Every definition of the org.
    pub definitions: Vec<LicenseDefinition>,
    /// Per user id, the ids of the definitions it holds (sorted); a user missing holds none.
    pub held: HashMap<String, Vec<String>>,
}

impl LiveLicenses {
    /// The definitions user `id` holds.
    #[must_use]
    pub fn of(&self, id: &str) -> &[String] {
        self.held.get(id).map_or(&[], Vec::as_slice)
    }

    /// Whether the org defines license `id`.
    #[must_use]
    pub fn defines(&self, id: &str) -> bool {
        self.definitions.iter().any(|d| d.id == id)
    }
}
