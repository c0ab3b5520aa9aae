//! Edits: what a change does to one resource, in terms the planner can compare and the
//! applier can send.
//!
//! An [`Edit`] names a managed attribute ([`Attr`], [`Multi`]) rather than a raw SCIM path, and
//! refers to other objects by [`Ref`] (kind, name and, once known, id), because a member or a
//! manager may be created by the same plan. The same edits become a PATCH request
//! (`scim::patch`, the client layer's wire mapping), the body of a create ([`apply`] on an empty object), or the server's
//! response in the planner's property tests ([`apply`] on the live JSON).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::model::tenant::{ENTERPRISE_SCHEMA, GENESYS_SCHEMA, RoleBody};

mod complex;
mod scalar;
pub use complex::Complex;
pub use scalar::Scalar;

/// The schema an attribute lives in.
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
#[serde(rename_all = "camelCase")]
pub enum Schema {
    /// Core User or Group.
    Core,
    /// The enterprise User extension (RFC 7643 §4.3).
    Enterprise,
    /// The Genesys Cloud User extension.
    Genesys,
}

impl Schema {
    /// The extension URN, `None` for core attributes.
    #[must_use]
    pub fn urn(self) -> Option<&'static str> {
        match self {
            Schema::Core => None,
            Schema::Enterprise => Some(ENTERPRISE_SCHEMA),
            Schema::Genesys => Some(GENESYS_SCHEMA),
        }
    }
}

/// A single-valued attribute scimctl manages.
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
#[serde(rename_all = "camelCase")]
pub enum Attr {
    /// `userName`.
    UserName,
    /// `displayName` (users and groups).
    DisplayName,
    /// `externalId`.
    ExternalId,
    /// `active`.
    Active,
    /// `title`.
    Title,
    /// Group `description` (not in the SCIM core Group schema; Genesys Cloud has it).
    Description,
    /// Enterprise `employeeNumber`.
    EmployeeNumber,
    /// Enterprise `department`.
    Department,
    /// Enterprise `division`.
    Division,
    /// Genesys `dateHire` in the enterprise extension.
    DateHire,
    /// Enterprise `manager` (a reference to a user).
    Manager,
    /// Genesys Cloud group `type` (a Platform API setting, never sent over SCIM).
    GroupType,
    /// Genesys Cloud group `visibility`.
    Visibility,
    /// Genesys Cloud group `rulesVisible`.
    RulesVisible,
    /// Genesys Cloud group `rolesEnabled`.
    RolesEnabled,
    /// Genesys Cloud group `callsEnabled`.
    CallsEnabled,
    /// Genesys Cloud group `includeOwners`.
    IncludeOwners,
}

impl Attr {
    /// The attribute's name as YAML and SCIM spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Attr::UserName => "userName",
            Attr::DisplayName => "displayName",
            Attr::ExternalId => "externalId",
            Attr::Active => "active",
            Attr::Title => "title",
            Attr::Description => "description",
            Attr::EmployeeNumber => "employeeNumber",
            Attr::Department => "department",
            Attr::Division => "division",
            Attr::DateHire => "dateHire",
            Attr::Manager => "manager",
            Attr::GroupType => "type",
            Attr::Visibility => "visibility",
            Attr::RulesVisible => "rulesVisible",
            Attr::RolesEnabled => "rolesEnabled",
            Attr::CallsEnabled => "callsEnabled",
            Attr::IncludeOwners => "includeOwners",
        }
    }

    /// Whether this is a Genesys Cloud group setting (written through the Platform API).
    #[must_use]
    pub fn is_group_setting(self) -> bool {
        matches!(
            self,
            Attr::GroupType
                | Attr::Visibility
                | Attr::RulesVisible
                | Attr::RolesEnabled
                | Attr::CallsEnabled
                | Attr::IncludeOwners
        )
    }

    /// Where it lives.
    #[must_use]
    pub fn schema(self) -> Schema {
        match self {
            Attr::EmployeeNumber
            | Attr::Department
            | Attr::Division
            | Attr::DateHire
            | Attr::Manager => Schema::Enterprise,
            _ => Schema::Core,
        }
    }

    /// The SCIM attribute path (RFC 7644 §3.5.2), with the URN prefix for extensions.
    #[must_use]
    pub fn path(self) -> String {
        scim_path(self.schema(), self.name())
    }
}

