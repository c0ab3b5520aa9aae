//! Genesys Cloud role definitions, which only the Platform API manages (docs/genesys.md §4):
//! `GET /api/v2/authorization/roles` (paged, `userCount=false` because counting is slow),
//! `POST` to create, `PUT /{id}` to replace a role as a whole, `DELETE /{id}`.
//!
//! The wire types keep every field they do not model (`rest`), so that a role read and
//! written back loses nothing scimctl does not manage: a permission policy's conditions and
//! named resources survive an update that keeps the live policies.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::{ScimClient, resource_path};
use super::error::ScimError;
use super::platform::Entity;

/// The Platform API collection of role definitions.
pub const ROLES_PATH: &str = "/api/v2/authorization/roles";

/// One permission policy of a role: `domain`, `entityName` and the actions it allows
/// (`DomainPermissionPolicy`, docs/genesys.md §4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionPolicy {
    /// The permission domain, e.g. `directory`, or `*`.
    pub domain: String,
    /// The entity, e.g. `user`, or `*`.
    pub entity_name: String,
    /// The actions, e.g. `["add", "edit"]`, or `["*"]`.
    #[serde(default)]
    pub action_set: Vec<String>,
    /// Every other field as the server sent it (`policyName`, `allowConditions`,
    /// `resourceConditionNode`, `namedResources`, …).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl PermissionPolicy {
    /// A policy with no field beyond domain, entity and actions.
    #[must_use]
    pub fn new(domain: &str, entity_name: &str, action_set: Vec<String>) -> PermissionPolicy {
        PermissionPolicy {
            domain: domain.to_owned(),
            entity_name: entity_name.to_owned(),
            action_set,
            rest: Map::new(),
        }
    }
}

/// A role definition as the Platform API lists it (`DomainOrganizationRole`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformRole {
    /// Its id.
    pub id: String,
    /// Its name: what SCIM `roles[].value` refers to.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// "General" string permissions such as `group_creation`; kept as they are.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The permission policies.
    #[serde(default)]
    pub permission_policies: Vec<PermissionPolicy>,
    /// A role Genesys Cloud ships (`employee`, `admin`, …): never deleted by scimctl.
    #[serde(default)]
    pub default: bool,
    /// Whether the role is based on a shipped default role.
    #[serde(default)]
    pub base: bool,
}

impl Entity for PlatformRole {
    fn entity_id(&self) -> &str {
        &self.id
    }
}

/// The body of a role create (POST) or replace (PUT): everything a PUT replaces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBody {
    /// The role's name.
    pub name: String,
    /// Its description, left out when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// General string permissions (kept from the live role on a replace).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The permission policies.
    #[serde(default)]
    pub permission_policies: Vec<PermissionPolicy>,
}

impl PlatformRole {
    /// The body that writes this role back unchanged.
    #[must_use]
    pub fn body(&self) -> RoleBody {
        RoleBody {
            name: self.name.clone(),
            description: self.description.clone(),
            permissions: self.permissions.clone(),
            permission_policies: self.permission_policies.clone(),
        }
    }
}

fn role_path(id: &str) -> String {
    resource_path(ROLES_PATH, id)
}

impl ScimClient {
    /// Every role definition of the organisation.
    pub async fn list_roles(&self) -> Result<Vec<PlatformRole>, ScimError> {
        self.platform_list::<PlatformRole>(ROLES_PATH, &[("userCount", "false".to_owned())])
            .await
    }

    /// Creates a role. Not resent after an unknown outcome: the caller looks the name up
    /// (a resend would be refused with 409 anyway, the name being taken).
    pub async fn create_role(&self, body: &RoleBody) -> Result<PlatformRole, ScimError> {
        self.platform_json(Method::POST, ROLES_PATH, &[], Some(body), false)
            .await
    }

    /// Replaces a role as a whole.
    pub async fn update_role(&self, id: &str, body: &RoleBody) -> Result<PlatformRole, ScimError> {
        self.platform_json(Method::PUT, &role_path(id), &[], Some(body), true)
            .await
    }

    /// Deletes a role. A 404 is returned as an error (see [`ScimError::is_not_found`]).
    pub async fn delete_role(&self, id: &str) -> Result<(), ScimError> {
        self.platform_send(Method::DELETE, &role_path(id), &[], None::<&()>, true)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Unknown fields are read without complaint, kept on policies, and written back.
    #[test]
    fn wire_is_tolerant_and_lossless() {
        let listed = json!({
            "id": "r1", "name": "Supervisor", "description": "Leads",
            "permissions": ["group_creation"], "userCount": 3, "default": false,
            "permissionPolicies": [
                {"domain": "directory", "entityName": "user", "actionSet": ["view", "edit"],
                 "policyName": "p", "allowConditions": true}
            ]
        });
        let role: PlatformRole = serde_json::from_value(listed).expect("parses");
        assert_eq!(role.permission_policies[0].action_set, ["view", "edit"]);
        assert_eq!(role.permission_policies[0].rest["allowConditions"], true);
        let body = serde_json::to_value(role.body()).expect("json");
        assert_eq!(
            body,
            json!({"name": "Supervisor", "description": "Leads",
                   "permissions": ["group_creation"],
                   "permissionPolicies": [{"domain": "directory", "entityName": "user",
                     "actionSet": ["view", "edit"], "policyName": "p", "allowConditions": true}]})
        );
        let bare: PlatformRole =
            serde_json::from_value(json!({"id": "r2", "name": "employee", "default": true}))
                .expect("parses");
        assert!(bare.default && bare.permission_policies.is_empty());
    }
}
