//! SCIM resources as the tenant holds them (RFC 7643): users, groups, their multi-valued
//! attributes, references and the two User extensions scimctl manages.
//!
//! These are the resource model of RFC 7643, independent of any transport: their serde
//! names are the schema's attribute names, which is also how a [`Live`](super::Live) keeps
//! a resource (the server's JSON, parsed on demand). Parsing is deliberately tolerant of
//! real servers: `schemas` may be missing, booleans may arrive as strings (`"True"`),
//! numbers as `2.0`, and unknown attributes are ignored. Serialising writes only what is
//! set. The request and response envelopes (list responses, PATCH bodies, errors, the
//! service provider configuration) are the client layer's, in `scim::wire`.

use serde::{Deserialize, Serialize};

use super::lenient::{
    lenient_f64, lenient_opt_bool, lenient_opt_string, lenient_string, lenient_vec,
};
use crate::model::Kind;

/// Schema URN of a core User.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Schema URN of a core Group.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Schema URN of the enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Schema URN of the Genesys Cloud User extension.
pub const GENESYS_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";

/// A resource scimctl reads and writes through SCIM: a [`User`] or a [`Group`].
pub trait Resource: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// [`Kind::User`] or [`Kind::Group`].
    const KIND: Kind;
    /// Server id.
    fn id(&self) -> Option<&str>;
    /// ETag of this copy.
    fn version(&self) -> Option<&str>;
    /// `userName` or `displayName`.
    fn natural_key(&self) -> &str;
}

impl Resource for User {
    const KIND: Kind = Kind::User;
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn version(&self) -> Option<&str> {
        self.meta.version.as_deref()
    }
    fn natural_key(&self) -> &str {
        &self.user_name
    }
}

impl Resource for Group {
    const KIND: Kind = Kind::Group;
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn version(&self) -> Option<&str> {
        self.meta.version.as_deref()
    }
    fn natural_key(&self) -> &str {
        &self.display_name
    }
}

/// `meta` of a resource (RFC 7643 §3.1): only what scimctl uses. `resourceType`, `created`
/// and `location` are not kept: at 100,000 users they would cost tens of megabytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Last modification time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Entity tag, e.g. `W/"3"`; sent back in `If-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One value of a multi-valued attribute such as `emails` or `phoneNumbers`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiValue {
    /// The value (address, number).
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: String,
    /// `work`, `home`, `mobile`, `other`, ...
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the primary value.
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub primary: Option<bool>,
}

/// A reference to another resource: a group member, a user's group, a manager, a role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The referenced resource's id (or, for roles, the role name).
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: String,
    /// `User` or `Group` for members; `direct`/`indirect` for a user's groups.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Human-readable name the server may add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The referenced resource's URI (`…/Users/2`), which some servers give instead of, or
    /// beside, `type`.
    #[serde(default, rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Reference {
    /// For a group member, whether the server says it is a `User` or a `Group`: from `type`,
    /// else from a `$ref` whose path names the `Users` or `Groups` endpoint; `None` when the
    /// server says neither (members are then told apart by id alone).
    #[must_use]
    pub fn member_kind(&self) -> Option<crate::model::Kind> {
        use crate::model::Kind;
        match self.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("user") => return Some(Kind::User),
            Some("group") => return Some(Kind::Group),
            _ => {}
        }
        let path = self.reference.as_deref()?;
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let _id = segments.next()?;
        match segments.next()? {
            "Users" => Some(Kind::User),
            "Groups" => Some(Kind::Group),
            _ => None,
        }
    }
}

/// A routing skill or language of the Genesys extension.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Proficiency {
    /// Case-sensitive skill or language name.
    pub name: String,
    /// 0.0 to 5.0; servers may return `2` as `2.0`.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub proficiency: f64,
}

/// The enterprise User extension (RFC 7643 §4.3), with Genesys's `division` and `dateHire`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnterpriseUser {
    /// Employee number.
    #[serde(
        default,
        deserialize_with = "lenient_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub employee_number: Option<String>,
    /// Department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Division name (Genesys Cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    /// Manager: `value` is the manager's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Reference>,
    /// Hire date `YYYY-MM-DD` (Genesys Cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_hire: Option<String>,
}

impl EnterpriseUser {
    fn is_empty(&self) -> bool {
        self == &EnterpriseUser::default()
    }
}

