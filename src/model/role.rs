//! A role as written in desired state (docs/contract.md §3). Pure data; permission logic lives in
//! [`super::permission`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::span::Spanned;
use super::text::Text;

/// One role: a named set of permissions, optionally inheriting other roles' permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    /// The role's name; unique and used to refer to it.
    pub name: Spanned<Text>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Spanned<Text>>,
    /// Permissions as `domain:entity:action`; any segment may be `*`, and `*` alone grants all.
    /// Absent means the role's permissions are not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Spanned<Text>>>,
    /// Roles whose permissions this role also grants. Genesys Cloud has no inheritance, so
    /// scimctl flattens it into the effective permission set it writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherits: Vec<Spanned<Text>>,
    /// Lets this role hold permissions that `policy.deniedPermissions` forbids, with a written
    /// reason that reviewers can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_denied_permissions: Option<Spanned<DeniedPermissionsOverride>>,
}

/// The written justification for a role that holds denied permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeniedPermissionsOverride {
    /// Why this role needs denied permissions (at least a sentence; reviewed in pull requests).
    pub reason: String,
}
