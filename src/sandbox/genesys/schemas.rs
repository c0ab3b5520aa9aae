//! The Genesys flavour's discovery documents: `/serviceproviderconfig`, `/resourcetypes` and
//! `/schemas`, listing exactly the attributes the flavour supports, with their mutability.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::discovery::list_of;
use super::super::error::ScimError;
use super::super::http::{error_response, scim_json};
use super::super::resource::{ENTERPRISE_URN, GENESYS_URN, GROUP_URN, USER_URN};
use super::wire::{PlatformError, Route};

/// Most resources one SCIM list page returns.
pub(super) const MAX_COUNT: usize = 100;

const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The documents, built once.
#[derive(Debug)]
pub(super) struct Discovery {
    service_provider_config: Value,
    resource_types: Vec<Value>,
    schemas: Vec<Value>,
}

/// One attribute definition (RFC 7643 §7).
fn attr(name: &str, kind: &str, multi: bool, mutability: &str, subs: &[Value]) -> Value {
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": multi,
        "required": false,
        "caseExact": matches!(name, "id" | "externalId" | "value" | "$ref"),
        "mutability": mutability,
        "returned": if mutability == "writeOnly" { "never" } else { "default" },
        "uniqueness": if matches!(name, "id" | "userName") { "server" } else { "none" },
    });
    if !subs.is_empty() {
        a["subAttributes"] = Value::Array(subs.to_vec());
    }
    a
}

fn string(name: &str, mutability: &str) -> Value {
    attr(name, "string", false, mutability, &[])
}

fn with_values(mut a: Value, values: &[&str]) -> Value {
    a["canonicalValues"] = json!(values);
    a
}

fn meta() -> Value {
    attr(
        "meta",
        "complex",
        false,
        "readOnly",
        &[
            string("resourceType", "readOnly"),
            attr("lastModified", "dateTime", false, "readOnly", &[]),
            attr("location", "reference", false, "readOnly", &[]),
            string("version", "readOnly"),
        ],
    )
}

fn user_attributes() -> Vec<Value> {
    let mut user_name = string("userName", "readWrite");
    user_name["required"] = json!(true);
    let mut display_name = string("displayName", "readWrite");
    display_name["required"] = json!(true);
    vec![
        string("id", "readOnly"),
        user_name,
        display_name,
        attr("active", "boolean", false, "readWrite", &[]),
        string("title", "readWrite"),
        string("password", "writeOnly"),
        attr(
            "emails",
            "complex",
            true,
            "readWrite",
            &[
                string("value", "readWrite"),
                with_values(string("type", "readWrite"), &["work", "other"]),
                attr("primary", "boolean", false, "readWrite", &[]),
            ],
        ),
        attr(
            "phoneNumbers",
            "complex",
            true,
            "readWrite",
            &[
                string("value", "readWrite"),
                with_values(string("type", "readWrite"), super::users::PHONE_TYPES),
                attr("primary", "boolean", false, "readWrite", &[]),
            ],
        ),
        string("externalId", "readWrite"),
        attr(
            "roles",
            "complex",
            true,
            "readWrite",
            &[string("value", "readWrite")],
        ),
        attr(
            "groups",
            "complex",
            true,
            "readOnly",
            &[
                string("value", "readOnly"),
                attr("$ref", "reference", false, "readOnly", &[]),
                string("type", "readOnly"),
            ],
        ),
        meta(),
    ]
}

fn group_attributes() -> Vec<Value> {
    vec![
        string("id", "readOnly"),
        string("displayName", "readWrite"),
        string("externalId", "readWrite"),
        attr(
            "members",
            "complex",
            true,
            "readWrite",
            &[
                string("value", "immutable"),
                attr("$ref", "reference", false, "immutable", &[]),
                with_values(string("type", "immutable"), &["User"]),
            ],
        ),
        meta(),
    ]
}

fn enterprise_attributes() -> Vec<Value> {
    vec![
        string("division", "readWrite"),
        string("department", "readWrite"),
        attr(
            "manager",
            "complex",
            false,
            "readWrite",
            &[
                string("value", "readWrite"),
                attr("$ref", "reference", false, "readWrite", &[]),
            ],
        ),
        string("employeeNumber", "readWrite"),
        string("dateHire", "readWrite"),
    ]
}

fn genesys_attributes() -> Vec<Value> {
    let skill = |name: &str| {
        attr(
            name,
            "complex",
            true,
            "readWrite",
            &[
                string("name", "readWrite"),
                attr("proficiency", "decimal", false, "readWrite", &[]),
            ],
        )
    };
    vec![skill("routingSkills"), skill("routingLanguages")]
}

fn schema(base_url: &str, id: &str, name: &str, attributes: &[Value]) -> Value {
    json!({
        "schemas": [SCHEMA_URN],
        "id": id,
        "name": name,
        "description": name,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/schemas/{id}")},
    })
}

impl Discovery {
    pub(super) fn new(base_url: &str) -> Self {
        let service_provider_config = json!({
            "schemas": [SPC_URN],
            "documentationUri": "https://developer.genesys.cloud/",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_COUNT},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauth2",
                "name": "OAuth 2.0",
                "description": "OAuth client credentials from /oauth/token",
                "specUri": "https://www.rfc-editor.org/info/rfc6749",
                "primary": true
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base_url}/serviceproviderconfig")
            }
        });
        let resource_type = |id: &str, endpoint: &str, schema: &str, extensions: Value| {
            json!({
                "schemas": [RESOURCE_TYPE_URN],
                "id": id,
                "name": id,
                "endpoint": endpoint,
                "schema": schema,
                "schemaExtensions": extensions,
                "meta": {
                    "resourceType": "ResourceType",
                    "location": format!("{base_url}/resourcetypes/{id}")
                }
            })
        };
        let resource_types = vec![
            resource_type(
                "User",
                "/users",
                USER_URN,
                json!([{"schema": ENTERPRISE_URN, "required": false},
                       {"schema": GENESYS_URN, "required": false}]),
            ),
            resource_type("Group", "/groups", GROUP_URN, json!([])),
        ];
        let schemas = vec![
            schema(base_url, USER_URN, "User", &user_attributes()),
            schema(base_url, GROUP_URN, "Group", &group_attributes()),
            schema(
                base_url,
                ENTERPRISE_URN,
                "Enterprise User",
                &enterprise_attributes(),
            ),
            schema(base_url, GENESYS_URN, "Genesys User", &genesys_attributes()),
        ];
        Discovery {
            service_provider_config,
            resource_types,
            schemas,
        }
    }

    /// Answers a discovery route.
    pub(super) fn answer(&self, route: &Route, method: &Method) -> Response {
        if method != Method::GET {
            return PlatformError::not_found(format!("No resource found at {method}")).response();
        }
        let find = |list: &[Value], id: &str| {
            list.iter()
                .find(|v| v["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
                .cloned()
        };
        let found = match route {
            Route::ServiceProviderConfig => Some(self.service_provider_config.clone()),
            Route::Schemas(None) => Some(list_of(&self.schemas)),
            Route::Schemas(Some(urn)) => find(&self.schemas, urn),
            Route::ResourceTypes(None) => Some(list_of(&self.resource_types)),
            Route::ResourceTypes(Some(name)) => find(&self.resource_types, name),
            _ => None,
        };
        match found {
            Some(body) => scim_json(StatusCode::OK, &body),
            None => error_response(&ScimError::not_found("no such schema or resource type")),
        }
    }
}
