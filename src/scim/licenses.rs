//! Genesys Cloud licenses, which only the Platform API manages (issue 18, item 1):
//! `GET /api/v2/license/definitions` (a plain list; a definition has an id and no name) and
//! `GET /api/v2/license/users` (paged `UserLicenses`, `{id, licenses[]}`) [.NET/PY SDK
//! LicenseApi.md, LicenseDefinition.md, UserLicenses.md]. Both need
//! `authorization:license:view` or `authorization:grant:add`.
//!
//! UNCONFIRMED: whether the users' page lists every user or only those holding a license;
//! nothing here reads absence from the page as anything but "holds none", which is right
//! either way. The largest `pageSize` it takes is not documented either; the Platform page
//! size used everywhere (100) is what the simulator allows.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{ScimClient, resource_path};
use super::error::ScimError;
use super::platform::Entity;
use crate::backoff::Backoff;
pub use crate::model::tenant::{LicenseDefinition, LiveLicenses, UserLicenses};

/// The org's license definitions.
pub const DEFINITIONS_PATH: &str = "/api/v2/license/definitions";
/// The users' licenses, paged.
pub const USERS_PATH: &str = "/api/v2/license/users";

impl Entity for UserLicenses {
    fn entity_id(&self) -> &str {
        &self.id
    }
}

impl ScimClient {
    /// Every license definition of the org.
    pub async fn list_license_definitions(&self) -> Result<Vec<LicenseDefinition>, ScimError> {
        self.platform_json(Method::GET, DEFINITIONS_PATH, &[], None::<&()>, true)
            .await
    }

    /// The licenses of every user that holds one (all pages, checked for repeats and
    /// against the total as every Platform list is).
    pub async fn list_user_licenses(&self) -> Result<Vec<UserLicenses>, ScimError> {
        self.platform_list::<UserLicenses>(USERS_PATH, &[]).await
    }
}

/// Where licenses are assigned and taken away, in batches.
pub const ORGANIZATION_PATH: &str = "/api/v2/license/organization";

/// Most user ids one `POST /api/v2/license/organization` names over all its entries
/// (UNCONFIRMED: the limit the simulator enforces; Genesys documents none).
pub const MOST_USER_IDS: usize = 100;

/// One entry of a batch: license `license_id` given to `add` and taken from `remove`
/// (`LicenseAssignmentRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseAssignment {
    /// The license definition.
    pub license_id: String,
    /// Users to give it to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_ids_add: Vec<String>,
    /// Users to take it from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_ids_remove: Vec<String>,
}

impl LicenseAssignment {
    /// How many user ids it names.
    #[must_use]
    pub fn user_ids(&self) -> usize {
        self.user_ids_add.len() + self.user_ids_remove.len()
    }
}

/// What the batch says of one (user, license) it named (`LicenseUpdateStatus`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseUpdateStatus {
    /// The user.
    #[serde(default)]
    pub user_id: String,
    /// The license.
    #[serde(default)]
    pub license_id: String,
    /// `Success`, or why not (`UserNotFound`, …).
    #[serde(default)]
    pub result: String,
}

impl LicenseUpdateStatus {
    /// Whether the change was made. UNCONFIRMED: the spelling of success (`Success`) is the
    /// simulator's; anything else is read as a failure, never as done.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.result.eq_ignore_ascii_case("success")
    }
}

#[derive(Serialize)]
struct Batch<'a> {
    assignments: &'a [LicenseAssignment],
}

/// The batches (requests) that carry `entries`: entries split so that no request names more
/// than [`MOST_USER_IDS`] user ids, entries of one license kept whole where they fit.
#[must_use]
pub fn batches(entries: &[LicenseAssignment]) -> Vec<Vec<LicenseAssignment>> {
    let mut out: Vec<Vec<LicenseAssignment>> = Vec::new();
    let mut room = 0;
    for entry in entries {
        let ids = entry
            .user_ids_add
            .iter()
            .map(|id| (true, id))
            .chain(entry.user_ids_remove.iter().map(|id| (false, id)));
        let mut part = LicenseAssignment {
            license_id: entry.license_id.clone(),
            ..LicenseAssignment::default()
        };
        for (adding, id) in ids {
            if room == 0 {
                if part.user_ids() > 0
                    && let Some(last) = out.last_mut()
                {
                    let next = LicenseAssignment {
                        license_id: entry.license_id.clone(),
                        ..LicenseAssignment::default()
                    };
                    last.push(std::mem::replace(&mut part, next));
                }
                out.push(Vec::new());
                room = MOST_USER_IDS;
            }
            if adding {
                part.user_ids_add.push(id.clone());
            } else {
                part.user_ids_remove.push(id.clone());
            }
            room -= 1;
        }
        if part.user_ids() > 0
            && let Some(last) = out.last_mut()
        {
            last.push(part);
        }
    }
    out
}

