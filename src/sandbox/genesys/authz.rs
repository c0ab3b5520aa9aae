//! The authorization subset of the Platform API: roles (CRUD), divisions (read), subjects'
//! grants (read, bulk add, bulk remove, remove one), the sandbox's own OAuth client (403
//! without `oauth:client:view`) and `/api/v2/tokens/me` (no permission needed). A new
//! role answers 404 to `bulkadd` for a while (the authorization cache), and `bulkremove` fails
//! whole when it names a grant not held. Division `*` stands for all divisions (read back as
//! "All divisions"; UNCONFIRMED how Genesys names it).

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::http::read_json;
use super::super::resource::ResourceKind;
use super::wire::{
    PlatformError, Route, empty, not_here, paged, param, parse_query, platform_json, query_pairs,
};
use super::{ALL_DIVISIONS, CLIENT_ROLE, Data, Division, Genesys, Role, catalogue, lock, uuid};

fn role_entity(role: &Role) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": role.permissions,
        "permissionPolicies": role.policies,
        "default": role.default,
        "base": false,
        "selfUri": format!("/api/v2/authorization/roles/{}", role.id),
    })
}

fn division_entity(division: &Division) -> Value {
    json!({
        "id": division.id,
        "name": division.name,
        "homeDivision": division.home,
        "selfUri": format!("/api/v2/authorization/divisions/{}", division.id),
    })
}

/// `{name, description, permissions, permissionPolicies}` of a role body.
fn role_fields(body: &Value) -> Result<(String, String, Vec<Value>, Vec<Value>), PlatformError> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| PlatformError::bad_request("name is required"))?
        .to_owned();
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let list = |key: &str| -> Result<Vec<Value>, PlatformError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err(PlatformError::bad_request(format!(
                "{key} must be an array"
            ))),
        }
    };
    let policies = list("permissionPolicies")?;
    for policy in &policies {
        let ok = policy.get("domain").and_then(Value::as_str).is_some()
            && policy.get("entityName").and_then(Value::as_str).is_some()
            && policy.get("actionSet").is_some_and(Value::is_array);
        if !ok {
            return Err(PlatformError::invalid_value(
                "each permission policy needs domain, entityName and actionSet",
            ));
        }
    }
    let policies = catalogue::expand(&policies).map_err(PlatformError::invalid_value)?;
    Ok((name, description, list("permissions")?, policies))
}

impl Genesys {
    /// `/api/v2/authorization/roles[/{id}]`.
    pub(super) async fn roles(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, PlatformError> {
        let pairs = query_pairs(&request);
        let method = request.method().clone();
        match (route, method) {
            (Route::Roles, Method::GET) => {
                let items = lock(&self.data).roles.iter().map(role_entity).collect();
                Ok(platform_json(StatusCode::OK, &paged(&pairs, items)?))
            }
            (Route::Roles, Method::POST) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                let (name, description, permissions, policies) = role_fields(&body)?;
                let _writing = lock(&self.writes);
                let role = self.change(|data| {
                    if data.role_named(&name).is_some() {
                        return Err(PlatformError::conflict(format!(
                            "A role named {name:?} already exists"
                        )));
                    }
                    let mut role = Role {
                        id: uuid(),
                        name,
                        description,
                        permissions,
                        policies,
                        default: false,
                        backfilled: false,
                    };
                    role.backfilled = catalogue::backfill(&mut role.policies);
                    data.roles.push(role.clone());
                    Ok(role)
                })?;
                self.note_new_role(&role.id);
                Ok(platform_json(StatusCode::OK, &role_entity(&role)))
            }
            (Route::Role(id), Method::GET) => {
                let data = lock(&self.data);
                let role = data.role(&id).ok_or_else(|| role_missing(&id))?;
                Ok(platform_json(StatusCode::OK, &role_entity(role)))
            }
            (Route::Role(id), Method::PUT) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                let (name, description, permissions, policies) = role_fields(&body)?;
                let _writing = lock(&self.writes);
                let role = self.change(|data| {
                    if data.role_named(&name).is_some_and(|r| r.id != id) {
                        return Err(PlatformError::conflict(format!(
                            "A role named {name:?} already exists"
                        )));
                    }
                    let role = data
                        .roles
                        .iter_mut()
                        .find(|r| r.id == id)
                        .ok_or_else(|| role_missing(&id))?;
                    role.name = name;
                    role.description = description;
                    role.permissions = permissions;
                    role.policies = policies;
                    if !role.backfilled {
                        role.backfilled = catalogue::backfill(&mut role.policies);
                    }
                    Ok(role.clone())
                })?;
                Ok(platform_json(StatusCode::OK, &role_entity(&role)))
            }
            (Route::Role(id), Method::DELETE) => {
                let _writing = lock(&self.writes);
                self.change(|data| {
                    let before = data.roles.len();
                    data.roles.retain(|r| r.id != id);
                    if data.roles.len() == before {
                        return Err(role_missing(&id));
                    }
                    data.grants.retain(|g| g.role != id);
                    Ok(())
                })?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => Err(not_here(&request)),
        }
    }

