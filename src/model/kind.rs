//! The kinds of object scimctl manages. One enum for the planner, the client layer, explain
//! and export: a kind means the same everywhere, and a `match` on it is checked everywhere
//! when a kind is added.

use serde::{Deserialize, Serialize};

/// A kind of managed object.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A user (SCIM `/Users`), named by `userName`.
    User,
    /// A group (SCIM `/Groups`), named by `displayName`.
    Group,
    /// A role definition (Genesys Cloud, through the Platform API), named by `name`.
    Role,
}

impl Kind {
    /// The word used in messages and JSON: `user`, `group`, `role`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Role => "role",
        }
    }

    /// `User`, `Group` or `Role`, as SCIM member `type`s spell them (roles are never
    /// members).
    #[must_use]
    pub fn scim_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Role => "Role",
        }
    }

    /// The SCIM endpoint segment, `Users` or `Groups`; roles have none (they live in the
    /// Genesys Platform API, `/api/v2/authorization/roles`).
    #[must_use]
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
            Kind::Role => "roles",
        }
    }

    /// The attribute that identifies an object of this kind to people (and that a create
    /// can be looked up by): `userName`, `displayName` or `name`.
    #[must_use]
    pub fn natural_key(self) -> &'static str {
        match self {
            Kind::User => "userName",
            Kind::Group => "displayName",
            Kind::Role => "name",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    /// The names are the ones plans, explain output and messages already use.
    #[test]
    fn names_are_stable() {
        for (kind, name, json) in [
            (Kind::User, "user", "\"user\""),
            (Kind::Group, "group", "\"group\""),
            (Kind::Role, "role", "\"role\""),
        ] {
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_string(&kind).expect("serialises"), json);
            assert_eq!(
                serde_json::from_str::<Kind>(json).expect("parses"),
                kind,
                "{name}"
            );
        }
        assert_eq!(Kind::Group.endpoint(), "Groups");
        assert_eq!(Kind::User.natural_key(), "userName");
    }
}
