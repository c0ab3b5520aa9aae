//! Deleted users, as Genesys Cloud keeps them (docs/genesys.md, "Deleted users"): a SCIM
//! `DELETE` moves the user to the `deleted` state instead of erasing it. SCIM no longer
//! lists or reads it, every role grant is gone ("Delete removes all permissions assigned to
//! the deleted user"), but the id and the email stay, so a SCIM create of that userName is
//! refused with 409 (Genesys's `general.conflict`; the SCIM shape of that refusal is
//! UNCONFIRMED, the sandbox answers SCIM `uniqueness`). The Platform API finds it with
//! `POST /api/v2/users/search` (criteria `email` and `state`, `EXACT`) and restores it with
//! `PATCH /api/v2/users/{id}` carrying `state` and the current `version` (as the Terraform
//! provider does). A restored user comes back in the Home division with no roles at all, not
//! even `employee` [HELP Okta re-enable FAQ].

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::super::http::read_json;
use super::super::resource::{ENTERPRISE_URN, ResourceKind};
use super::wire::{PlatformError, Route, not_here, platform_json};
use super::{Genesys, lock};

/// Largest `pageSize` of a user search the sandbox takes (UNCONFIRMED upstream; the SDK
/// examples stay at or below 100).
const MAX_SEARCH_PAGE: u64 = 100;

/// A user in the `deleted` state: its stored SCIM document, kept as it was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Deleted {
    pub(super) id: String,
    pub(super) doc: Map<String, Value>,
    pub(super) version: u64,
}

impl Deleted {
    fn email(&self) -> &str {
        self.doc
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn entity(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.doc.get("displayName").cloned().unwrap_or(Value::Null),
            "email": self.email(),
            "state": "deleted",
            "version": self.version,
            "selfUri": format!("/api/v2/users/{}", self.id),
        })
    }
}

/// One search criterion the sandbox models: `EXACT` on `email` or `state`.
struct Criterion {
    field: String,
    values: Vec<String>,
}

/// The criteria of a `UserSearchRequest` body; 400 for what the sandbox does not model.
fn criteria(body: &Value) -> Result<Vec<Criterion>, PlatformError> {
    let Some(query) = body.get("query").and_then(Value::as_array) else {
        return Err(PlatformError::bad_request("query is required"));
    };
    let mut out = Vec::new();
    for c in query {
        let kind = c.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "EXACT" {
            return Err(PlatformError::bad_request(format!(
                "the sandbox models only EXACT search criteria, not {kind:?}"
            )));
        }
        let fields: Vec<&str> = c
            .get("fields")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let [field] = fields.as_slice() else {
            return Err(PlatformError::bad_request(
                "the sandbox models one field per criterion",
            ));
        };
        if !matches!(*field, "email" | "state") {
            return Err(PlatformError::bad_request(format!(
                "the sandbox models search on email and state, not {field:?}"
            )));
        }
        let mut values: Vec<String> = c
            .get("values")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(v) = c.get("value").and_then(Value::as_str) {
            values.push(v.to_owned());
        }
        if values.is_empty() {
            return Err(PlatformError::bad_request(
                "a criterion needs value or values",
            ));
        }
        out.push(Criterion {
            field: (*field).to_owned(),
            values,
        });
    }
    Ok(out)
}

