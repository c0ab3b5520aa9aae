//! RFC 7643/7644 wire types: users, groups, list responses, PATCH requests, error bodies and
//! the service provider configuration.
//!
//! Parsing is deliberately tolerant of real servers: `schemas` may be missing, booleans may
//! arrive as strings (`"True"`), numbers as `2.0`, an error `status` as a string or a number,
//! and unknown attributes are ignored. Serialising writes only what is set. Pure data: no I/O.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Schema URN of a core User.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Schema URN of a core Group.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Schema URN of the enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Schema URN of the Genesys Cloud User extension.
pub const GENESYS_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
/// Schema URN of a list response.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Schema URN of a PATCH request.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Schema URN of an error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM resource kind scimctl reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ResourceKind {
    /// The endpoint segment, e.g. `Users`.
    #[must_use]
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The attribute that identifies a resource of this kind to people (and that a create
    /// can be looked up by): `userName` or `displayName`.
    #[must_use]
    pub fn natural_key(self) -> &'static str {
        match self {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
        })
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
}

impl GenesysUser {
    fn is_empty(&self) -> bool {
        self.routing_skills.is_empty() && self.routing_languages.is_empty()
    }
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
    /// Server metadata; never written.
    #[serde(default, skip_serializing)]
    pub meta: Meta,
}

impl Group {
    /// Sets `schemas` to the core Group schema.
    #[must_use]
    pub fn with_schemas(mut self) -> Group {
        self.schemas = vec![GROUP_SCHEMA.to_owned()];
        self
    }
}

/// A list response (RFC 7644 §3.4.2). `Resources` may be missing when there are none.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
pub struct ListResponse<T> {
    /// Number of results matching the query, over all pages.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_results: u64,
    /// 1-based index of the first result in this page.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub start_index: Option<u64>,
    /// Number of results in this page.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub items_per_page: Option<u64>,
    /// The results.
    #[serde(default, rename = "Resources", alias = "resources")]
    pub resources: Vec<T>,
}

/// A schema from `/Schemas` (RFC 7643 §7): its URN and top-level attributes.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaDefinition {
    /// The schema URN.
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: String,
    /// Its attributes.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub attributes: Vec<SchemaAttribute>,
}

/// One attribute of a [`SchemaDefinition`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaAttribute {
    /// Attribute name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    /// `readOnly`, `readWrite`, `immutable` or `writeOnly` (default `readWrite`).
    #[serde(default)]
    pub mutability: Option<String>,
}

impl SchemaAttribute {
    /// Whether a client may write it.
    #[must_use]
    pub fn writable(&self) -> bool {
        !self
            .mutability
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("readOnly"))
    }
}

/// One PATCH operation (RFC 7644 §3.5.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// `add`, `replace` or `remove`.
    pub op: PatchOpKind,
    /// Attribute path; absent for a path-less add/replace of an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// New value; absent for `remove`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// PATCH operation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOpKind {
    /// Add a value (appends to multi-valued attributes).
    Add,
    /// Replace a value.
    Replace,
    /// Remove a value.
    Remove,
}

/// A PATCH request body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchRequest<'a> {
    /// Always the PatchOp URN.
    pub schemas: [&'static str; 1],
    /// The operations, applied in order and atomically by the server.
    #[serde(rename = "Operations")]
    pub operations: &'a [PatchOperation],
}

impl<'a> PatchRequest<'a> {
    /// A PATCH body for `operations`.
    #[must_use]
    pub fn new(operations: &'a [PatchOperation]) -> PatchRequest<'a> {
        PatchRequest {
            schemas: [PATCH_OP_SCHEMA],
            operations,
        }
    }
}

/// An error body: RFC 7644 §3.12, or the `message`/`code` shape of non-SCIM APIs such as the
/// Genesys Cloud Platform API.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// HTTP status, as a string or a number.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub status: Option<String>,
    /// SCIM error type, e.g. `uniqueness`, `invalidVers`, `noTarget`.
    #[serde(default)]
    pub scim_type: Option<String>,
    /// Human-readable detail.
    #[serde(default)]
    pub detail: Option<String>,
    /// Non-SCIM message.
    #[serde(default)]
    pub message: Option<String>,
    /// Non-SCIM error code.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub code: Option<String>,
}

