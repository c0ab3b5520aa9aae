//! What a target can store and how it behaves, as one value the planner reads: the
//! attributes its `/Schemas` list, the PATCH, ETag, bulk and filter support its
//! `/ServiceProviderConfig` announces, and the behaviours of its family (Genesys Cloud's
//! groups hold no groups, and so on).
//!
//! The client layer builds it from the connection (`scim::client::Dialect::capabilities`),
//! so the planner never asks "is this Genesys?" and never reads the target from
//! `scimctl.yaml`: what it plans for is what it talks to.

use std::collections::HashSet;

/// Which attributes the target's schemas have (`/Schemas`, RFC 7643 §7). A server such as
/// scim2-server refuses any attribute its schemas lack, so the planner does not write them
/// and warns once instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeSupport {
    /// `None`: the server did not say; everything is assumed supported.
    known: Option<HashSet<(ResourceSchema, String)>>,
}

/// A schema of `/Schemas`, as far as the planner cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceSchema {
    /// Core User.
    User,
    /// Core Group.
    Group,
    /// Enterprise User extension.
    Enterprise,
    /// Genesys Cloud User extension.
    Genesys,
}

impl AttributeSupport {
    /// Everything supported (the server publishes no schemas).
    #[must_use]
    pub fn all() -> AttributeSupport {
        AttributeSupport { known: None }
    }

    /// Exactly these writable attributes: (schema, attribute name).
    pub fn only<'a>(attrs: impl IntoIterator<Item = (ResourceSchema, &'a str)>) -> Self {
        AttributeSupport {
            known: Some(
                attrs
                    .into_iter()
                    .map(|(s, a)| (s, a.to_ascii_lowercase()))
                    .collect(),
            ),
        }
    }

    /// Whether `name` of `schema` can be written.
    #[must_use]
    pub fn has(&self, schema: ResourceSchema, name: &str) -> bool {
        self.known
            .as_ref()
            .is_none_or(|k| k.contains(&(schema, name.to_ascii_lowercase())))
    }

    /// Whether sub-attribute `sub` of `attr` (`emails`, `type`) can be written: yes unless
    /// the schemas list sub-attributes of `attr` and `sub` is not among them.
    #[must_use]
    pub fn has_sub(&self, schema: ResourceSchema, attr: &str, sub: &str) -> bool {
        let Some(known) = &self.known else {
            return true;
        };
        let prefix = format!("{}.", attr.to_ascii_lowercase());
        known.contains(&(schema, format!("{prefix}{}", sub.to_ascii_lowercase())))
            || !known
                .iter()
                .any(|(s, a)| *s == schema && a.starts_with(&prefix))
    }
}

/// Everything the planner may assume about the target it plans for. The default is a plain
/// RFC 7644 server that publishes no schemas: every attribute stored, groups nest, users can
/// be deleted while active.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // one flag per documented server behaviour
pub struct TargetCapabilities {
    /// The attributes the target stores.
    pub attributes: AttributeSupport,
    /// Groups may contain groups. When false (Genesys Cloud), a member group's users are
    /// made direct members.
    pub nested_groups: bool,
    /// An active user may be deleted outright. When false (Genesys Cloud, where a deleted
    /// user loses its role grants for good), a user is deactivated first and deleted by a
    /// later run once it is inactive.
    pub delete_active_users: bool,
    /// The server keeps the userName as a read-only `emails[type=other]` (Genesys Cloud):
    /// that value is neither compared nor removed.
    pub username_email: bool,
    /// Role grants can be limited to divisions (Genesys Cloud's Platform API).
    pub divisions: bool,
    /// Groups have Genesys Cloud's settings (`type`, `visibility`, `rulesVisible`,
    /// `rolesEnabled`, `callsEnabled`, `includeOwners`, owners), read and written through its
    /// Platform API. When false, YAML that sets them gets a warning and they are never sent.
    pub group_settings: bool,
    /// A new user gets the org's default roles (`policy.defaultRoles`) only when its create
    /// names no roles (Genesys Cloud, docs/genesys.md §4): a create that names roles names
    /// the default roles too.
    pub default_roles_unless_named: bool,
    /// PATCH is supported (RFC 7644 §3.5.2).
    pub patch: bool,
    /// ETags are supported: writes carry `If-Match`.
    pub etag: bool,
    /// `/Bulk` is supported.
    pub bulk: bool,
    /// Filters are supported.
    pub filter: bool,
    /// The server lets a client change a user's password (`changePassword.supported` in its
    /// `/ServiceProviderConfig`): rotation is planned only then.
    pub change_password: bool,
    /// Which PATCH paths may pick out values of a multi-valued attribute.
    pub value_paths: ValuePaths,
}

/// The PATCH paths a target takes for one value of a multi-valued attribute (RFC 7644
/// §3.5.2 "valuePath"). The planner picks its edits by this, and the client layer writes them
/// by it, so neither asks which server it talks to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValuePaths {
    /// RFC 7644 in full: any value filter (`emails[value eq "a@x"]`,
    /// `routingSkills[name eq "Sales"]`), and a replace writes the whole value
    /// (`emails[type eq "work"]`).
    #[default]
    AnyFilter,
    /// Only the forms Genesys Cloud documents (docs/genesys.md §6): an email or phone number
    /// picked out by `type`, replaced one sub-attribute at a time
    /// (`emails[type eq "work"].value`) and removed whole (`emails[type eq "work"]`), and a
    /// role removed by name (`roles[value eq "X"]`). Any other change to a multi-valued
    /// attribute replaces the whole attribute.
    TypeFilters,
}

impl ValuePaths {
    /// Whether a filter on sub-attribute `sub` may pick out values of `attr` (its SCIM
    /// name) for an edit that `removes` them (else replaces them).
    #[must_use]
    pub fn allows(self, attr: &str, sub: &str, removes: bool) -> bool {
        match self {
            ValuePaths::AnyFilter => true,
            ValuePaths::TypeFilters => match attr {
                "emails" | "phoneNumbers" => sub == "type",
                "roles" => removes && sub == "value",
                _ => false,
            },
        }
    }

    /// Whether a replace writes each sub-attribute (`emails[type eq "work"].value`) rather
    /// than the whole value.
    #[must_use]
    pub fn sub_attributes(self) -> bool {
        self == ValuePaths::TypeFilters
    }
}

impl TargetCapabilities {
    /// A plain SCIM target that stores exactly `attributes`.
    #[must_use]
    pub fn storing(attributes: AttributeSupport) -> Self {
        TargetCapabilities {
            attributes,
            ..TargetCapabilities::default()
        }
    }
}

impl Default for TargetCapabilities {
    fn default() -> Self {
        TargetCapabilities {
            attributes: AttributeSupport::all(),
            nested_groups: true,
            delete_active_users: true,
            username_email: false,
            divisions: false,
            group_settings: false,
            default_roles_unless_named: false,
            patch: true,
            etag: false,
            bulk: false,
            filter: true,
            change_password: true,
            value_paths: ValuePaths::AnyFilter,
        }
    }
}
