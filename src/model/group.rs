//! A group as written in desired state (docs/contract.md §3). Pure data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::span::Spanned;
use super::text::Text;

/// One group of the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    /// The group's name; unique (case-insensitively) and used to refer to it.
    pub display_name: Spanned<Text>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Spanned<Text>>,
    /// Identifier from the system of record; preferred for matching live groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Spanned<Text>>,
    /// Members by name: users by `userName`, nested groups by `displayName`. Membership is the
    /// union of this list and the `groups` lists of users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Spanned<Text>>>,
    /// Earlier names of this group, so that a rename is a patch rather than delete + create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previously: Vec<Spanned<Text>>,
}