/// A multi-valued attribute scimctl manages as a keyed set.
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
#[serde(rename_all = "camelCase")]
pub enum Multi {
    /// `emails`, keyed by `type`.
    Emails,
    /// `phoneNumbers`, keyed by `type`.
    PhoneNumbers,
    /// `roles`, keyed by `value` (the role name).
    Roles,
    /// Genesys `routingSkills`, keyed by `name`.
    RoutingSkills,
    /// Genesys `routingLanguages`, keyed by `name`.
    RoutingLanguages,
}

impl Multi {
    /// The attribute's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Multi::Emails => "emails",
            Multi::PhoneNumbers => "phoneNumbers",
            Multi::Roles => "roles",
            Multi::RoutingSkills => "routingSkills",
            Multi::RoutingLanguages => "routingLanguages",
        }
    }

    /// Where it lives.
    #[must_use]
    pub fn schema(self) -> Schema {
        match self {
            Multi::RoutingSkills | Multi::RoutingLanguages => Schema::Genesys,
            _ => Schema::Core,
        }
    }

    /// The SCIM attribute path.
    #[must_use]
    pub fn path(self) -> String {
        scim_path(self.schema(), self.name())
    }
}

fn scim_path(schema: Schema, name: &str) -> String {
    match schema.urn() {
        None => name.to_owned(),
        Some(urn) => format!("{urn}:{name}"),
    }
}

/// How one value of a multi-valued attribute is picked out: the sub-attribute and its value,
/// e.g. `type` = `work`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ValueKey {
    /// `type`, `value` or `name`.
    pub sub: String,
    /// The value it must have.
    pub equals: String,
}

impl ValueKey {
    /// A key on sub-attribute `sub`.
    #[must_use]
    pub fn new(sub: &str, equals: &str) -> ValueKey {
        ValueKey {
            sub: sub.to_owned(),
            equals: equals.to_owned(),
        }
    }

    /// Whether a value of the attribute has this key (case-insensitively, as SCIM's `eq` on
    /// a case-insensitive string compares).
    #[must_use]
    pub fn matches(&self, item: &Value) -> bool {
        self.matches_sub(item.get(&self.sub))
    }

    /// [`ValueKey::matches`] for a value a plan holds.
    #[must_use]
    pub fn picks(&self, item: &Complex) -> bool {
        self.matches_sub(item.get(&self.sub))
    }

    fn matches_sub(&self, sub: Option<&Value>) -> bool {
        sub.and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(&self.equals))
    }
}

pub use crate::model::Kind;

/// A reference to another object: a member or a manager.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Ref {
    /// User or group.
    pub kind: Kind,
    /// Its userName or displayName, for people and for resolving objects created by the plan
    /// (shared with desired state: a group of thousands holds no copy of each name).
    pub name: crate::model::Text,
    /// Its live id; `None` when the same plan creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A role granted in one division (Genesys Cloud): names for people, ids for the Platform
/// API.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct GrantRef {
    /// The role's name.
    pub role: String,
    /// The role's id; `None` when the same run creates the role (resolved at apply time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    /// The division's name.
    pub division: String,
    /// The division's id.
    pub division_id: String,
}

impl GrantRef {
    /// How it shows in a diff: `Role @ Division`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} @ {}", self.role, self.division)
    }

    /// The role, as a reference to resolve.
    #[must_use]
    pub fn role_ref(&self) -> Ref {
        Ref {
            kind: Kind::Role,
            name: self.role.as_str().into(),
            id: self.role_id.clone(),
        }
    }
}

