//! A license tier as written in desired state (docs/contract.md §3). Pure data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::span::Spanned;
use super::text::Text;

/// A license tier and the roles it entitles a user to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct License {
    /// The license's name; unique and used by users' `license`.
    pub name: Spanned<Text>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Spanned<Text>>,
    /// The only roles a user holding this license may be granted.
    pub allowed_roles: Vec<Spanned<Text>>,
    /// Genesys Cloud only: the id of the license definition (`/api/v2/license/definitions`)
    /// this license is, so that a user's `license` is assigned on the target for real. Without
    /// it, and on plain SCIM targets, the license stays a local rule about roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesys_license: Option<Spanned<Text>>,
}
