//! Groups, seen two ways: over SCIM (list with a required filter, GET/PUT/PATCH; no create or
//! delete since Feb 2021; direct user members only) and over the Platform API (create,
//! update with version checks, delete, members in chunks of at most 50). The same store entry
//! backs both; `description`, `type`, `visibility`, the `rulesVisible`, `rolesEnabled`,
//! `callsEnabled` and `includeOwners` flags, owners and addresses exist only on the Platform
//! side. A create needs `rulesVisible` and drops `description`; a PUT resets what it omits;
//! the first DELETE of a group answers as if done and changes nothing (§5).

use axum::extract::Request;
use axum::http::header::{IF_MATCH, IF_NONE_MATCH};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::super::error::ScimError;
use super::super::http::{header, read_json, scim_json};
use super::super::patch;
use super::super::resource::{self, GROUP_URN, ResourceKind, canonical};
use super::super::store::{Entry, ListQuery};
use super::users::{list_body, list_request, project, resource_answer};
use super::wire::{
    PlatformError, Refusal, Route, empty, not_here, paged, param, platform_json, query_pairs,
};
use super::{Genesys, GroupInfo, lock};

/// Attributes whose lookups make a page over 25 groups too expensive.
const GROUP_EXPENSIVE: &[(&str, &str)] = &[(GROUP_URN, "externalId"), (GROUP_URN, "members")];

/// Most member ids one Platform request may add or remove.
const MEMBER_CHUNK: usize = 50;

fn missing_group(id: &str) -> ScimError {
    ScimError::not_found(format!("Group {id} not found"))
}