/// One change to one attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "edit", rename_all = "camelCase")]
pub enum Edit {
    /// Sets a single-valued attribute (`add` when it is absent live, else `replace`).
    Set {
        /// The attribute.
        attr: Attr,
        /// Its new value.
        value: Scalar,
    },
    /// Points `manager` at a user.
    SetManager {
        /// The manager.
        to: Ref,
    },
    /// Adds values to a multi-valued attribute.
    Add {
        /// The attribute.
        attr: Multi,
        /// The values.
        values: Vec<Complex>,
    },
    /// Replaces the values with `key` by `value`.
    Replace {
        /// The attribute.
        attr: Multi,
        /// Which values.
        // Boxed: most edits are `Set`s and `Add`s, and the plan of a big org holds millions
        // of edits, each as big as the biggest variant.
        key: Box<ValueKey>,
        /// The new value.
        value: Complex,
    },
    /// Removes the values with `key`.
    Remove {
        /// The attribute.
        attr: Multi,
        /// Which values.
        // Boxed, as for `Replace`.
        key: Box<ValueKey>,
    },
    /// Replaces every value of a multi-valued attribute with `values` (none: removes the
    /// attribute). Used only when no value filter picks out exactly the values a change
    /// touches, e.g. when the live set holds the same type twice and the same address twice.
    ReplaceAll {
        /// The attribute.
        attr: Multi,
        /// Its new values, in order.
        values: Vec<Complex>,
    },
    /// Adds group members.
    AddMembers {
        /// The members.
        members: Vec<Ref>,
    },
    /// Removes group members (by live id: only live members can be removed).
    RemoveMembers {
        /// The members.
        members: Vec<Ref>,
    },
    /// Sets a Genesys Cloud group's owners to exactly these users (`ownerIds` in a Platform
    /// API write, never a SCIM PATCH); none removes every owner.
    SetOwners {
        /// The owners.
        owners: Vec<Ref>,
    },
    /// Writes a role definition as a whole (a Platform API POST or PUT, never a SCIM
    /// PATCH): `body` is what is sent.
    Role {
        /// The whole role as it is to be.
        // Boxed: a rare edit, and a big one.
        body: Box<RoleBody>,
        /// Whether desired state writes the permissions; when not, `body` carries the live
        /// policies (or none, for a create), and an adopted role keeps its own.
        permissions: bool,
    },
    /// Grants and revokes roles in divisions (Genesys Cloud Platform API `bulkadd` and
    /// `bulkremove` on the user as a subject, never a SCIM PATCH).
    // Their lists are boxed slices, not vectors: every edit is as big as the biggest variant,
    // and a plan of 100,000 creates holds over half a million edits (issue 21).
    Grants {
        /// Grants to add.
        #[serde(default, skip_serializing_if = "<[GrantRef]>::is_empty")]
        add: Box<[GrantRef]>,
        /// Grants to remove.
        #[serde(default, skip_serializing_if = "<[GrantRef]>::is_empty")]
        remove: Box<[GrantRef]>,
    },
    /// Gives and takes a user's Genesys Cloud licenses (Platform API
    /// `POST /api/v2/license/organization`, in batches over every user of the run, never a
    /// SCIM PATCH).
    Licenses {
        /// Licenses to give.
        #[serde(
            default,
            skip_serializing_if = "<[crate::plan::licenses::LicenseRef]>::is_empty"
        )]
        add: Box<[crate::plan::licenses::LicenseRef]>,
        /// Licenses to take away.
        #[serde(
            default,
            skip_serializing_if = "<[crate::plan::licenses::LicenseRef]>::is_empty"
        )]
        remove: Box<[crate::plan::licenses::LicenseRef]>,
    },
    /// Sets the user's password again because its `fromEnv`/`fromFile` source no longer
    /// matches the fingerprint of the one last set (issue 19). Carries no value: the applier
    /// resolves the source when it sends the change, so no plan ever holds a password.
    Password,
}

/// Where a group's owners are, by user id, in its JSON (the Genesys client layer joins the
/// Platform API's settings into the SCIM group under their `GroupUpdate` names).
pub const OWNER_IDS: &str = "ownerIds";

/// A reference to an object that has no id yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name:?} has no id yet")]
pub struct Unresolved {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
}

/// Finds ids of objects created earlier in the same apply.
pub trait Resolve {
    /// The id of `r`, if it is known.
    fn id_of(&self, r: &Ref) -> Option<String>;
}

/// Resolves only references that already carry an id.
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownIds;

impl Resolve for KnownIds {
    fn id_of(&self, r: &Ref) -> Option<String> {
        r.id.clone()
    }
}