impl ErrorBody {
    /// Reads an error body of any shape: a SCIM error, a `{message, code}` error, or text
    /// (kept short and on one line, since it may be an HTML page).
    #[must_use]
    pub fn parse(bytes: &[u8]) -> ErrorBody {
        if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes)
            && (body.detail.is_some() || body.message.is_some() || body.scim_type.is_some())
        {
            return body;
        }
        let text = String::from_utf8_lossy(bytes);
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let detail = if flat.is_empty() {
            None
        } else if flat.chars().count() > 200 {
            Some(format!("{}…", flat.chars().take(200).collect::<String>()))
        } else {
            Some(flat)
        };
        ErrorBody {
            detail,
            ..ErrorBody::default()
        }
    }

    /// The best one-line description the body offers.
    #[must_use]
    pub fn description(&self) -> Option<String> {
        match (&self.detail, &self.message, &self.code) {
            (Some(d), _, _) => Some(d.clone()),
            (None, Some(m), Some(c)) => Some(format!("{m} ({c})")),
            (None, Some(m), None) => Some(m.clone()),
            (None, None, Some(c)) => Some(c.clone()),
            (None, None, None) => None,
        }
    }
}

/// `/ServiceProviderConfig` (RFC 7643 §5), the parts scimctl adapts to.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    /// PATCH support.
    #[serde(default)]
    pub patch: Supported,
    /// Bulk support.
    #[serde(default)]
    pub bulk: Bulk,
    /// Filter support and the most results a query returns.
    #[serde(default)]
    pub filter: Filter,
    /// Sorting support.
    #[serde(default)]
    pub sort: Supported,
    /// ETag support.
    #[serde(default)]
    pub etag: Supported,
}

/// A `{supported: bool}` feature.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Supported {
    /// Whether the feature is supported.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub supported: bool,
}

/// Bulk settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bulk {
    /// Whether bulk is supported.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub supported: bool,
    /// Most operations per bulk request.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub max_operations: Option<u64>,
}

/// Filter settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Whether filtering is supported.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub supported: bool,
    /// Most results a query returns.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub max_results: Option<u64>,
}

/// Quotes `value` as a SCIM filter string literal (RFC 7644 §3.4.2.2 uses JSON strings).
#[must_use]
pub fn filter_literal(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient_opt_bool(d)?.unwrap_or(false))
}

fn lenient_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(de::Error::custom(format!(
            "expected a boolean, found {other}"
        ))),
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_opt_string(d)?.unwrap_or_default())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string, found {other}"
        ))),
    }
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(0.0),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| de::Error::custom("number out of range")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected a number, found {s:?}"))),
        other => Err(de::Error::custom(format!(
            "expected a number, found {other}"
        ))),
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(lenient_opt_u64(d)?.unwrap_or(0))
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let number = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match number {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9.0e15 =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(f as u64))
        }
        _ => Err(de::Error::custom("expected a non-negative whole number")),
    }
}

/// A multi-valued attribute some servers send as a single object, or `null`.
fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(de::Error::custom))
            .collect(),
        single @ Value::Object(_) => serde_json::from_value(single)
            .map(|v| vec![v])
            .map_err(de::Error::custom),
        other => Err(de::Error::custom(format!("expected a list, found {other}"))),
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

    /// Error bodies of every shape give a status and a one-line description.
    #[test]
    fn error_bodies() {
        let scim = ErrorBody::parse(
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"taken"}"#,
        );
        assert_eq!(scim.status.as_deref(), Some("409"));
        assert_eq!(scim.scim_type.as_deref(), Some("uniqueness"));
        let numeric = ErrorBody::parse(br#"{"status":412,"detail":"changed"}"#);
        assert_eq!(numeric.status.as_deref(), Some("412"));
        let platform =
            ErrorBody::parse(br#"{"message":"Not allowed","code":"not.authorized","status":403}"#);
        assert_eq!(
            platform.description().as_deref(),
            Some("Not allowed (not.authorized)")
        );
        let html = ErrorBody::parse(b"<html>\n  <body>Bad   Gateway</body></html>");
        assert_eq!(
            html.description().as_deref(),
            Some("<html> <body>Bad Gateway</body></html>")
        );
        let long = ErrorBody::parse("x ".repeat(500).as_bytes());
        assert!(long.description().expect("text").chars().count() <= 201);
        assert!(ErrorBody::parse(b"").description().is_none());
    }

    /// List responses with numbers as strings or floats, and with no Resources, parse.
    #[test]
    fn list_response_variants() {
        let page: ListResponse<Group> =
            serde_json::from_str(r#"{"totalResults":"3","startIndex":1.0,"itemsPerPage":0}"#)
                .expect("parses");
        assert_eq!(page.total_results, 3);
        assert!(page.resources.is_empty());
        assert!(serde_json::from_str::<ListResponse<Group>>(r#"{"totalResults":-1}"#).is_err());
    }

    /// Filter literals are JSON strings, so quotes and backslashes cannot break out.
    #[test]
    fn filter_literals_escape() {
        assert_eq!(filter_literal(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
