//! The license subset of the Platform API (issue 18, item 1): the org's license definitions,
//! users' licenses (a page, or one user) and the batch assignment of
//! `POST /api/v2/license/organization`.
//!
//! Documented [PY/.NET LicenseApi.md, LicenseBatchAssignmentRequest.md,
//! LicenseAssignmentRequest.md, LicenseUpdateStatus.md, UserLicenses.md,
//! UserLicensesEntityListing.md, LicenseDefinition.md]:
//! - `GET /api/v2/license/definitions` returns a plain list of `LicenseDefinition`
//!   `{id, description, permissions, prerequisites, comprises, selfUri}`: no `name`, so a
//!   definition is known by its id.
//! - `GET /api/v2/license/users?pageSize&pageNumber` (default 25, 1) returns a
//!   `UserLicensesEntityListing` of `UserLicenses {id, licenses[], selfUri}`;
//!   `GET /api/v2/license/users/{userId}` one of them.
//! - `POST /api/v2/license/organization` takes `{assignments: [{licenseId, userIdsAdd[],
//!   userIdsRemove[]}]}` and answers a list of `LicenseUpdateStatus {userId, licenseId,
//!   result}`.
//!
//! UNCONFIRMED, and chosen here as the reading that breaks a careless client:
//! - The definition ids (`cloudCX1`…) are the sandbox's own, not Genesys's.
//! - The users' page lists only users holding a license, so a user missing from it holds none
//!   (a client may not read absence as "unknown"); `pageSize` above 100 is refused with 400.
//! - The batch answers 200 even when some of its entries fail: each entry's `result` says
//!   `Success` or why not (`UserNotFound`), so a client that trusts the status alone misses
//!   failures. An unknown `licenseId`, or more than 100 user ids in one request, refuses the
//!   whole batch with 400 and changes nothing.
//! - A deleted user's licenses go with it.

use std::collections::BTreeSet;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::http::read_json;
use super::super::resource::ResourceKind;
use super::wire::{PlatformError, Route, not_here, paged, platform_json, query_pairs};
use super::{Data, Genesys, lock};

/// Most user ids one batch may name, over all its assignments (UNCONFIRMED).
pub(super) const MOST_USER_IDS: usize = 100;
/// Largest `pageSize` of the users' page (UNCONFIRMED).
const MOST_PAGE_SIZE: usize = 100;

/// The definitions a fresh org has (ids chosen by the sandbox, UNCONFIRMED).
const SEEDED: [(&str, &str); 4] = [
    ("cloudCX1", "Genesys Cloud CX 1"),
    ("cloudCX2", "Genesys Cloud CX 2"),
    ("cloudCX3", "Genesys Cloud CX 3"),
    ("communicate", "Genesys Cloud Communicate"),
];

/// A license definition of the org.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Definition {
    pub(super) id: String,
    #[serde(default)]
    pub(super) description: String,
}

/// One user holding one license.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Assignment {
    pub(super) user: String,
    pub(super) license: String,
}

impl Data {
    /// Seeds the license definitions of a fresh org.
    pub(super) fn seed_licenses(&mut self) {
        if self.license_definitions.is_empty() {
            self.license_definitions = SEEDED
                .iter()
                .map(|(id, description)| Definition {
                    id: (*id).to_owned(),
                    description: (*description).to_owned(),
                })
                .collect();
        }
    }

    /// The ids of the licenses `user` holds, sorted.
    fn licenses_of(&self, user: &str) -> Vec<String> {
        self.assignments
            .iter()
            .filter(|a| a.user == user)
            .map(|a| a.license.clone())
            .collect()
    }
}

/// One change a batch asks for.
struct Wanted {
    user: String,
    license: String,
    add: bool,
}

fn id_list<'a>(item: &'a Value, key: &str) -> Result<Vec<&'a str>, PlatformError> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| {
                id.as_str()
                    .ok_or_else(|| PlatformError::bad_request(format!("{key} holds ids (strings)")))
            })
            .collect(),
        Some(_) => Err(PlatformError::bad_request(format!(
            "{key} must be a list of user ids"
        ))),
    }
}

/// The changes of a `LicenseBatchAssignmentRequest`, checked as a whole: every `licenseId`
/// known, at most [`MOST_USER_IDS`] user ids in all.
fn wanted(data: &Data, body: &Value) -> Result<Vec<Wanted>, PlatformError> {
    let Some(Value::Array(items)) = body.get("assignments") else {
        return Err(PlatformError::bad_request("assignments is required"));
    };
    let mut out = Vec::new();
    for item in items {
        let license = item
            .get("licenseId")
            .and_then(Value::as_str)
            .ok_or_else(|| PlatformError::bad_request("each assignment needs a licenseId"))?;
        if !data.license_definitions.iter().any(|d| d.id == license) {
            return Err(PlatformError::bad_request(format!(
                "License {license} is not defined for this organization"
            )));
        }
        for (key, add) in [("userIdsAdd", true), ("userIdsRemove", false)] {
            out.extend(id_list(item, key)?.into_iter().map(|user| Wanted {
                user: user.to_owned(),
                license: license.to_owned(),
                add,
            }));
        }
    }
    if out.len() > MOST_USER_IDS {
        return Err(PlatformError::bad_request(format!(
            "at most {MOST_USER_IDS} user ids per request, got {}",
            out.len()
        )));
    }
    Ok(out)
}

fn user_licenses(origin: &str, user: &str, licenses: &[String]) -> Value {
    json!({
        "id": user,
        "licenses": licenses,
        "selfUri": format!("{origin}/api/v2/license/users/{user}"),
    })
}

