//! A group as written in desired state (docs/contract.md §3). Pure data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::span::Spanned;
use super::text::Text;
use super::user::RoleGrant;

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
    /// Genesys Cloud group type. Managed only when written; plain SCIM targets have no such
    /// setting (a warning, never sent).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Spanned<GroupType>>,
    /// Genesys Cloud: who can see the group. Managed only when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Spanned<GroupVisibility>>,
    /// Genesys Cloud: whether the group's membership rules are visible. Managed only when
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_visible: Option<Spanned<bool>>,
    /// Genesys Cloud: whether roles can be granted to the group. Managed only when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_enabled: Option<Spanned<bool>>,
    /// Genesys Cloud: whether the group can be called. Managed only when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_enabled: Option<Spanned<bool>>,
    /// Genesys Cloud: whether the owners count as members. Managed only when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_owners: Option<Spanned<bool>>,
    /// Genesys Cloud: the group's owners, by `userName` of users in desired state; compared
    /// as a set. Managed only when written (`[]` removes every owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<Spanned<Text>>>,
    /// Genesys Cloud: roles granted to the group (subject type `PC_GROUP`), which its members
    /// hold through it; the same forms as a user's roles (a name is the home division,
    /// `{name, divisions}` limits it, `divisions: ["*"]` is all divisions). Needs
    /// `rolesEnabled: true`, which the plan sets when the group lacks it. Managed only when
    /// written; plain SCIM targets cannot grant roles to groups (a warning, never sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Spanned<RoleGrant>>>,
}

impl Group {
    /// Whether any Genesys Cloud group setting is written, and the first place one is.
    #[must_use]
    pub fn first_setting(&self) -> Option<(&'static str, super::Span)> {
        let flags = [
            ("rulesVisible", &self.rules_visible),
            ("rolesEnabled", &self.roles_enabled),
            ("callsEnabled", &self.calls_enabled),
            ("includeOwners", &self.include_owners),
        ];
        self.kind
            .as_ref()
            .map(|k| ("type", k.span))
            .or_else(|| self.visibility.as_ref().map(|v| ("visibility", v.span)))
            .or_else(|| {
                flags
                    .into_iter()
                    .find_map(|(name, f)| f.as_ref().map(|f| (name, f.span)))
            })
            .or_else(|| {
                self.owners.as_ref().map(|o| {
                    (
                        "owners",
                        o.first().map_or(self.display_name.span, |o| o.span),
                    )
                })
            })
    }
}

/// A Genesys Cloud group's type (`GroupCreate.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupType {
    /// Managed by administrators; what SCIM and the admin UI manage, and what scimctl creates
    /// when `type` is not written.
    Official,
    /// Owned by people.
    Social,
}

impl GroupType {
    /// As Genesys spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Official => "official",
            GroupType::Social => "social",
        }
    }
}

/// Who can see a Genesys Cloud group (`GroupCreate.visibility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupVisibility {
    /// Everyone; what scimctl creates when `visibility` is not written.
    Public,
    /// Its owners.
    Owners,
    /// Its members.
    Members,
}

impl GroupVisibility {
    /// As Genesys spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GroupVisibility::Public => "public",
            GroupVisibility::Owners => "owners",
            GroupVisibility::Members => "members",
        }
    }
}