impl Genesys {
    /// `POST /api/v2/users/search` and `PATCH /api/v2/users/{id}` (restore only).
    pub(super) async fn platform_users(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, PlatformError> {
        match (route, request.method().clone()) {
            (Route::UsersSearch, Method::POST) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                self.search_users(&body)
            }
            (Route::PlatformUser(id), Method::PATCH) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                self.restore_user(&id, &body)
            }
            _ => Err(not_here(&request)),
        }
    }

    /// The user search over every user, active, inactive and deleted: a user must meet every
    /// criterion, and meets one when it has any of its values (emails compared
    /// case-insensitively).
    fn search_users(&self, body: &Value) -> Result<Response, PlatformError> {
        let criteria = criteria(body)?;
        let page_size = body.get("pageSize").and_then(Value::as_u64).unwrap_or(25);
        if page_size == 0 || page_size > MAX_SEARCH_PAGE {
            return Err(PlatformError::bad_request(format!(
                "pageSize must be 1 to {MAX_SEARCH_PAGE}"
            )));
        }
        let page_number = body
            .get("pageNumber")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1);
        let everyone = super::super::store::ListQuery {
            start_index: 1,
            count: usize::MAX,
            ..super::super::store::ListQuery::default()
        };
        let mut found: Vec<Value> = Vec::new();
        for entry in self.store.list(ResourceKind::User, &everyone).items {
            let doc = entry.doc();
            let state = if doc.get("active") == Some(&Value::Bool(false)) {
                "inactive"
            } else {
                "active"
            };
            found.push(json!({
                "id": entry.id.to_string(),
                "name": doc.get("displayName").cloned().unwrap_or(Value::Null),
                "email": doc.get("userName").cloned().unwrap_or(Value::Null),
                "state": state,
                "version": entry.version,
                "selfUri": format!("/api/v2/users/{}", entry.id),
            }));
        }
        found.extend(lock(&self.data).deleted.iter().map(Deleted::entity));
        found.retain(|user| {
            criteria.iter().all(|c| {
                let have = user
                    .get(&c.field)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                c.values.iter().any(|v| v.eq_ignore_ascii_case(have))
            })
        });
        let total = found.len() as u64;
        let page_count = total.div_ceil(page_size);
        let results: Vec<Value> = found
            .into_iter()
            .skip(usize::try_from((page_number - 1) * page_size).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
            .collect();
        Ok(platform_json(
            StatusCode::OK,
            &json!({
                "total": total,
                "pageSize": page_size,
                "pageNumber": page_number,
                "pageCount": page_count,
                "results": results,
            }),
        ))
    }

    /// Restores deleted user `id`: `state` `active` (or `inactive`) at its current `version`
    /// (409 `general.conflict` otherwise, as a stale version is answered); the user comes back
    /// under its id, in the Home division, with no role grant. Other Platform user edits are
    /// not modelled (400).
    fn restore_user(&self, id: &str, body: &Value) -> Result<Response, PlatformError> {
        let _writing = lock(&self.writes);
        let state = body
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = body.get("version").and_then(Value::as_u64);
        let extra: Vec<&String> = body
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| *k != "state" && *k != "version")
                    .collect()
            })
            .unwrap_or_default();
        if !extra.is_empty() || !matches!(state, "active" | "inactive") {
            return Err(PlatformError::bad_request(
                "the sandbox models PATCH /api/v2/users/{id} only as a restore: {state, version}",
            ));
        }
        let data = lock(&self.data).clone();
        let Some(deleted) = data.deleted.iter().find(|d| d.id == id).cloned() else {
            return Err(if self.store.get_entry(ResourceKind::User, id).is_some() {
                PlatformError::bad_request("the user is not deleted: nothing to restore")
            } else {
                PlatformError::not_found(format!("User {id} not found"))
            });
        };
        if version != Some(deleted.version) {
            return Err(PlatformError::conflict(format!(
                "The version supplied ({}) does not match the current version of the user ({})",
                version.map_or_else(|| "none".to_owned(), |v| v.to_string()),
                deleted.version
            )));
        }
        let mut doc = deleted.doc.clone();
        doc.insert("id".to_owned(), Value::String(id.to_owned()));
        doc.insert("active".to_owned(), Value::Bool(state == "active"));
        let home = Value::String(data.home().name.clone());
        match doc.get_mut(ENTERPRISE_URN) {
            Some(Value::Object(ext)) => {
                ext.insert("division".to_owned(), home);
            }
            _ => {
                doc.insert(ENTERPRISE_URN.to_owned(), json!({"division": home}));
            }
        }
        self.store
            .insert(ResourceKind::User, Value::Object(doc))
            .map_err(PlatformError::from)?;
        self.change(|data| {
            data.deleted.retain(|d| d.id != id);
            data.grants.retain(|g| g.subject != id);
        });
        let entry = self
            .store
            .get_entry(ResourceKind::User, id)
            .ok_or_else(|| PlatformError::not_found(format!("User {id} not found")))?;
        let doc = entry.doc();
        Ok(platform_json(
            StatusCode::OK,
            &json!({
                "id": id,
                "name": doc.get("displayName").cloned().unwrap_or(Value::Null),
                "email": doc.get("userName").cloned().unwrap_or(Value::Null),
                "state": state,
                "version": entry.version,
                "selfUri": format!("/api/v2/users/{id}"),
            }),
        ))
    }

    /// Whether `user_name` is the email of a deleted user.
    pub(super) fn deleted_email(&self, user_name: &str) -> bool {
        lock(&self.data)
            .deleted
            .iter()
            .any(|d| d.email().eq_ignore_ascii_case(user_name))
    }

    /// Keeps user `id` (its stored document, `doc`) in the `deleted` state.
    pub(super) fn keep_deleted(&self, id: &str, mut doc: Map<String, Value>, version: u64) {
        doc.remove("meta");
        doc.remove("id");
        self.change(|data| {
            data.deleted.retain(|d| d.id != id);
            data.deleted.push(Deleted {
                id: id.to_owned(),
                doc,
                version,
            });
        });
    }
}