impl ScimClient {
    /// The org's definitions and who holds which: what a plan of mapped licenses needs.
    pub async fn read_licenses(&self) -> Result<LiveLicenses, ScimError> {
        let (definitions, users) =
            tokio::join!(self.list_license_definitions(), self.list_user_licenses());
        let held = users?
            .into_iter()
            .map(|u| {
                let mut ids = u.licenses;
                ids.sort();
                ids.dedup();
                (u.id, ids)
            })
            .collect();
        Ok(LiveLicenses {
            definitions: definitions?,
            held,
        })
    }

    /// Sends one batch (at most [`MOST_USER_IDS`] user ids; see [`batches`]) and returns the
    /// answer's statuses. A 200 does not mean every entry was carried out: the caller checks
    /// each status. Sent again after an unknown outcome (through the client's retries):
    /// giving a license held, or taking one not held, changes nothing (UNCONFIRMED).
    ///
    /// Entries answered `UserNotFound` for a user this client created moments ago are sent
    /// again, with backoff, while the user settles (a new user is not visible everywhere at
    /// once, as for grants, §9); their last answer is the one returned.
    pub async fn assign_licenses(
        &self,
        batch: &[LicenseAssignment],
    ) -> Result<Vec<LicenseUpdateStatus>, ScimError> {
        let backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
        let mut statuses = self.post_licenses(batch).await?;
        let mut misses = 0;
        loop {
            let settling = |s: &LicenseUpdateStatus| {
                s.result.eq_ignore_ascii_case("UserNotFound") && self.settling(&s.user_id)
            };
            let again: Vec<LicenseAssignment> = batch
                .iter()
                .filter_map(|e| {
                    let keep = |id: &String| {
                        statuses.iter().any(|s| {
                            s.user_id == *id && s.license_id == e.license_id && settling(s)
                        })
                    };
                    let part = LicenseAssignment {
                        license_id: e.license_id.clone(),
                        user_ids_add: e.user_ids_add.iter().filter(|i| keep(i)).cloned().collect(),
                        user_ids_remove: e
                            .user_ids_remove
                            .iter()
                            .filter(|i| keep(i))
                            .cloned()
                            .collect(),
                    };
                    (part.user_ids() > 0).then_some(part)
                })
                .collect();
            if again.is_empty() {
                return self.settle_licenses(batch, statuses).await;
            }
            misses += 1;
            tokio::time::sleep(backoff.ceiling(misses)).await;
            let answered = self.post_licenses(&again).await?;
            for a in answered {
                match statuses
                    .iter_mut()
                    .find(|s| s.user_id == a.user_id && s.license_id == a.license_id)
                {
                    Some(s) => *s = a,
                    None => statuses.push(a),
                }
            }
        }
    }

    /// The statuses of `batch`, with each failed entry (other than a user still settling)
    /// checked against what the user holds now, read with `GET /api/v2/license/users/{id}`:
    /// an entry whose change is in place counts as carried out. A batch is sent again after
    /// an unknown outcome, and a server may answer the second sending "already assigned" (or
    /// "not assigned") for what the first carried out (UNCONFIRMED: the simulator does); a
    /// change in place is not a failure, whatever the answer said. One read per user, only
    /// for users with a failed entry; a read that fails leaves the entry failed.
    async fn settle_licenses(
        &self,
        batch: &[LicenseAssignment],
        mut statuses: Vec<LicenseUpdateStatus>,
    ) -> Result<Vec<LicenseUpdateStatus>, ScimError> {
        // Only users the batch names: a server's answer does not choose whom the client reads.
        let named = |user: &String| {
            batch
                .iter()
                .any(|e| e.user_ids_add.contains(user) || e.user_ids_remove.contains(user))
        };
        let failed: BTreeSet<String> = statuses
            .iter()
            .filter(|s| !s.succeeded() && !s.result.eq_ignore_ascii_case("UserNotFound"))
            .map(|s| s.user_id.clone())
            .filter(named)
            .collect();
        for user in failed {
            let Ok(Some(held)) = self.licenses_of_user(&user).await else {
                continue;
            };
            for s in statuses
                .iter_mut()
                .filter(|s| s.user_id == user && !s.succeeded())
            {
                let asked = batch.iter().find(|e| e.license_id == s.license_id);
                let adding = asked.is_some_and(|e| e.user_ids_add.contains(&user));
                let removing = asked.is_some_and(|e| e.user_ids_remove.contains(&user));
                let holds = held.contains(&s.license_id);
                if (adding && holds) || (removing && !holds) {
                    tracing::info!(
                        user = %user,
                        license = %s.license_id,
                        answered = %s.result,
                        "license change found in place after a failed answer"
                    );
                    "Success".clone_into(&mut s.result);
                }
            }
        }
        Ok(statuses)
    }