impl Genesys {
    /// `/api/v2/license/definitions`, `/api/v2/license/users[/{id}]` and
    /// `/api/v2/license/organization`.
    pub(super) async fn licenses(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, PlatformError> {
        match (route, request.method().clone()) {
            (Route::LicenseDefinitions, Method::GET) => {
                let data = lock(&self.data);
                let list: Vec<Value> = data
                    .license_definitions
                    .iter()
                    .map(|d| {
                        json!({
                            "id": d.id,
                            "description": d.description,
                            "prerequisites": [],
                            "comprises": [],
                            "selfUri": format!("{}/api/v2/license/definitions/{}", self.origin, d.id),
                        })
                    })
                    .collect();
                Ok(platform_json(StatusCode::OK, &Value::Array(list)))
            }
            (Route::LicenseUsers, Method::GET) => self.license_users(&request),
            (Route::LicenseUser(id), Method::GET) => {
                if self.visible(ResourceKind::User, &id).is_none() {
                    return Err(PlatformError::not_found(format!("User {id} not found")));
                }
                let licenses = lock(&self.data).licenses_of(&id);
                Ok(platform_json(
                    StatusCode::OK,
                    &user_licenses(&self.origin, &id, &licenses),
                ))
            }
            (Route::LicenseOrganization, Method::POST) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                self.assign_licenses(&body)
            }
            _ => Err(not_here(&request)),
        }
    }

    /// A page of the users holding a license.
    fn license_users(&self, request: &Request) -> Result<Response, PlatformError> {
        let pairs = query_pairs(request);
        let too_large = pairs.iter().any(|(k, v)| {
            k == "pageSize" && v.trim().parse::<usize>().is_ok_and(|n| n > MOST_PAGE_SIZE)
        });
        if too_large {
            return Err(PlatformError::bad_request(format!(
                "pageSize must be at most {MOST_PAGE_SIZE}"
            )));
        }
        let data = lock(&self.data);
        let holders: BTreeSet<&str> = data.assignments.iter().map(|a| a.user.as_str()).collect();
        let items = holders
            .into_iter()
            .filter(|user| self.visible(ResourceKind::User, user).is_some())
            .map(|user| user_licenses(&self.origin, user, &data.licenses_of(user)))
            .collect();
        Ok(platform_json(StatusCode::OK, &paged(&pairs, items)?))
    }

    /// `POST /api/v2/license/organization`: each change carried out or refused on its own,
    /// one `LicenseUpdateStatus` each, 200 in any case once the batch itself is valid. Giving
    /// a license held, or taking one not held, is answered as a failure (`AlreadyAssigned`,
    /// `NotAssigned`; UNCONFIRMED spellings), the reading that breaks a client that resends
    /// a batch after a lost answer and believes the second answer.
    fn assign_licenses(&self, body: &Value) -> Result<Response, PlatformError> {
        let _writing = lock(&self.writes);
        let wanted = wanted(&lock(&self.data), body)?;
        let exists: Vec<bool> = wanted
            .iter()
            .map(|w| self.visible(ResourceKind::User, &w.user).is_some())
            .collect();
        let statuses = self.change(|data| {
            wanted
                .iter()
                .zip(exists)
                .map(|(w, exists)| {
                    let result = if exists {
                        let assignment = Assignment {
                            user: w.user.clone(),
                            license: w.license.clone(),
                        };
                        let held = data.assignments.contains(&assignment);
                        if w.add && held {
                            "AlreadyAssigned"
                        } else if w.add {
                            data.assignments.push(assignment);
                            data.assignments.sort();
                            "Success"
                        } else if held {
                            data.assignments.retain(|a| a != &assignment);
                            "Success"
                        } else {
                            "NotAssigned"
                        }
                    } else {
                        "UserNotFound"
                    };
                    json!({"userId": w.user, "licenseId": w.license, "result": result})
                })
                .collect::<Vec<Value>>()
        });
        Ok(platform_json(StatusCode::OK, &Value::Array(statuses)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Data;
    use super::{MOST_USER_IDS, wanted};

    fn data() -> Data {
        let mut data = Data::default();
        data.seed_licenses();
        data
    }

    #[test]
    fn a_batch_is_checked_whole() {
        let data = data();
        let ok = json!({"assignments": [
            {"licenseId": "cloudCX2", "userIdsAdd": ["u1", "u2"], "userIdsRemove": ["u3"]},
            {"licenseId": "cloudCX3"}
        ]});
        let changes = wanted(&data, &ok).expect("valid");
        let seen: Vec<(&str, &str, bool)> = changes
            .iter()
            .map(|w| (w.user.as_str(), w.license.as_str(), w.add))
            .collect();
        assert_eq!(
            seen,
            [
                ("u1", "cloudCX2", true),
                ("u2", "cloudCX2", true),
                ("u3", "cloudCX2", false)
            ]
        );
        for bad in [
            json!({}),
            json!({"assignments": [{"userIdsAdd": ["u1"]}]}),
            json!({"assignments": [{"licenseId": "nope", "userIdsAdd": ["u1"]}]}),
            json!({"assignments": [{"licenseId": "cloudCX1", "userIdsAdd": "u1"}]}),
            json!({"assignments": [{"licenseId": "cloudCX1", "userIdsAdd": [1]}]}),
        ] {
            let refused = wanted(&data, &bad).err().map(|e| e.status);
            assert_eq!(refused, Some(400), "{bad}");
        }
        let many: Vec<String> = (0..=MOST_USER_IDS).map(|i| format!("u{i}")).collect();
        let refused = wanted(
            &data,
            &json!({"assignments": [{"licenseId": "cloudCX1", "userIdsAdd": many}]}),
        );
        assert_eq!(refused.err().map(|e| e.status), Some(400));
    }
}