    /// `/api/v2/authorization/divisions` and `/api/v2/authorization/divisions/home`.
    pub(super) fn divisions(
        &self,
        route: &Route,
        request: &Request,
    ) -> Result<Response, PlatformError> {
        if request.method() != Method::GET {
            return Err(not_here(request));
        }
        let data = lock(&self.data);
        if *route == Route::HomeDivision {
            return Ok(platform_json(StatusCode::OK, &division_entity(data.home())));
        }
        let items = data.divisions.iter().map(division_entity).collect();
        Ok(platform_json(
            StatusCode::OK,
            &paged(&query_pairs(request), items)?,
        ))
    }

    /// `/api/v2/authorization/subjects/{id}[/bulkadd|/bulkremove]`; subjects are users, and
    /// groups (`?subjectType=PC_GROUP` on the bulk calls).
    pub(super) async fn subjects(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, PlatformError> {
        let method = request.method().clone();
        match (route, method) {
            (Route::Subject(id), Method::GET) => self.subject(&id),
            (Route::Bulk { subject, add }, Method::POST) => {
                let (parts, body) = request.into_parts();
                let group = param(&parse_query(parts.uri.query()), "subjectType")
                    .is_some_and(|t| t.eq_ignore_ascii_case("PC_GROUP"));
                let body = read_json(&parts.headers, body).await?;
                if group {
                    self.group_bulk(&subject, add, &body)
                } else {
                    self.bulk(&subject, add, &body)
                }
            }
            (
                Route::SubjectGrant {
                    subject,
                    division,
                    role,
                },
                Method::DELETE,
            ) => self.revoke(&subject, &division, &role),
            _ => Err(not_here(&request)),
        }
    }

    /// `GET …/subjects/{id}`: a user's grants, its own and, with the group's id as
    /// `subjectId`, those it holds through the groups it is a direct member of (the
    /// Terraform provider filters on `subjectId` for that reason, §4); or a group's grants.
    /// Whether a group needs `rolesEnabled` for its members to hold its grants is
    /// UNCONFIRMED: the simulator counts them only while it is on.
    fn subject(&self, id: &str) -> Result<Response, PlatformError> {
        let (entry, groups) = if let Some(user) = self.visible(ResourceKind::User, id) {
            let groups = self.groups_of(id);
            (user, groups)
        } else if let Some(group) = self.visible(ResourceKind::Group, id) {
            (group, Vec::new())
        } else {
            return Err(PlatformError::not_found(format!("Subject {id} not found")));
        };
        let name = entry
            .doc()
            .get("displayName")
            .cloned()
            .unwrap_or(Value::Null);
        let data = lock(&self.data);
        let through: Vec<&str> = groups
            .iter()
            .map(String::as_str)
            .filter(|g| data.groups.get(*g).is_some_and(|i| i.roles_enabled))
            .collect();
        let grants: Vec<Value> = data
            .grants
            .iter()
            .filter(|g| g.subject == id || through.contains(&g.subject.as_str()))
            .map(|g| {
                let role = data.role(&g.role).map(|r| r.name.clone());
                let division = if g.division == ALL_DIVISIONS {
                    Some("All divisions".to_owned())
                } else {
                    data.division(&g.division).map(|d| d.name.clone())
                };
                json!({
                    "subjectId": g.subject,
                    "role": {"id": g.role, "name": role},
                    "division": {"id": g.division, "name": division},
                    "grantMadeAt": g.made_at,
                })
            })
            .collect();
        Ok(platform_json(
            StatusCode::OK,
            &json!({"id": id, "name": name, "grants": grants}),
        ))
    }

    /// `bulkadd` or `bulkremove` with `subjectType=PC_GROUP`: grants made to group
    /// `group`, all or nothing as for a user. A group without `rolesEnabled` is refused with
    /// 400 (Genesys grants roles only to such groups, genesys-api.md §4; the status and code
    /// of the refusal are UNCONFIRMED, the hard reading). A group id sent without the
    /// subject type is looked up as a user and answers 404.
    fn group_bulk(&self, group: &str, add: bool, body: &Value) -> Result<Response, PlatformError> {
        if self.visible(ResourceKind::Group, group).is_none() {
            return Err(PlatformError::not_found(format!("Group {group} not found")));
        }
        let enabled = lock(&self.data)
            .groups
            .get(group)
            .is_some_and(|i| i.roles_enabled);
        if add && !enabled {
            return Err(PlatformError::bad_request(format!(
                "group {group} does not have rolesEnabled: roles cannot be granted to it"
            )));
        }
        self.bulk_for(group, add, body)
    }

    /// `DELETE …/subjects/{s}/divisions/{d}/roles/{r}`: one grant; 404 when the subject does
    /// not hold it (or is gone).
    fn revoke(&self, subject: &str, division: &str, role: &str) -> Result<Response, PlatformError> {
        let _writing = lock(&self.writes);
        if self.visible(ResourceKind::User, subject).is_none() {
            return Err(PlatformError::not_found(format!(
                "Subject {subject} not found"
            )));
        }
        self.change(|data| {
            let before = data.grants.len();
            data.grants
                .retain(|g| !(g.subject == subject && g.role == role && g.division == division));
            if data.grants.len() == before {
                return Err(PlatformError::not_found(format!(
                    "Subject {subject} holds no grant of role {role} in division {division}"
                )));
            }
            Ok(())
        })?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// `bulkadd` or `bulkremove`, all or nothing: a role the authorization cache has not seen
    /// yet answers 404 to `bulkadd` (the Terraform provider retries it); a `bulkremove` naming
    /// a pair the subject does not hold fails as a whole with 404 (the provider: "the bulk
    /// remove API returns failure if any roles/divisions no longer exist").
    fn bulk(&self, subject: &str, add: bool, body: &Value) -> Result<Response, PlatformError> {
        if self.visible(ResourceKind::User, subject).is_none() {
            return Err(PlatformError::not_found(format!(
                "Subject {subject} not found"
            )));
        }
        self.bulk_for(subject, add, body)
    }

    /// The grants of a `bulkadd` or `bulkremove` to a subject known to exist.
    fn bulk_for(&self, subject: &str, add: bool, body: &Value) -> Result<Response, PlatformError> {
        let Some(Value::Array(items)) = body.get("grants") else {
            return Err(PlatformError::bad_request("grants is required"));
        };
        let _writing = lock(&self.writes);
        let now = self.now();
        let pairs = {
            let data = lock(&self.data);
            items
                .iter()
                .map(|item| grant_pair(&data, item))
                .collect::<Result<Vec<_>, _>>()?
        };
        if add && let Some((role, _)) = pairs.iter().find(|(role, _)| self.is_fresh_role(role)) {
            return Err(PlatformError::not_found(format!("Role {role} not found")));
        }
        self.change(|data| {
            if !add
                && let Some((role, division)) = pairs.iter().find(|(role, division)| {
                    !data
                        .grants
                        .iter()
                        .any(|g| g.subject == subject && &g.role == role && &g.division == division)
                })
            {
                return Err(PlatformError::not_found(format!(
                    "Subject {subject} holds no grant of role {role} in division {division}"
                )));
            }
            for (role, division) in pairs {
                if add {
                    data.grant(subject, &role, &division, &now);
                } else {
                    data.grants.retain(|g| {
                        !(g.subject == subject && g.role == role && g.division == division)
                    });
                }
            }
            Ok::<(), PlatformError>(())
        })?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// `/api/v2/oauth/clients/{id}`: the sandbox's one client, holding the `scimctl` role on
    /// all divisions. Reading it needs `oauth:client:view` [PY OAuthApi.md], which the
    /// client's seeded role lacks: the pessimistic reading, so this answers 403 unless the
    /// role was given that permission. The 403 body's `code` is UNCONFIRMED.
    pub(super) fn oauth_client(
        &self,
        id: &str,
        method: &Method,
    ) -> Result<Response, PlatformError> {
        if method != Method::GET {
            return Err(PlatformError::not_found(format!(
                "OAuth client {id} not found"
            )));
        }
        let data = lock(&self.data);
        if !data.client_holds("oauth", "client", "view") {
            return Err(PlatformError::new(
                403,
                "missing.permissions",
                "You are missing the following permission(s): oauth:client:view",
            ));
        }
        if id != self.client_id {
            return Err(PlatformError::not_found(format!(
                "OAuth client {id} not found"
            )));
        }
        Ok(platform_json(
            StatusCode::OK,
            &json!({
                "id": id,
                "name": "scimctl sandbox",
                "authorizedGrantType": "CLIENT-CREDENTIALS",
                "roleDivisions": client_role_divisions(&data),
            }),
        ))
    }

    /// `GET /api/v2/tokens/me`: `TokenInfo` of the caller's token, which "requires no
    /// permissions" [PY TokensApi.md]: the organization, the (empty: client credentials)
    /// authorized scope and the OAuth client with its `roleDivisions` [PY TokenInfo.md,
    /// OrgOAuthClient.md]. The JSON key `OAuthClient` follows the swagger's spelling as the
    /// brief gives it; some SDK docs show `oAuthClient` (UNCONFIRMED which is on the wire).
    pub(super) fn tokens_me(&self, method: &Method) -> Result<Response, PlatformError> {
        if method != Method::GET {
            return Err(PlatformError::not_found(format!(
                "No resource found at {method} /api/v2/tokens/me"
            )));
        }
        let data = lock(&self.data);
        let org = json!({"id": SANDBOX_ORG, "name": "scimctl sandbox org"});
        let mut info = json!({
            "organization": org,
            "homeOrganization": org,
            "authorizedScope": [],
        });
        if !self.tokens_me_without_client {
            info["OAuthClient"] = json!({
                "id": self.client_id,
                "name": "scimctl sandbox",
                "roleDivisions": client_role_divisions(&data),
                "organization": org,
            });
        }
        Ok(platform_json(StatusCode::OK, &info))
    }
}

/// The id of the sandbox's organization.
const SANDBOX_ORG: &str = "00000000-0000-4000-8000-000000000001";

/// The OAuth client's grants: its role on all divisions.
fn client_role_divisions(data: &Data) -> Value {
    let role = data
        .role_named(CLIENT_ROLE)
        .map(|r| r.id.clone())
        .unwrap_or_default();
    json!([{"roleId": role, "divisionId": ALL_DIVISIONS}])
}

fn role_missing(id: &str) -> PlatformError {
    PlatformError::not_found(format!("Role {id} not found"))
}

/// `{roleId, divisionId}` checked against the known roles and divisions (`*` allowed).
fn grant_pair(data: &Data, item: &Value) -> Result<(String, String), PlatformError> {
    let role = item
        .get("roleId")
        .and_then(Value::as_str)
        .ok_or_else(|| PlatformError::bad_request("each grant needs a roleId"))?;
    let division = item
        .get("divisionId")
        .and_then(Value::as_str)
        .ok_or_else(|| PlatformError::bad_request("each grant needs a divisionId"))?;
    if data.role(role).is_none() {
        return Err(PlatformError::bad_request(format!(
            "no role with id {role}"
        )));
    }
    if division != ALL_DIVISIONS && data.division(division).is_none() {
        return Err(PlatformError::bad_request(format!(
            "no division with id {division}"
        )));
    }
    Ok((role.to_owned(), division.to_owned()))
}