/// The Genesys Cloud User extension.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesysUser {
    /// Routing skills.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing_skills: Vec<Proficiency>,
    /// Routing languages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing_languages: Vec<Proficiency>,
    /// Ids of the user in other systems, one per authority (the SCIM one, prefixed
    /// `x-pc:scimv2:v1`, is read-only).
    #[serde(
        default,
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_ids: Vec<ExternalIdEntry>,
}

impl GenesysUser {
    fn is_empty(&self) -> bool {
        self.routing_skills.is_empty()
            && self.routing_languages.is_empty()
            && self.external_ids.is_empty()
    }
}

/// One entry of the Genesys `externalIds`: an id of the user in the system `authority`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalIdEntry {
    /// The system the id belongs to.
    #[serde(default, deserialize_with = "lenient_string")]
    pub authority: String,
    /// The id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: String,
}

/// A SCIM User as read from and written to a server.
///
/// `password` is write-only: it is never read back, never logged (`Debug` redacts it) and is
/// set only on create.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Schema URNs; filled in by [`User::with_schemas`] before a write. Not read back: the
    /// extensions present say the same, and a snapshot need not hold three URNs per user.
    #[serde(default, skip_deserializing, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    /// Server-assigned id; absent on create. Some servers send a number.
    #[serde(
        default,
        deserialize_with = "lenient_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// Id in the system of record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Login name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_name: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether the account is active; servers send `true`, `"true"` or `"True"`.
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub active: Option<bool>,
    /// Job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Email addresses.
    #[serde(
        default,
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub emails: Vec<MultiValue>,
    /// Phone numbers.
    #[serde(
        default,
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub phone_numbers: Vec<MultiValue>,
    /// Roles (RFC 7643 §4.1.2); on Genesys Cloud `value` is the role name.
    #[serde(
        default,
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub roles: Vec<Reference>,
    /// Initial password (write-only).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Enterprise extension.
    #[serde(
        default,
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        skip_serializing_if = "Option::is_none"
    )]
    pub enterprise: Option<EnterpriseUser>,
    /// Genesys Cloud extension.
    #[serde(
        default,
        rename = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User",
        skip_serializing_if = "Option::is_none"
    )]
    pub genesys: Option<GenesysUser>,
    /// Server metadata; never written.
    #[serde(default, skip_serializing)]
    pub meta: Meta,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("user_name", &self.user_name)
            .field("external_id", &self.external_id)
            .field("display_name", &self.display_name)
            .field("active", &self.active)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("version", &self.meta.version)
            .finish_non_exhaustive()
    }
}

impl User {
    /// Sets `schemas` to the core schema plus the extensions that carry data, and drops
    /// empty extensions, so a strict server is never sent an extension it may not know.
    #[must_use]
    pub fn with_schemas(mut self) -> User {
        if self
            .enterprise
            .as_ref()
            .is_some_and(EnterpriseUser::is_empty)
        {
            self.enterprise = None;
        }
        if self.genesys.as_ref().is_some_and(GenesysUser::is_empty) {
            self.genesys = None;
        }
        self.schemas = vec![USER_SCHEMA.to_owned()];
        if self.enterprise.is_some() {
            self.schemas.push(ENTERPRISE_SCHEMA.to_owned());
        }
        if self.genesys.is_some() {
            self.schemas.push(GENESYS_SCHEMA.to_owned());
        }
        self
    }
}

/// A SCIM Group as read from and written to a server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Schema URNs; filled in by [`Group::with_schemas`] before a write, not read back.
    #[serde(default, skip_deserializing, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    /// Server-assigned id; absent on create. Some servers send a number.
    #[serde(
        default,
        deserialize_with = "lenient_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// Id in the system of record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Group name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub display_name: String,
    /// Free-text description: not in the core Group schema, but Genesys Cloud groups (and
    /// the sandbox) have one. Written only when the target's schemas list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Members: users and groups, by id.
    #[serde(
        default,
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub members: Vec<Reference>,
    /// Genesys Cloud group settings, read from and written to the Platform API (SCIM groups
    /// have none); `None` elsewhere, and then never written.
    #[serde(flatten)]
    pub settings: GroupSettings,
    /// Server metadata; never written.
    #[serde(default, skip_serializing)]
    pub meta: Meta,
}

