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

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::ScimClient;
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
                return Ok(statuses);
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