impl Genesys {
    /// `/api/v2/scim/v2/groups[/{id}]` and `/api/v2/scim/groups[/{id}]`.
    pub(super) async fn scim_groups(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, Refusal> {
        let pairs = query_pairs(&request);
        let method = request.method().clone();
        match (route, method) {
            (Route::Groups { filter_required }, Method::GET) => {
                self.list_groups(&pairs, filter_required)
            }
            (Route::Group { id, .. }, Method::GET) => {
                let if_none = header(request.headers(), &IF_NONE_MATCH).map(str::to_owned);
                self.get_resource(ResourceKind::Group, &id, &pairs, if_none.as_deref())
            }
            (Route::Group { id, v1: false }, Method::PUT | Method::PATCH) => {
                let patching = request.method() == Method::PATCH;
                let (parts, body) = request.into_parts();
                let if_match = header(&parts.headers, &IF_MATCH).map(str::to_owned);
                let body = read_json(&parts.headers, body).await?;
                self.write_group(&id, if_match.as_deref(), |before| {
                    if patching {
                        let ops = patch::parse_body(&body)?;
                        super::wire::check_documented_paths(&ops, ResourceKind::Group)?;
                        let mut after = before.clone();
                        patch::apply(&mut after, &ops, ResourceKind::Group)?;
                        Ok(after)
                    } else {
                        match body {
                            Value::Object(after) => Ok(after),
                            _ => Err(ScimError::invalid_syntax("the body must be an object")),
                        }
                    }
                })
            }
            // POST and DELETE of SCIM groups were removed from the API in Feb 2021.
            _ => Err(not_here(&request).into()),
        }
    }

    /// A group as SCIM returns it: no description; members are users with `type` and `$ref`.
    pub(super) fn render_group(&self, entry: &Entry) -> Map<String, Value> {
        let mut doc = entry.doc();
        let meta = doc.remove("meta");
        let modified = meta
            .as_ref()
            .and_then(|m| m.get("lastModified"))
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(Value::Array(members)) = doc.get_mut("members") {
            for member in members.iter_mut() {
                let value = member
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                *member = json!({
                    "value": value,
                    "type": "User",
                    "$ref": self.location(ResourceKind::User, value),
                });
            }
        }
        doc.insert("schemas".to_owned(), json!([GROUP_URN]));
        doc.insert(
            "meta".to_owned(),
            json!({
                "resourceType": "Group",
                "lastModified": modified,
                "location": self.location(ResourceKind::Group, &entry.id),
                "version": entry.version.to_string(),
            }),
        );
        doc
    }

    fn list_groups(
        &self,
        pairs: &[(String, String)],
        filter_required: bool,
    ) -> Result<Response, Refusal> {
        if filter_required && param(pairs, "filter").is_none_or(|f| f.trim().is_empty()) {
            return Err(ScimError::invalid_filter(
                "filter is required on /api/v2/scim/v2/groups (e.g. displayName eq \"Sales\")",
            )
            .into());
        }
        let list = list_request(pairs, GROUP_EXPENSIVE)?;
        let everyone = ListQuery {
            start_index: 1,
            count: usize::MAX,
            ..ListQuery::default()
        };
        let entries = self.store.list(ResourceKind::Group, &everyone).items;
        let matched: Vec<Map<String, Value>> = entries
            .iter()
            .filter(|e| !self.is_hidden(&e.id))
            .map(|e| self.render_group(e))
            .filter(|doc| {
                list.filter
                    .as_ref()
                    .is_none_or(|f| f.matches(doc, GROUP_URN))
            })
            .collect();
        let total = matched.len();
        let items = matched
            .into_iter()
            .skip(list.start_index - 1)
            .take(list.count)
            .map(|doc| Value::Object(project(doc, list.projection.as_ref(), ResourceKind::Group)))
            .collect();
        Ok(scim_json(
            StatusCode::OK,
            &list_body(total, list.start_index, items),
        ))
    }

    /// The stored form of a client's group view: supported attributes only, members that are
    /// users (a group id is refused: nested groups are not supported).
    fn group_to_stored(
        &self,
        mut after: Map<String, Value>,
    ) -> Result<Map<String, Value>, ScimError> {
        const ALLOWED: [&str; 6] = [
            "schemas",
            "id",
            "meta",
            "displayName",
            "externalId",
            "members",
        ];
        let keys: Vec<String> = after.keys().cloned().collect();
        for key in keys {
            let canon = canonical(&key).to_owned();
            if !ALLOWED.contains(&canon.as_str()) {
                return Err(ScimError::invalid_value(format!(
                    "attribute `{key}` is not supported on Genesys Cloud SCIM groups"
                )));
            }
            if canon != key
                && let Some(v) = after.remove(&key)
            {
                after.insert(canon, v);
            }
        }
        after.remove("id");
        after.remove("meta");
        let members = match after.remove("members") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(members)) => members,
            Some(_) => return Err(ScimError::invalid_value("members must be an array")),
        };
        let mut stored = Vec::new();
        for member in members {
            let value = member
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| ScimError::invalid_value("every member needs a string value"))?;
            let typed_group = member
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("group"));
            if typed_group || self.store.get_entry(ResourceKind::Group, value).is_some() {
                return Err(ScimError::invalid_value(
                    "nested groups are not supported: members must be users",
                ));
            }
            if self.store.get_entry(ResourceKind::User, value).is_none() {
                return Err(ScimError::invalid_value(format!("no user with id {value}")));
            }
            stored.push(json!({"value": value}));
        }
        if !stored.is_empty() {
            after.insert("members".to_owned(), Value::Array(stored));
        }
        resource::normalize(&mut after, ResourceKind::Group);
        resource::validate(&after, ResourceKind::Group)?;
        Ok(after)
    }

    fn write_group(
        &self,
        id: &str,
        if_match: Option<&str>,
        change: impl FnOnce(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<Response, Refusal> {
        let _writing = lock(&self.writes);
        let entry = self
            .visible(ResourceKind::Group, id)
            .ok_or_else(|| missing_group(id))?;
        self.check_version(if_match, entry.version)?;
        let after = change(&self.render_group(&entry))?;
        let stored = self.group_to_stored(after)?;
        let entry = self
            .store
            .update(ResourceKind::Group, id, None, false, |_| Ok(stored))?;
        Ok(resource_answer(
            StatusCode::OK,
            &self.render_group(&entry),
            &self.etag(entry.version),
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Platform API

    /// A group as the Platform API returns it.
    fn group_entity(&self, entry: &Entry) -> Value {
        let doc = entry.doc();
        let info = lock(&self.data)
            .groups
            .get(&*entry.id)
            .cloned()
            .unwrap_or_default();
        let mut entity = json!({
            "id": &*entry.id,
            "name": doc.get("displayName").cloned().unwrap_or(Value::Null),
            "type": info.kind,
            "visibility": info.visibility,
            "state": "active",
            "version": entry.version,
            "memberCount": resource::member_values(&doc).len(),
            "rulesVisible": info.rules_visible,
            "rolesEnabled": info.roles_enabled,
            "callsEnabled": info.calls_enabled,
            "includeOwners": info.include_owners,
            "owners": info.owners.iter().map(|id| json!({
                "id": id,
                "selfUri": format!("/api/v2/users/{id}"),
            })).collect::<Vec<_>>(),
            "addresses": info.addresses,
            "selfUri": format!("/api/v2/groups/{}", entry.id),
        });
        if let Some(description) = info.description {
            entity["description"] = Value::String(description);
        }
        entity
    }

    fn platform_group(&self, id: &str) -> Result<std::sync::Arc<Entry>, PlatformError> {
        self.visible(ResourceKind::Group, id)
            .ok_or_else(|| PlatformError::not_found(format!("Group {id} not found")))
    }

    /// `/api/v2/groups[/{id}]`.
    pub(super) async fn platform_groups(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, PlatformError> {
        let pairs = query_pairs(&request);
        let method = request.method().clone();
        match (route, method) {
            (Route::PlatformGroups, Method::GET) => {
                let everyone = ListQuery {
                    start_index: 1,
                    count: usize::MAX,
                    ..ListQuery::default()
                };
                let entries = self.store.list(ResourceKind::Group, &everyone).items;
                let items = entries
                    .iter()
                    .filter(|e| !self.is_hidden(&e.id))
                    .map(|e| self.group_entity(e))
                    .collect();
                Ok(platform_json(StatusCode::OK, &paged(&pairs, items)?))
            }
            (Route::PlatformGroups, Method::POST) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                self.create_platform_group(&body)
            }
            (Route::PlatformGroup(id), Method::GET) => {
                let entry = self.platform_group(&id)?;
                Ok(platform_json(StatusCode::OK, &self.group_entity(&entry)))
            }
            (Route::PlatformGroup(id), Method::PUT) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                self.update_platform_group(&id, &body)
            }
            (Route::PlatformGroup(id), Method::DELETE) => {
                let _writing = lock(&self.writes);
                self.platform_group(&id)?;
                // Genesys answers the delete at once and carries it out later, where it can
                // fail (Terraform provider, DEVTOOLING-485): the first ones change nothing.
                if self.misses_delete(&id) {
                    return Ok(empty(StatusCode::NO_CONTENT));
                }
                self.store.delete(ResourceKind::Group, &id, None)?;
                // The grants made to the group go with it.
                self.change(|data| {
                    data.grants.retain(|g| g.subject != id);
                    data.groups.remove(&id)
                });
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => Err(not_here(&request)),
        }
    }

    fn create_platform_group(&self, body: &Value) -> Result<Response, PlatformError> {
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| PlatformError::bad_request("name is required"))?;
        let info = group_info(body, None)?;
        let _writing = lock(&self.writes);
        self.check_owners(&info)?;
        let entry = self
            .store
            .create(ResourceKind::Group, json!({"displayName": name}))?;
        self.change(|data| data.groups.insert(entry.id.to_string(), info));
        self.hide(&entry.id);
        Ok(platform_json(StatusCode::OK, &self.group_entity(&entry)))
    }

    fn update_platform_group(&self, id: &str, body: &Value) -> Result<Response, PlatformError> {
        let _writing = lock(&self.writes);
        let entry = self.platform_group(id)?;
        check_platform_version(body, entry.version)?;
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| PlatformError::bad_request("name is required"))?
            .to_owned();
        let current = lock(&self.data).groups.get(id).cloned().unwrap_or_default();
        let info = group_info(body, Some(&current))?;
        self.check_owners(&info)?;
        let entry = self
            .store
            .update(ResourceKind::Group, id, None, true, |old| {
                let mut doc = old.clone();
                doc.insert("displayName".to_owned(), Value::String(name));
                Ok(doc)
            })?;
        self.change(|data| data.groups.insert(id.to_owned(), info));
        Ok(platform_json(StatusCode::OK, &self.group_entity(&entry)))
    }

    /// Every owner must be a user.
    fn check_owners(&self, info: &GroupInfo) -> Result<(), PlatformError> {
        match info
            .owners
            .iter()
            .find(|id| self.store.get_entry(ResourceKind::User, id).is_none())
        {
            Some(bad) => Err(PlatformError::bad_request(format!(
                "no user with id {bad} (ownerIds)"
            ))),
            None => Ok(()),
        }
    }

    /// `/api/v2/groups/{id}/individuals` and `/api/v2/groups/{id}/members`.
    pub(super) async fn group_members(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, PlatformError> {
        let pairs = query_pairs(&request);
        let method = request.method().clone();
        match (route, method) {
            (Route::Individuals(id), Method::GET) => {
                let entry = self.platform_group(&id)?;
                let items = resource::member_values(&entry.doc())
                    .into_iter()
                    .filter_map(|m| self.visible(ResourceKind::User, &m))
                    .map(|user| {
                        let doc = user.doc();
                        json!({
                            "id": &*user.id,
                            "name": doc.get("displayName").cloned().unwrap_or(Value::Null),
                            "email": doc.get("userName").cloned().unwrap_or(Value::Null),
                            "state": if doc.get("active") == Some(&Value::Bool(false)) {
                                "inactive"
                            } else {
                                "active"
                            },
                        })
                    })
                    .collect();
                Ok(platform_json(StatusCode::OK, &paged(&pairs, items)?))
            }
            (Route::Members(id), Method::POST) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                let ids: Vec<String> = match body.get("memberIds") {
                    Some(Value::Array(ids)) => ids
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<_>>()
                        .ok_or_else(|| PlatformError::bad_request("memberIds must be strings"))?,
                    _ => return Err(PlatformError::bad_request("memberIds is required")),
                };
                self.change_members(&id, &ids, Some(&body))
            }
            (Route::Members(id), Method::DELETE) => {
                let ids: Vec<String> = param(&pairs, "ids")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if ids.is_empty() {
                    return Err(PlatformError::bad_request("ids is required"));
                }
                self.change_members(&id, &ids, None)
            }
            _ => Err(not_here(&request)),
        }
    }

    /// Adds (`body` given, with its `version`) or removes members; at most 50 ids.
    fn change_members(
        &self,
        id: &str,
        ids: &[String],
        body: Option<&Value>,
    ) -> Result<Response, PlatformError> {
        if ids.len() > MEMBER_CHUNK {
            return Err(PlatformError::bad_request(format!(
                "at most {MEMBER_CHUNK} member ids per request"
            )));
        }
        let _writing = lock(&self.writes);
        let entry = self.platform_group(id)?;
        if let Some(body) = body {
            check_platform_version(body, entry.version)?;
            if let Some(bad) = ids
                .iter()
                .find(|m| self.store.get_entry(ResourceKind::User, m).is_none())
            {
                return Err(PlatformError::bad_request(format!("no user with id {bad}")));
            }
        }
        let adding = body.is_some();
        self.store
            .update(ResourceKind::Group, id, None, true, |old| {
                let mut doc = old.clone();
                let mut members: Vec<Value> = match doc.remove("members") {
                    Some(Value::Array(members)) => members,
                    _ => Vec::new(),
                };
                if adding {
                    members.extend(ids.iter().map(|m| json!({"value": m})));
                } else {
                    members.retain(|m| {
                        m.get("value")
                            .and_then(Value::as_str)
                            .is_none_or(|v| !ids.iter().any(|i| i == v))
                    });
                }
                if !members.is_empty() {
                    doc.insert("members".to_owned(), Value::Array(members));
                }
                resource::normalize(&mut doc, ResourceKind::Group);
                Ok(doc)
            })?;
        Ok(empty(StatusCode::ACCEPTED))
    }
}

/// `version` must be given and current (409 "does not match the current version" otherwise).
fn check_platform_version(body: &Value, current: u64) -> Result<(), PlatformError> {
    let given = body
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| PlatformError::bad_request("version is required"))?;
    if given == current {
        Ok(())
    } else {
        Err(PlatformError::conflict(format!(
            "The version supplied ({given}) does not match the current version ({current}) of the group"
        )))
    }
}

/// A boolean field of a Platform body, `None` when absent.
fn flag(body: &Value, name: &str) -> Result<Option<bool>, PlatformError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(PlatformError::bad_request(format!(
            "{name} must be a boolean"
        ))),
    }
}

