//! The domain: the desired state (users, groups, roles, licenses and `scimctl.yaml`, with
//! source positions), the tenant as read ([`tenant`]), the kinds of object both hold
//! ([`Kind`]) and what a target can store ([`capabilities`]). Pure data and pure functions
//! only: no file, network or clock access.

pub mod capabilities;
mod config;
mod group;
mod kind;
mod license;
pub mod permission;
mod role;
mod source;
mod span;
pub mod tenant;
mod text;
mod user;

pub use config::{
    CollectionMode, Collections, Config, GroupPrune, InboundWebhook, MatchBy, OAuthClient,
    Ownership, OwnershipMode, PasswordRules, Policy, Protected, Prune, Safety, Secrets, Selector,
    Target, UserPrune, Watch, WebhookSettings,
};
pub use group::{Group, GroupType, GroupVisibility};
pub use kind::Kind;
pub use license::License;
pub use role::{DeniedPermissionsOverride, Role};
pub use source::{PasswordSource, SecretSource, ValueSource};
pub use span::{FileId, Location, SourceMap, Span, Spanned};
pub(crate) use span::{SPANNED_FIELDS, SPANNED_NAME};
pub use text::{Text, escape, escape_lines, is_unsafe_char};
pub use user::{Email, EmailType, PhoneNumber, PhoneType, Proficiency, RoleGrant, User};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The top level of a desired-state YAML file (any file under the directory except
/// `scimctl.yaml`). Every list is optional; files are merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFile {
    /// Users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    /// Groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    /// License tiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
}
