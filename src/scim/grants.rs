//! Genesys Cloud divisions and role grants, which only the Platform API manages
//! (docs/genesys.md §4): `GET /api/v2/authorization/divisions` (paged), and per subject (a
//! user) `GET /api/v2/authorization/subjects/{id}` and `POST …/bulkadd|bulkremove` with
//! `{"grants":[{"roleId","divisionId"}]}`.
//!
//! A subject's grants include those it inherits through groups; only direct grants
//! (`subjectId` is the user itself) are kept, as the Terraform provider does, so that a
//! reconciler never tries to remove a grant the user holds through a group.

use std::collections::HashMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::client::{ScimClient, resource_path};
use super::error::ScimError;
use super::platform::Entity;
pub use crate::model::tenant::{Division, Grant};

/// The Platform API collection of divisions.
pub const DIVISIONS_PATH: &str = "/api/v2/authorization/divisions";
/// The Platform API collection of subjects (users, groups, OAuth clients) and their grants.
pub const SUBJECTS_PATH: &str = "/api/v2/authorization/subjects";

impl Entity for Division {
    fn entity_id(&self) -> &str {
        &self.id
    }
}

/// `{id, name}` of a role or division inside a grant.
#[derive(Debug, Default, Deserialize)]
struct Named {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGrant {
    #[serde(default)]
    subject_id: Option<String>,
    #[serde(default)]
    role: Named,
    #[serde(default)]
    division: Named,
}

#[derive(Debug, Deserialize)]
struct Subject {
    #[serde(default)]
    grants: Vec<WireGrant>,
}

/// One `{roleId, divisionId}` pair of a bulk add or remove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantPair {
    /// The role's id.
    pub role_id: String,
    /// The division's id.
    pub division_id: String,
}

#[derive(Serialize)]
struct Bulk<'a> {
    grants: &'a [GrantPair],
}

/// The direct grants of subject `user` in `subject` (grants whose `subjectId` is someone
/// else, a group the user is in, are left out).
fn direct(user: &str, subject: Subject) -> Vec<Grant> {
    subject
        .grants
        .into_iter()
        .filter(|g| g.subject_id.as_deref() == Some(user) && !g.role.id.is_empty())
        .map(|g| Grant {
            role_id: g.role.id,
            role_name: g.role.name.unwrap_or_default(),
            division_id: g.division.id,
            division_name: g.division.name.unwrap_or_default(),
        })
        .collect()
}

impl ScimClient {
    /// Every division of the organisation.
    pub async fn list_divisions(&self) -> Result<Vec<Division>, ScimError> {
        self.platform_list::<Division>(DIVISIONS_PATH, &[]).await
    }

    /// The direct grants of each user in `user_ids`, read one subject per user, all at once
    /// (the client's concurrency and rate limit bound what is in flight). A user that is gone
    /// (404) is left out of the answer.
    pub async fn read_grants(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, Vec<Grant>>, ScimError> {
        let mut tasks = JoinSet::new();
        for id in user_ids {
            let client = self.clone();
            let id = id.clone();
            tasks.spawn(async move {
                let path = resource_path(SUBJECTS_PATH, &id);
                let query = [("includeDuplicates", "true".to_owned())];
                let read: Result<Subject, ScimError> = client
                    .platform_json(Method::GET, &path, &query, None::<&()>, true)
                    .await;
                (id, read)
            });
        }
        let mut all = HashMap::with_capacity(user_ids.len());
        while let Some(joined) = tasks.join_next().await {
            let (id, read) =
                joined.map_err(|e| ScimError::Config(format!("grant read task failed: {e}")))?;
            match read {
                Ok(subject) => {
                    let grants = direct(&id, subject);
                    all.insert(id, grants);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all)
    }

    /// Adds (`add`) or removes grants of user `user_id`. A user this client created moments
    /// ago that answers 404 is tried again (eventual consistency, §9). Sent again after an
    /// unknown outcome: adding a grant held, or removing one not held, changes nothing.
    pub async fn change_grants(
        &self,
        user_id: &str,
        add: bool,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        if grants.is_empty() {
            return Ok(());
        }
        let path = format!(
            "{}/{}",
            resource_path(SUBJECTS_PATH, user_id),
            if add { "bulkadd" } else { "bulkremove" }
        );
        let body = Bulk { grants };
        self.settle(user_id, || {
            self.platform_send(Method::POST, &path, &[], Some(&body), true)
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Only the user's own grants are kept; names missing are empty, not an error.
    #[test]
    fn direct_grants_only() {
        let subject: Subject = serde_json::from_value(json!({
            "id": "u1", "name": "Hannah",
            "grants": [
                {"subjectId": "u1", "role": {"id": "r1", "name": "Wrap Up"},
                 "division": {"id": "d1", "name": "Home"}, "grantMadeAt": "2024-01-01"},
                {"subjectId": "g1", "role": {"id": "r2", "name": "Agent"},
                 "division": {"id": "d1", "name": "Home"}},
                {"subjectId": "u1", "role": {"id": "r3"}, "division": {"id": "*"}}
            ]
        }))
        .expect("parses");
        let grants = direct("u1", subject);
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[0].role_name, "Wrap Up");
        assert_eq!(grants[0].division_name, "Home");
        assert_eq!(
            (grants[1].role_name.as_str(), grants[1].division_id.as_str()),
            ("", "*")
        );
        let division: Division =
            serde_json::from_value(json!({"id": "d1", "name": "Home", "homeDivision": true}))
                .expect("parses");
        assert!(division.home);
    }
}