    /// The license ids user `id` holds now (`GET /api/v2/license/users/{id}`); `None` when
    /// the user is not there (404).
    pub async fn licenses_of_user(&self, id: &str) -> Result<Option<Vec<String>>, ScimError> {
        let path = resource_path(USERS_PATH, id);
        match self
            .platform_json::<UserLicenses, ()>(Method::GET, &path, &[], None, true)
            .await
        {
            Ok(user) => Ok(Some(user.licenses)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn post_licenses(
        &self,
        batch: &[LicenseAssignment],
    ) -> Result<Vec<LicenseUpdateStatus>, ScimError> {
        self.platform_json(
            Method::POST,
            ORGANIZATION_PATH,
            &[],
            Some(&Batch { assignments: batch }),
            true,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use axum::Json;
    use axum::routing::{get, post};
    use serde_json::json;

    use super::*;
    use crate::scim::test_server::TestServer;

    // A failed entry whose change the user's licenses show in place (the answer to a batch
    // sent again after a lost 200, say) counts as carried out; one that is not in place, or
    // whose user cannot be read, stays failed; a success is never read back.
    #[tokio::test]
    async fn failed_entries_already_in_place_are_carried_out() {
        type Read = std::sync::Arc<std::sync::Mutex<Vec<String>>>;
        let read = Read::default();
        let app = axum::Router::new()
            .route(
                ORGANIZATION_PATH,
                post(|| async {
                    Json(json!([
                        {"userId": "u1", "licenseId": "cx2", "result": "AlreadyAssigned"},
                        {"userId": "u2", "licenseId": "cx2", "result": "LicenseLimitExceeded"},
                        {"userId": "u3", "licenseId": "cx3", "result": "NotAssigned"},
                        {"userId": "u4", "licenseId": "cx2", "result": "AlreadyAssigned"},
                        {"userId": "u5", "licenseId": "cx2", "result": "Success"},
                        {"userId": "u9", "licenseId": "cx2", "result": "AlreadyAssigned"},
                    ]))
                }),
            )
            .route(
                "/api/v2/license/users/{id}",
                get(
                    |axum::extract::State(read): axum::extract::State<Read>,
                     axum::extract::Path(id): axum::extract::Path<String>| async move {
                        read.lock().expect("lock").push(id.clone());
                        let held = match id.as_str() {
                            "u1" => vec!["cx2"],
                            "u2" | "u3" => vec!["cx1"],
                            _ => return (axum::http::StatusCode::NOT_FOUND, Json(json!({}))),
                        };
                        (
                            axum::http::StatusCode::OK,
                            Json(json!({"id": id, "licenses": held})),
                        )
                    },
                ),
            )
            .with_state(std::sync::Arc::clone(&read));
        let server = TestServer::routes(app).await;
        let batch = [
            LicenseAssignment {
                license_id: "cx2".into(),
                user_ids_add: vec!["u1".into(), "u2".into(), "u4".into(), "u5".into()],
                user_ids_remove: Vec::new(),
            },
            LicenseAssignment {
                license_id: "cx3".into(),
                user_ids_add: Vec::new(),
                user_ids_remove: vec!["u3".into()],
            },
        ];
        let statuses = server
            .client
            .assign_licenses(&batch)
            .await
            .expect("answered");
        let done: Vec<(&str, bool)> = statuses
            .iter()
            .map(|s| (s.user_id.as_str(), s.succeeded()))
            .collect();
        assert_eq!(
            done,
            [
                ("u1", true),
                ("u2", false),
                ("u3", true),
                ("u4", false),
                ("u5", true),
                ("u9", false)
            ]
        );
        assert_eq!(
            *read.lock().expect("lock"),
            ["u1", "u2", "u3", "u4"],
            "one read per failed user the batch names; never a success, never another user"
        );
    }
}