/// The id of `r`: its own, or one `resolver` knows.
pub fn resolve(r: &Ref, resolver: &dyn Resolve) -> Result<String, Unresolved> {
    r.id.clone()
        .or_else(|| resolver.id_of(r))
        .ok_or_else(|| Unresolved {
            kind: r.kind,
            name: r.name.to_string(),
        })
}

/// A group member value (`{value, type}`) for `r`.
pub fn member_value(r: &Ref, resolver: &dyn Resolve) -> Result<Value, Unresolved> {
    Ok(json!({"value": resolve(r, resolver)?, "type": r.kind.scim_type()}))
}

impl Edit {
    /// The attribute this edit writes, as a diff names it: `title`, `emails`, `manager`,
    /// `members`, `role` (a role definition) or `roleGrants`.
    #[must_use]
    pub fn attribute(&self) -> &'static str {
        match self {
            Edit::Set { attr, .. } => attr.name(),
            Edit::SetManager { .. } => "manager",
            Edit::Add { attr, .. }
            | Edit::Replace { attr, .. }
            | Edit::Remove { attr, .. }
            | Edit::ReplaceAll { attr, .. } => attr.name(),
            Edit::AddMembers { .. } | Edit::RemoveMembers { .. } => "members",
            Edit::SetOwners { .. } => "owners",
            Edit::Role { .. } => "role",
            Edit::Grants { .. } => "roleGrants",
            Edit::Licenses { .. } => "license",
            Edit::Password => "password",
        }
    }

    /// The references this edit needs resolved before it can be sent.
    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        let (one, many): (Option<&Ref>, &[Ref]) = match self {
            Edit::SetManager { to } => (Some(to), &[]),
            Edit::AddMembers { members } | Edit::RemoveMembers { members } => (None, members),
            Edit::SetOwners { owners } => (None, owners),
            _ => (None, &[]),
        };
        one.into_iter().chain(many)
    }
}

/// The object that holds `schema`'s attributes in `doc`, created if `create`.
fn container(
    doc: &mut Map<String, Value>,
    schema: Schema,
    create: bool,
) -> Option<&mut Map<String, Value>> {
    match schema.urn() {
        None => Some(doc),
        Some(urn) => {
            if !doc.contains_key(urn) {
                if !create {
                    return None;
                }
                doc.insert(urn.to_owned(), Value::Object(Map::new()));
            }
            doc.get_mut(urn).and_then(Value::as_object_mut)
        }
    }
}

