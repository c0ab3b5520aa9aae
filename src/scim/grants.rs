//! Genesys Cloud divisions and role grants, which only the Platform API manages
//! (docs/genesys.md §4): `GET /api/v2/authorization/divisions` (paged), and per subject (a
//! user) `GET /api/v2/authorization/subjects/{id}` and `POST …/bulkadd` with
//! `{"grants":[{"roleId","divisionId"}]}` to add, and one
//! `DELETE …/{id}/divisions/{divisionId}/roles/{roleId}` per grant to remove.
//!
//! A subject's grants include those it inherits through groups; only direct grants
//! (`subjectId` is the user itself) are kept, as the Terraform provider does, so that a
//! reconciler never tries to remove a grant the user holds through a group.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{ScimClient, resource_path};
use super::error::ScimError;
use super::platform::Entity;
use super::reading::ReadKind;
use crate::backoff::Backoff;
pub use crate::model::tenant::{Division, Grant};

/// The Platform API collection of divisions.
pub const DIVISIONS_PATH: &str = "/api/v2/authorization/divisions";
/// The Platform API collection of subjects (users, groups, OAuth clients) and their grants.
pub const SUBJECTS_PATH: &str = "/api/v2/authorization/subjects";
/// How long a 404 from `bulkadd` is retried: long enough for the authorization cache to see
/// a role or division created in the same run, short enough that a user who really is gone
/// fails the step soon.
pub const GRANT_SETTLE: Duration = Duration::from_secs(20);

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

/// The query that makes a subject a group.
fn pc_group() -> [(&'static str, String); 1] {
    [("subjectType", "PC_GROUP".to_owned())]
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
        let counts = self.read_counts();
        counts.expect(ReadKind::Grants, user_ids.len() as u64);
        let mut tasks = JoinSet::new();
        for id in user_ids {
            let client = self.clone();
            let counts = std::sync::Arc::clone(&counts);
            let id = id.clone();
            tasks.spawn(async move {
                let path = resource_path(SUBJECTS_PATH, &id);
                let query = [("includeDuplicates", "true".to_owned())];
                let read: Result<Subject, ScimError> = client
                    .platform_json(Method::GET, &path, &query, None::<&()>, true)
                    .await;
                counts.got(ReadKind::Grants, 1);
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

    /// Adds (`add`) or removes grants of user `user_id`: see [`ScimClient::add_grants`] and
    /// [`ScimClient::remove_grants`].
    pub async fn change_grants(
        &self,
        user_id: &str,
        add: bool,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        if add {
            self.add_grants(user_id, grants).await
        } else {
            self.remove_grants(user_id, grants).await
        }
    }

    /// Grants roles in divisions to user `user_id` with one `bulkadd`. A 404 is retried with
    /// backoff for [`GRANT_SETTLE`] (longer for a user this client created, §9): the
    /// authorization service's cache lags behind a role or division created moments ago,
    /// which the Terraform provider retries the same way (§4). Sent again after an unknown
    /// outcome: adding a grant held changes nothing. A 404 that outlasts the retries is
    /// returned; it does not by itself mean the user is gone.
    pub async fn add_grants(&self, user_id: &str, grants: &[GrantPair]) -> Result<(), ScimError> {
        self.bulk_add(user_id, &[], grants).await
    }

    /// `bulkadd` to subject `subject` with `query`, 404s retried as [`ScimClient::add_grants`]
    /// says.
    async fn bulk_add(
        &self,
        subject: &str,
        query: &[(&str, String)],
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        if grants.is_empty() {
            return Ok(());
        }
        let path = format!("{}/bulkadd", resource_path(SUBJECTS_PATH, subject));
        let body = Bulk { grants };
        let started = Instant::now();
        let backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
        let mut misses = 0;
        loop {
            match self
                .platform_send(Method::POST, &path, query, Some(&body), true)
                .await
            {
                Err(e)
                    if e.is_not_found()
                        && (started.elapsed() < GRANT_SETTLE || self.settling(subject)) =>
                {
                    misses += 1;
                    let wait = backoff.ceiling(misses);
                    tracing::debug!(
                        subject,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "bulkadd answered 404; trying again"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other.map(drop),
            }
        }
    }

    /// The role grants made to each group in `group_ids` (subject type `PC_GROUP`), one
    /// subject read per group, all at once as [`ScimClient::read_grants`] reads users'. A
    /// group that is gone (404) is left out of the answer.
    pub async fn read_group_grants(
        &self,
        group_ids: &[String],
    ) -> Result<HashMap<String, Vec<Grant>>, ScimError> {
        self.read_grants(group_ids).await
    }

    /// Grants roles in divisions to group `group_id`: one
    /// `POST …/subjects/{id}/bulkadd?subjectType=PC_GROUP`, 404s retried as for a user (a
    /// group created moments ago, a new role). The group needs `rolesEnabled`; the planner
    /// orders that setting first.
    pub async fn add_group_grants(
        &self,
        group_id: &str,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        self.bulk_add(group_id, &pc_group(), grants).await
    }

    /// Takes grants from group `group_id` with one
    /// `POST …/subjects/{id}/bulkremove?subjectType=PC_GROUP`. `bulkremove` fails as a whole
    /// when a pair is not held (§4): on a 404 the group's grants are read again and the pairs
    /// it still holds are removed once more (none left: done).
    pub async fn remove_group_grants(
        &self,
        group_id: &str,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        if grants.is_empty() {
            return Ok(());
        }
        let path = format!("{}/bulkremove", resource_path(SUBJECTS_PATH, group_id));
        let query = pc_group();
        match self
            .platform_send(Method::POST, &path, &query, Some(&Bulk { grants }), true)
            .await
        {
            Err(e) if e.is_not_found() => {}
            other => return other.map(drop),
        }
        let held = self
            .read_grants(&[group_id.to_owned()])
            .await?
            .remove(group_id)
            .unwrap_or_default();
        let left: Vec<GrantPair> = grants
            .iter()
            .filter(|p| {
                held.iter()
                    .any(|g| g.role_id == p.role_id && g.division_id == p.division_id)
            })
            .cloned()
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        self.platform_send(
            Method::POST,
            &path,
            &query,
            Some(&Bulk { grants: &left }),
            true,
        )
        .await
        .map(drop)
    }

    /// Takes grants from user `user_id`, one `DELETE …/subjects/{id}/divisions/{d}/roles/{r}`
    /// per pair, in order: `bulkremove` fails as a whole when any pair no longer exists, so
    /// one stale pair would block the rest (§4; the Terraform provider removes one at a time
    /// for that reason). A pair that answers 404 is not held any more, which is the goal.
    pub async fn remove_grants(
        &self,
        user_id: &str,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        let subject = resource_path(SUBJECTS_PATH, user_id);
        for pair in grants {
            let division = resource_path(&format!("{subject}/divisions"), &pair.division_id);
            let path = resource_path(&format!("{division}/roles"), &pair.role_id);
            match self
                .platform_send::<()>(Method::DELETE, &path, &[], None, true)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => tracing::debug!(
                    user_id,
                    role = pair.role_id,
                    division = pair.division_id,
                    "grant already gone"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