/// A Genesys Cloud group's settings, as its Platform API names them (`GroupUpdate`); the
/// client layer joins them into the SCIM group it reads. Owners are user ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSettings {
    /// `official` or `social`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `public`, `owners` or `members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// `rulesVisible`.
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub rules_visible: Option<bool>,
    /// `rolesEnabled`.
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub roles_enabled: Option<bool>,
    /// `callsEnabled`.
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub calls_enabled: Option<bool>,
    /// `includeOwners`.
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_owners: Option<bool>,
    /// The owners' user ids (`ownerIds` in a `GroupUpdate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_ids: Option<Vec<String>>,
}

impl Group {
    /// Sets `schemas` to the core Group schema.
    #[must_use]
    pub fn with_schemas(mut self) -> Group {
        self.schemas = vec![GROUP_SCHEMA.to_owned()];
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real servers' variations all parse: string booleans, `2.0`, missing schemas, unknown
    /// attributes, a single object where a list belongs.
    #[test]
    fn tolerant_user_parsing() {
        let user: User = serde_json::from_str(
            r#"{"id":"a1","userName":"ada@example.com","active":"True",
                "emails":{"value":"ada@example.com","type":"work","primary":"true"},
                "nickName":"unknown attributes are ignored",
                "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User":
                  {"routingSkills":[{"name":"Sales","proficiency":2.0}]},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                  {"employeeNumber":42,"manager":{"value":"m1"}},
                "meta":{"version":"W/\"7\""}}"#,
        )
        .expect("parses");
        assert_eq!(user.active, Some(true));
        assert_eq!(user.emails[0].primary, Some(true));
        let skills = &user.genesys.as_ref().expect("extension").routing_skills;
        assert!((skills[0].proficiency - 2.0).abs() < f64::EPSILON);
        let enterprise = user.enterprise.expect("enterprise");
        assert_eq!(enterprise.employee_number.as_deref(), Some("42"));
        assert_eq!(user.meta.version.as_deref(), Some("W/\"7\""));
    }

    /// A write never carries meta, groups or empty extensions, and names every extension it
    /// carries in `schemas`.
    #[test]
    fn user_write_shape() {
        let user = User {
            user_name: "ada@example.com".into(),
            enterprise: Some(EnterpriseUser {
                department: Some("Support".into()),
                ..EnterpriseUser::default()
            }),
            genesys: Some(GenesysUser::default()),
            meta: Meta {
                version: Some("W/\"1\"".into()),
                ..Meta::default()
            },
            ..User::default()
        }
        .with_schemas();
        let json = serde_json::to_value(&user).expect("serialises");
        assert_eq!(
            json["schemas"],
            serde_json::json!([USER_SCHEMA, ENTERPRISE_SCHEMA])
        );
        assert!(json.get("meta").is_none());
        assert!(json.get(GENESYS_SCHEMA).is_none());
    }

    /// The password is never shown by Debug and never read back.
    #[test]
    fn password_is_write_only() {
        let user = User {
            user_name: "a".into(),
            password: Some("hunter2-secret".into()),
            ..User::default()
        };
        assert!(!format!("{user:?}").contains("hunter2"));
        let back: User =
            serde_json::from_str(r#"{"userName":"a","password":"x"}"#).expect("parses");
        assert_eq!(back.password, None);
    }

    /// A member's kind comes from `type` (any case), else from a `$ref` naming `Users` or
    /// `Groups`; neither says nothing.
    #[test]
    fn member_kind_from_type_or_ref() {
        use crate::model::Kind;
        let m = |v: serde_json::Value| serde_json::from_value::<Reference>(v).expect("member");
        assert_eq!(
            m(serde_json::json!({"value": "1", "type": "group"})).member_kind(),
            Some(Kind::Group)
        );
        assert_eq!(
            m(serde_json::json!({"value": "1", "$ref": "https://h/scim/v2/Users/1"})).member_kind(),
            Some(Kind::User)
        );
        assert_eq!(
            m(serde_json::json!({"value": "1", "$ref": "../Groups/1"})).member_kind(),
            Some(Kind::Group)
        );
        assert_eq!(m(serde_json::json!({"value": "1"})).member_kind(), None);
        assert_eq!(
            m(serde_json::json!({"value": "1", "$ref": "https://h/Other/1"})).member_kind(),
            None
        );
    }
}
