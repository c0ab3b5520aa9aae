//! RFC 7644 protocol envelopes: list responses, PATCH requests, error bodies, `/Schemas`
//! and the service provider configuration. The resources they carry (users, groups) are the
//! model's, in [`crate::model::tenant`], and are re-exported here.
//!
//! Parsing is deliberately tolerant of real servers: an error `status` may arrive as a
//! string or a number, booleans as strings, and unknown attributes are ignored. Pure data:
//! no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::capabilities::{AttributeSupport, ResourceSchema};
use crate::model::tenant::lenient::{
    lenient_bool, lenient_opt_string, lenient_opt_u64, lenient_string, lenient_u64, lenient_vec,
};
pub use crate::model::tenant::{
    ENTERPRISE_SCHEMA, EnterpriseUser, GENESYS_SCHEMA, GROUP_SCHEMA, GenesysUser, Group,
    GroupSettings, Meta, MultiValue, Proficiency, Reference, USER_SCHEMA, User,
};

/// Schema URN of a list response.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Schema URN of a PATCH request.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Schema URN of an error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

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
    /// Its sub-attributes (complex attributes), as the server lists them.
    #[serde(default)]
    pub sub_attributes: Vec<SchemaAttribute>,
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
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

impl std::fmt::Debug for PatchOperation {
    /// Like a derived `Debug`, but the value of an operation that writes `password` (by path,
    /// or as a key of a path-less object) is shown as `[redacted]`: a password rotation sends
    /// one, and no log, error or panic may carry it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by_path = self
            .path
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("password"));
        let in_object = self.value.as_ref().is_some_and(|v| {
            v.as_object()
                .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("password")))
        });
        let mut d = f.debug_struct("PatchOperation");
        d.field("op", &self.op).field("path", &self.path);
        if by_path || in_object {
            d.field("value", &"[redacted]");
        } else {
            d.field("value", &self.value);
        }
        d.finish()
    }
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
    /// Whether a client may change a user's password.
    #[serde(default)]
    pub change_password: Supported,
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
    /// Largest bulk request body, in bytes.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub max_payload_size: Option<u64>,
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

/// What `/Schemas` says; `None` (no schemas published) supports everything.
#[must_use]
pub fn attribute_support(schemas: Option<&[SchemaDefinition]>) -> AttributeSupport {
    let Some(schemas) = schemas else {
        return AttributeSupport::all();
    };
    // `userName` and a group's `displayName` identify objects; a server that lists
    // schemas without them is taken not to mean it. `externalId` is a common attribute
    // (RFC 7643 §3.1, like `id` and `meta`), which resource schemas need not list.
    let mut known: Vec<(ResourceSchema, String)> = [
        (ResourceSchema::User, "userName"),
        (ResourceSchema::Group, "displayName"),
        (ResourceSchema::User, "externalId"),
        (ResourceSchema::Group, "externalId"),
    ]
    .into_iter()
    .map(|(s, a)| (s, a.to_owned()))
    .collect();
    for schema in schemas {
        let which = [
            (USER_SCHEMA, ResourceSchema::User),
            (GROUP_SCHEMA, ResourceSchema::Group),
            (ENTERPRISE_SCHEMA, ResourceSchema::Enterprise),
            (GENESYS_SCHEMA, ResourceSchema::Genesys),
        ]
        .into_iter()
        .find(|(urn, _)| urn.eq_ignore_ascii_case(&schema.id));
        let Some((_, which)) = which else { continue };
        for attr in schema.attributes.iter().filter(|a| a.writable()) {
            known.push((which, attr.name.clone()));
            // Sub-attributes as `emails.type`; one listed with none says nothing of them.
            for sub in attr.sub_attributes.iter().filter(|a| a.writable()) {
                known.push((which, format!("{}.{}", attr.name, sub.name)));
            }
        }
    }
    AttributeSupport::only(known.iter().map(|(s, a)| (*s, a.as_str())))
}

/// Quotes `value` as a SCIM filter string literal (RFC 7644 §3.4.2.2 uses JSON strings).
#[must_use]
pub fn filter_literal(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_operation_writing_a_password_never_shows_it() {
        let by_path = PatchOperation {
            op: PatchOpKind::Replace,
            path: Some("password".into()),
            value: Some(Value::String("Sup3r-secret-pw".into())),
        };
        let in_object = PatchOperation {
            op: PatchOpKind::Replace,
            path: None,
            value: Some(serde_json::json!({"Password": "Sup3r-secret-pw", "title": "x"})),
        };
        for op in [&by_path, &in_object] {
            let shown = format!("{op:?} {op:#?}");
            assert!(!shown.contains("Sup3r-secret-pw"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        let title = PatchOperation {
            op: PatchOpKind::Replace,
            path: Some("title".into()),
            value: Some(Value::String("Agent".into())),
        };
        assert!(format!("{title:?}").contains("Agent"));
    }

    /// `/Schemas` say what can be written: missing and read-only attributes are not,
    /// `userName` and a group's `displayName` always are, names match case-insensitively,
    /// and a server that publishes no schemas supports everything.
    #[test]
    fn attribute_support_from_schemas() {
        let schemas: Vec<SchemaDefinition> = serde_json::from_value(serde_json::json!([
            {"id": "urn:ietf:params:scim:schemas:core:2.0:User", "attributes": [
                {"name": "displayName"}, {"name": "title", "mutability": "readOnly"}]},
            {"id": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "attributes": [
                {"name": "Department", "mutability": "readWrite"}]},
            {"id": "urn:example:unrelated", "attributes": [{"name": "title"}]}
        ]))
        .expect("schemas");
        let support = attribute_support(Some(&schemas));
        assert!(support.has(ResourceSchema::User, "USERNAME"));
        assert!(support.has(ResourceSchema::User, "displayName"));
        assert!(support.has(ResourceSchema::Enterprise, "department"));
        assert!(!support.has(ResourceSchema::User, "title"));
        assert!(support.has(ResourceSchema::Group, "displayName"));
        assert!(!support.has(ResourceSchema::Group, "description"));
        assert_eq!(attribute_support(None), AttributeSupport::all());
    }

    /// `externalId` is a common attribute (RFC 7643 §3.1): supported though no schema
    /// lists it. Sub-attributes are read where listed.
    #[test]
    fn common_attributes_and_sub_attributes() {
        let schemas: Vec<SchemaDefinition> = serde_json::from_value(serde_json::json!([
            {"id": "urn:ietf:params:scim:schemas:core:2.0:User", "attributes": [
                {"name": "emails", "subAttributes": [{"name": "value"}, {"name": "primary"}]},
                {"name": "phoneNumbers"}]},
            {"id": "urn:ietf:params:scim:schemas:core:2.0:Group", "attributes": [
                {"name": "members"}]}
        ]))
        .expect("schemas");
        let support = attribute_support(Some(&schemas));
        assert!(support.has(ResourceSchema::User, "externalId"));
        assert!(support.has(ResourceSchema::Group, "externalId"));
        assert!(support.has_sub(ResourceSchema::User, "emails", "value"));
        assert!(!support.has_sub(ResourceSchema::User, "emails", "type"));
        assert!(support.has_sub(ResourceSchema::User, "phoneNumbers", "type"));
        assert!(AttributeSupport::all().has_sub(ResourceSchema::User, "emails", "type"));
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
