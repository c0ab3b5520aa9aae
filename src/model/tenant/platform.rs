//! Genesys Cloud's Platform API objects that a plan compares: role definitions with their
//! permission policies, divisions, and direct role grants (docs/genesys.md, "Roles, divisions
//! and grants"). Their serde names are the Platform API's; the requests that read and write
//! them are the client layer's (`scim::roles`, `scim::grants`).
//!
//! A role keeps every field it does not model (`rest`), so that a role read and written back
//! loses nothing scimctl does not manage: a permission policy's conditions and named
//! resources survive an update that keeps the live policies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One permission policy of a role: `domain`, `entityName` and the actions it allows
/// (`DomainPermissionPolicy`, docs/genesys.md §4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionPolicy {
    /// The permission domain, e.g. `directory`, or `*`.
    pub domain: String,
    /// The entity, e.g. `user`, or `*`.
    pub entity_name: String,
    /// The actions, e.g. `["add", "edit"]`, or `["*"]`.
    #[serde(default)]
    pub action_set: Vec<String>,
    /// Every other field as the server sent it (`policyName`, `allowConditions`,
    /// `resourceConditionNode`, `namedResources`, …).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl PermissionPolicy {
    /// A policy with no field beyond domain, entity and actions.
    #[must_use]
    pub fn new(domain: &str, entity_name: &str, action_set: Vec<String>) -> PermissionPolicy {
        PermissionPolicy {
            domain: domain.to_owned(),
            entity_name: entity_name.to_owned(),
            action_set,
            rest: Map::new(),
        }
    }
}

/// A role definition as the Platform API lists it (`DomainOrganizationRole`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformRole {
    /// Its id.
    pub id: String,
    /// Its name: what SCIM `roles[].value` refers to.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// "General" string permissions such as `group_creation`; kept as they are.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The permission policies.
    #[serde(default)]
    pub permission_policies: Vec<PermissionPolicy>,
    /// A role Genesys Cloud ships (`employee`, `admin`, …): never deleted by scimctl.
    #[serde(default)]
    pub default: bool,
    /// Whether the role is based on a shipped default role.
    #[serde(default)]
    pub base: bool,
}

/// The body of a role create (POST) or replace (PUT): everything a PUT replaces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleBody {
    /// The role's name.
    pub name: String,
    /// Its description, left out when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// General string permissions (kept from the live role on a replace).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The permission policies.
    #[serde(default)]
    pub permission_policies: Vec<PermissionPolicy>,
}

impl PlatformRole {
    /// The body that writes this role back unchanged.
    #[must_use]
    pub fn body(&self) -> RoleBody {
        RoleBody {
            name: self.name.clone(),
            description: self.description.clone(),
            permissions: self.permissions.clone(),
            permission_policies: self.permission_policies.clone(),
        }
    }
}

/// The division id that stands for every division of the organisation in a grant, as the
/// Platform API and Genesys's Terraform provider take it (docs/genesys.md §4). How Genesys
/// names it when a grant is read back is UNCONFIRMED, so only the id is relied on.
pub const ALL_DIVISIONS: &str = "*";

/// A division as the Platform API lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Division {
    /// Its id.
    pub id: String,
    /// Its name (`Home` for the home division of a new organisation).
    #[serde(default)]
    pub name: String,
    /// Whether it is the organisation's home division.
    #[serde(default, rename = "homeDivision")]
    pub home: bool,
}

/// One direct grant of a role in a division to a user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The role's id.
    pub role_id: String,
    /// The role's name, as the subject read gave it (empty when it gave none).
    pub role_name: String,
    /// The division's id (`*` for all divisions).
    pub division_id: String,
    /// The division's name, as the subject read gave it (empty when it gave none).
    pub division_name: String,
}

/// A user in the `deleted` state on Genesys Cloud (docs/genesys.md, "Deleted users"): invisible
/// to SCIM, but its email still taken, so a create of that userName fails until it is
/// restored. Found with `POST /api/v2/users/search` (state `deleted`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    /// Its id (kept through deletion and restore).
    pub id: String,
    /// Its email, the SCIM `userName` it blocks.
    pub email: String,
    /// Its Platform `version`, which the restore `PATCH` must carry.
    pub version: u64,
}

/// A license definition of a Genesys Cloud org (`LicenseDefinition`): known by its id, since
/// the Platform API gives it no name (issue 18, item 1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseDefinition {
    /// Its id, what a license assignment names.
    pub id: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// The licenses one user holds (`UserLicenses`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLicenses {
    /// The user's id.
    pub id: String,
    /// The ids of the license definitions it holds.
    #[serde(default)]
    pub licenses: Vec<String>,
}
