//! The discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`, built once per sandbox. They describe what the sandbox actually does (PATCH,
//! filter with `maxResults` 1000, sort, ETags; no bulk until [`App::set_bulk`](super::http::App) says so) and need no auth.

use serde_json::{Value, json};

use super::resource::{ENTERPRISE_URN, GENESYS_URN, GROUP_URN, KNOWN_EXTENSIONS, USER_URN};
use super::store::MAX_RESULTS;
use super::{Quirk, Quirks};

const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The schema URN of list responses.
pub(crate) const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The discovery documents of one sandbox.
#[derive(Debug)]
pub(crate) struct Discovery {
    pub(crate) service_provider_config: Value,
    pub(crate) resource_types: Vec<Value>,
    pub(crate) schemas: Vec<Value>,
}

/// A list response around `resources` (discovery lists are never paged).
pub(crate) fn list_of(resources: &[Value]) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

impl Discovery {
    pub(crate) fn new(base_url: &str, bearer: bool, quirks: &Quirks) -> Self {
        let auth_schemes = if bearer {
            json!([{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token (static or from /oauth/token)",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            }])
        } else {
            json!([])
        };
        let service_provider_config = json!({
            "schemas": [SPC_URN],
            "documentationUri": "https://www.rfc-editor.org/info/rfc7644",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": !quirks.has(Quirk::NoFilter), "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": auth_schemes,
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base_url}/ServiceProviderConfig")
            }
        });
        let extensions: Vec<Value> = KNOWN_EXTENSIONS
            .iter()
            .map(|urn| json!({"schema": urn, "required": false}))
            .collect();
        let resource_types = vec![
            json!({
                "schemas": [RESOURCE_TYPE_URN],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": USER_URN,
                "schemaExtensions": extensions,
                "meta": {
                    "resourceType": "ResourceType",
                    "location": format!("{base_url}/ResourceTypes/User")
                }
            }),
            json!({
                "schemas": [RESOURCE_TYPE_URN],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Group",
                "schema": GROUP_URN,
                "meta": {
                    "resourceType": "ResourceType",
                    "location": format!("{base_url}/ResourceTypes/Group")
                }
            }),
        ];
        let schemas = vec![
            schema(
                base_url,
                USER_URN,
                "User",
                "User Account",
                &with_quirks(user_attributes(), quirks),
            ),
            schema(
                base_url,
                GROUP_URN,
                "Group",
                "Group",
                &with_quirks(group_attributes(), quirks),
            ),
            schema(
                base_url,
                ENTERPRISE_URN,
                "EnterpriseUser",
                "Enterprise User",
                &enterprise_attributes(),
            ),
            schema(
                base_url,
                GENESYS_URN,
                "GenesysUser",
                "Genesys Cloud user extension",
                &genesys_attributes(),
            ),
        ];
        Discovery {
            service_provider_config,
            resource_types,
            schemas,
        }
    }

    /// `/ResourceTypes/{id}`, case-insensitively.
    pub(crate) fn resource_type(&self, id: &str) -> Option<&Value> {
        self.resource_types
            .iter()
            .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
    }

    /// `/Schemas/{urn}`, case-insensitively.
    pub(crate) fn schema(&self, urn: &str) -> Option<&Value> {
        self.schemas.iter().find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(urn))
        })
    }
}

fn schema(base_url: &str, urn: &str, name: &str, description: &str, attributes: &[Value]) -> Value {
    json!({
        "schemas": [SCHEMA_URN],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{urn}")}
    })
}

/// Attribute characteristics (RFC 7643 §2.2, §7).
#[derive(Clone, Copy)]
struct Attr {
    name: &'static str,
    kind: &'static str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &'static str,
    returned: &'static str,
    uniqueness: &'static str,
}

const fn attr(name: &'static str, kind: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
    }
}

impl Attr {
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }

    const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    const fn mutability(mut self, mutability: &'static str) -> Self {
        self.mutability = mutability;
        self
    }

    const fn returned(mut self, returned: &'static str) -> Self {
        self.returned = returned;
        self
    }

    const fn unique(mut self) -> Self {
        self.uniqueness = "server";
        self
    }

    fn json(self, sub: &[Value]) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.kind,
            "multiValued": self.multi,
            "description": self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        });
        if !sub.is_empty() {
            v["subAttributes"] = Value::from(sub.to_vec());
        }
        v
    }

    fn simple(self) -> Value {
        self.json(&[])
    }
}

/// `value`/`display`/`type`/`primary` sub-attributes of a multi-valued attribute.
fn multi_valued(name: &'static str) -> Value {
    attr(name, "complex").multi().json(&[
        attr("value", "string").simple(),
        attr("display", "string").simple(),
        attr("type", "string").simple(),
        attr("primary", "boolean").simple(),
    ])
}

