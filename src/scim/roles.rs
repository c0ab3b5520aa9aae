//! Genesys Cloud role definitions, which only the Platform API manages (docs/genesys.md §4):
//! `GET /api/v2/authorization/roles` (paged, `userCount=false` because counting is slow),
//! `POST` to create, `PUT /{id}` to replace a role as a whole, `DELETE /{id}`.
//! The role types themselves are the model's ([`crate::model::tenant`]).

use reqwest::Method;

use super::client::{ScimClient, resource_path};
use super::error::ScimError;
use super::platform::Entity;
pub use crate::model::tenant::{PermissionPolicy, PlatformRole, RoleBody};

/// The Platform API collection of role definitions.
pub const ROLES_PATH: &str = "/api/v2/authorization/roles";

impl Entity for PlatformRole {
    fn entity_id(&self) -> &str {
        &self.id
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