/// The Platform-only fields of a group body. Without `current` it is a `GroupCreate`: `type`,
/// `visibility` and `rulesVisible` are required (as `name`, checked by the caller) and
/// `description` is dropped, as the Terraform provider reports the API does. With `current`
/// it is a `GroupUpdate`: it has no `type` (PY GroupUpdate.md), so a `type` sent is ignored
/// and the group keeps the one it was created with (a client that plans a type change meets a
/// plan that never empties); `visibility` keeps its value when omitted, and every other field
/// omitted goes back to its default (false, empty, no description), the pessimistic reading
/// of Terraform issue #262 (docs/genesys.md §5).
fn group_info(body: &Value, current: Option<&GroupInfo>) -> Result<GroupInfo, PlatformError> {
    let pick = |name: &str,
                allowed: &[&str],
                fallback: Option<&String>|
     -> Result<String, PlatformError> {
        match body.get(name).and_then(Value::as_str) {
            Some(v) if allowed.contains(&v) => Ok(v.to_owned()),
            Some(v) => Err(PlatformError::invalid_value(format!(
                "{name} must be one of {}, not {v:?}",
                allowed.join(", ")
            ))),
            None => fallback
                .cloned()
                .ok_or_else(|| PlatformError::bad_request(format!("{name} is required"))),
        }
    };
    let kind = match current {
        Some(c) => c.kind.clone(),
        None => pick("type", &["official", "social"], None)?,
    };
    let visibility = pick(
        "visibility",
        &["public", "owners", "members"],
        current.map(|c| &c.visibility),
    )?;
    let rules_visible = match (flag(body, "rulesVisible")?, current) {
        (Some(v), _) => v,
        (None, Some(_)) => false,
        (None, None) => return Err(PlatformError::bad_request("rulesVisible is required")),
    };
    let description = match (body.get("description"), current) {
        (_, None) | (None | Some(Value::Null), Some(_)) => None,
        (Some(Value::String(d)), Some(_)) => Some(d.clone()),
        (Some(_), Some(_)) => {
            return Err(PlatformError::bad_request("description must be a string"));
        }
    };
    let owners = match body.get("ownerIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| PlatformError::bad_request("ownerIds must be strings"))?,
        Some(_) => return Err(PlatformError::bad_request("ownerIds must be an array")),
    };
    let addresses = match body.get("addresses") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(PlatformError::bad_request("addresses must be an array")),
    };
    Ok(GroupInfo {
        description,
        kind,
        visibility,
        rules_visible,
        roles_enabled: flag(body, "rolesEnabled")?.unwrap_or(false),
        calls_enabled: flag(body, "callsEnabled")?.unwrap_or(false),
        include_owners: flag(body, "includeOwners")?.unwrap_or(false),
        owners,
        addresses,
    })
}