/// `attributes` as a quirky server lists them: without the common `externalId`
/// ([`Quirk::NoCommonAttributes`]), without the email `type` ([`Quirk::NoEmailType`]).
fn with_quirks(mut attributes: Vec<Value>, quirks: &Quirks) -> Vec<Value> {
    let named = |a: &Value, name: &str| a["name"].as_str() == Some(name);
    if quirks.has(Quirk::NoCommonAttributes) {
        attributes.retain(|a| !named(a, "externalId"));
    }
    if quirks.has(Quirk::NoEmailType) {
        for emails in attributes.iter_mut().filter(|a| named(a, "emails")) {
            if let Some(Value::Array(subs)) = emails.get_mut("subAttributes") {
                subs.retain(|a| !named(a, "type"));
            }
        }
    }
    attributes
}

fn user_attributes() -> Vec<Value> {
    vec![
        attr("userName", "string").required().unique().simple(),
        attr("externalId", "string").exact().simple(),
        attr("name", "complex").json(&[
            attr("formatted", "string").simple(),
            attr("familyName", "string").simple(),
            attr("givenName", "string").simple(),
            attr("middleName", "string").simple(),
            attr("honorificPrefix", "string").simple(),
            attr("honorificSuffix", "string").simple(),
        ]),
        attr("displayName", "string").simple(),
        attr("nickName", "string").simple(),
        attr("profileUrl", "reference").simple(),
        attr("title", "string").simple(),
        attr("userType", "string").simple(),
        attr("preferredLanguage", "string").simple(),
        attr("locale", "string").simple(),
        attr("timezone", "string").simple(),
        attr("active", "boolean").simple(),
        attr("password", "string")
            .exact()
            .mutability("writeOnly")
            .returned("never")
            .simple(),
        multi_valued("emails"),
        multi_valued("phoneNumbers"),
        multi_valued("ims"),
        multi_valued("photos"),
        attr("addresses", "complex").multi().json(&[
            attr("formatted", "string").simple(),
            attr("streetAddress", "string").simple(),
            attr("locality", "string").simple(),
            attr("region", "string").simple(),
            attr("postalCode", "string").simple(),
            attr("country", "string").simple(),
            attr("type", "string").simple(),
            attr("primary", "boolean").simple(),
        ]),
        attr("groups", "complex")
            .multi()
            .mutability("readOnly")
            .json(&[
                attr("value", "string").mutability("readOnly").simple(),
                attr("$ref", "reference").mutability("readOnly").simple(),
                attr("display", "string").mutability("readOnly").simple(),
                attr("type", "string").mutability("readOnly").simple(),
            ]),
        multi_valued("entitlements"),
        multi_valued("roles"),
        multi_valued("x509Certificates"),
    ]
}

fn group_attributes() -> Vec<Value> {
    vec![
        attr("displayName", "string").required().unique().simple(),
        attr("externalId", "string").exact().simple(),
        // Not in RFC 7643's Group, but Genesys Cloud groups have one and the sandbox stands
        // in for Genesys Cloud.
        attr("description", "string").simple(),
        attr("members", "complex").multi().json(&[
            attr("value", "string")
                .exact()
                .mutability("immutable")
                .simple(),
            attr("$ref", "reference").mutability("immutable").simple(),
            attr("display", "string").mutability("readOnly").simple(),
            attr("type", "string").mutability("immutable").simple(),
        ]),
    ]
}

fn enterprise_attributes() -> Vec<Value> {
    vec![
        attr("employeeNumber", "string").simple(),
        attr("costCenter", "string").simple(),
        attr("organization", "string").simple(),
        attr("division", "string").simple(),
        attr("department", "string").simple(),
        // Genesys Cloud adds `dateHire` (YYYY-MM-DD) to the enterprise extension.
        attr("dateHire", "string").simple(),
        attr("manager", "complex").json(&[
            attr("value", "string").exact().simple(),
            attr("$ref", "reference").simple(),
            attr("displayName", "string")
                .mutability("readOnly")
                .simple(),
        ]),
    ]
}

fn genesys_attributes() -> Vec<Value> {
    vec![
        attr("externalIds", "complex").multi().json(&[
            attr("authority", "string").simple(),
            attr("value", "string").exact().simple(),
        ]),
        attr("routingSkills", "complex").multi().json(&[
            attr("name", "string").simple(),
            attr("proficiency", "decimal").simple(),
        ]),
        attr("routingLanguages", "complex").multi().json(&[
            attr("name", "string").simple(),
            attr("proficiency", "decimal").simple(),
        ]),
        attr("division", "string").simple(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // The service provider config announces exactly what the sandbox implements.
    #[test]
    fn service_provider_config() {
        let open = Discovery::new("http://x/scim/v2", false, &Quirks::default());
        let spc = &open.service_provider_config;
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["bulk"]["supported"], false);
        assert_eq!(spc["filter"]["maxResults"], 1000);
        assert_eq!(spc["changePassword"]["supported"], false);
        assert_eq!(spc["authenticationSchemes"], json!([]));
        let secured = Discovery::new("http://x/scim/v2", true, &Quirks::default());
        assert_eq!(
            secured.service_provider_config["authenticationSchemes"][0]["type"],
            "oauthbearertoken"
        );
        assert!(open.resource_type("user").is_some());
        assert!(open.schema(&ENTERPRISE_URN.to_uppercase()).is_some());
        assert_eq!(list_of(&open.schemas)["totalResults"], 4);
    }
}