/// Applies edits to a resource's JSON as a conforming server would: the body of a create
/// (from an empty object) or the live state after a PATCH.
pub fn apply(
    doc: &mut Map<String, Value>,
    edits: &[Edit],
    resolver: &dyn Resolve,
) -> Result<(), Unresolved> {
    for edit in edits {
        match edit {
            Edit::Set { attr, value } => {
                if let Some(c) = container(doc, attr.schema(), true) {
                    c.insert(attr.name().to_owned(), value.to_value());
                }
            }
            Edit::SetManager { to } => {
                let id = resolve(to, resolver)?;
                if let Some(c) = container(doc, Schema::Enterprise, true) {
                    c.insert("manager".to_owned(), json!({"value": id}));
                }
            }
            Edit::Add { attr, values } => {
                if let Some(c) = container(doc, attr.schema(), true) {
                    let list = c
                        .entry(attr.name())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if !list.is_array() {
                        *list = Value::Array(Vec::new());
                    }
                    if let Value::Array(items) = list {
                        items.extend(values.iter().map(Complex::to_value));
                    }
                }
            }
            Edit::Replace { attr, key, value } => {
                if let Some(Value::Array(items)) =
                    container(doc, attr.schema(), false).and_then(|c| c.get_mut(attr.name()))
                {
                    for item in items.iter_mut().filter(|i| key.matches(i)) {
                        *item = value.to_value();
                    }
                }
            }
            Edit::Remove { attr, key } => {
                if let Some(c) = container(doc, attr.schema(), false)
                    && let Some(Value::Array(items)) = c.get_mut(attr.name())
                {
                    items.retain(|i| !key.matches(i));
                    if items.is_empty() {
                        c.remove(attr.name());
                    }
                }
            }
            Edit::ReplaceAll { attr, values } => {
                if let Some(c) = container(doc, attr.schema(), !values.is_empty()) {
                    if values.is_empty() {
                        c.remove(attr.name());
                    } else {
                        let values = values.iter().map(Complex::to_value).collect();
                        c.insert(attr.name().to_owned(), Value::Array(values));
                    }
                }
            }
            Edit::AddMembers { members } => {
                let list = doc
                    .entry("members")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = list {
                    for m in members {
                        let value = member_value(m, resolver)?;
                        if !items.iter().any(|i| i.get("value") == value.get("value")) {
                            items.push(value);
                        }
                    }
                }
            }
            Edit::RemoveMembers { members } => {
                let ids = members
                    .iter()
                    .map(|m| resolve(m, resolver))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(Value::Array(items)) = doc.get_mut("members") {
                    items.retain(|i| {
                        !i.get("value")
                            .and_then(Value::as_str)
                            .is_some_and(|v| ids.iter().any(|id| id == v))
                    });
                }
            }
            Edit::SetOwners { owners } => {
                let ids = owners
                    .iter()
                    .map(|o| resolve(o, resolver).map(Value::String))
                    .collect::<Result<Vec<_>, _>>()?;
                doc.insert(OWNER_IDS.to_owned(), Value::Array(ids));
            }
            // A role is no SCIM resource: its body is the whole object (see the applier).
            // Grants are no SCIM attribute (though SCIM `roles` reads the names back).
            // The password is write-only: nothing to show of it.
            // Licenses are no SCIM attribute either.
            Edit::Role { .. } | Edit::Grants { .. } | Edit::Licenses { .. } | Edit::Password => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_ref(name: &str, id: Option<&str>) -> Ref {
        Ref {
            kind: Kind::User,
            name: name.into(),
            id: id.map(str::to_owned),
        }
    }

    // Applying edits to JSON behaves as a server applying the PATCH would.
    #[test]
    fn apply_like_a_server() {
        let mut doc = Map::new();
        let edits = vec![
            Edit::Set {
                attr: Attr::Division,
                value: crate::plan::Scalar::from("Home"),
            },
            Edit::SetManager {
                to: user_ref("boss", Some("b1")),
            },
            Edit::Add {
                attr: Multi::Emails,
                values: vec![
                    Complex::of(json!({"value": "a@x", "type": "work"})),
                    Complex::of(json!({"value": "h@x", "type": "home"})),
                ],
            },
            Edit::Replace {
                attr: Multi::Emails,
                key: Box::new(ValueKey::new("type", "WORK")),
                value: Complex::of(json!({"value": "b@x", "type": "work"})),
            },
            Edit::Remove {
                attr: Multi::Emails,
                key: Box::new(ValueKey::new("type", "home")),
            },
            Edit::AddMembers {
                members: vec![user_ref("m", Some("m1")), user_ref("m", Some("m1"))],
            },
        ];
        apply(&mut doc, &edits, &KnownIds).expect("applies");
        assert_eq!(
            Value::Object(doc.clone()),
            json!({
                ENTERPRISE_SCHEMA: {"division": "Home", "manager": {"value": "b1"}},
                "emails": [{"value": "b@x", "type": "work"}],
                "members": [{"value": "m1", "type": "User"}]
            })
        );
        apply(
            &mut doc,
            &[Edit::RemoveMembers {
                members: vec![user_ref("m", Some("m1"))],
            }],
            &KnownIds,
        )
        .expect("applies");
        assert_eq!(doc["members"], json!([]));
        let all = |values: Vec<Value>| Edit::ReplaceAll {
            attr: Multi::Emails,
            values: values.into_iter().map(Complex::of).collect(),
        };
        let two = vec![
            json!({"value": "c@x"}),
            json!({"value": "d@x", "type": "work"}),
        ];
        apply(&mut doc, &[all(two.clone())], &KnownIds).expect("applies");
        assert_eq!(doc["emails"], Value::Array(two));
        apply(&mut doc, &[all(Vec::new())], &KnownIds).expect("applies");
        assert!(!doc.contains_key("emails"), "no values: no attribute");
    }
}
