//! The Genesys flavour's HTTP face: routing (case-sensitive, lower-case paths only), the
//! order a request meets faults, auth and its handler, Platform error bodies, paging of
//! Platform lists, and the `inin-*` headers every answer carries.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::auth::{Denied, parse_form, percent_decode};
use super::super::error::ScimError;
use super::super::faults::{RateWindow, Verdict};
use super::super::filter::{AttrPath, CompareOp, Filter, Literal};
use super::super::http::{App, Outcome, error_response, set_header, unauthorized, with_body};
use super::super::patch::{OpKind, PatchOp};
use super::super::resource::{KNOWN_EXTENSIONS, ResourceKind};
use super::{Genesys, lock, uuid};

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Route {
    Token,
    ServiceProviderConfig,
    Schemas(Option<String>),
    ResourceTypes(Option<String>),
    Users,
    User(String),
    /// `/api/v2/scim/v2/groups` (filter required) or `/api/v2/scim/groups` (optional).
    Groups {
        filter_required: bool,
    },
    /// One SCIM group; `v1` for `/api/v2/scim/groups/{id}` (GET only).
    Group {
        id: String,
        v1: bool,
    },
    PlatformGroups,
    PlatformGroup(String),
    Individuals(String),
    Members(String),
    Roles,
    Role(String),
    Divisions,
    HomeDivision,
    Subject(String),
    Bulk {
        subject: String,
        add: bool,
    },
    /// `/api/v2/authorization/subjects/{subject}/divisions/{division}/roles/{role}`.
    SubjectGrant {
        subject: String,
        division: String,
        role: String,
    },
    OAuthClient(String),
    /// `/api/v2/users/search` (POST).
    UsersSearch,
    /// `/api/v2/users/{id}` (PATCH: restore a deleted user).
    PlatformUser(String),
    /// `/api/v2/tokens/me`: the token's own client and its role grants.
    TokensMe,
    /// `/api/v2/license/definitions`.
    LicenseDefinitions,
    /// `/api/v2/license/users`.
    LicenseUsers,
    /// `/api/v2/license/users/{id}`.
    LicenseUser(String),
    /// `/api/v2/license/organization` (POST: the batch assignment).
    LicenseOrganization,
    Unknown,
}

impl Route {
    /// Parses a path; segments are compared exactly (Genesys's lower-case spelling).
    pub(super) fn parse(path: &str) -> Route {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(&s.replace('+', "%2B")))
            .collect();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let owned = |x: &str| x.to_owned();
        match s.as_slice() {
            ["oauth", "token"] => Route::Token,
            ["api", "v2", "scim", "v2", rest @ ..] => Self::scim(rest),
            ["api", "v2", "scim", "groups"] => Route::Groups {
                filter_required: false,
            },
            ["api", "v2", "scim", "groups", id] => Route::Group {
                id: owned(id),
                v1: true,
            },
            ["api", "v2", "groups"] => Route::PlatformGroups,
            ["api", "v2", "groups", id] => Route::PlatformGroup(owned(id)),
            ["api", "v2", "groups", id, "individuals"] => Route::Individuals(owned(id)),
            ["api", "v2", "groups", id, "members"] => Route::Members(owned(id)),
            ["api", "v2", "authorization", "roles"] => Route::Roles,
            ["api", "v2", "authorization", "roles", id] => Route::Role(owned(id)),
            ["api", "v2", "authorization", "divisions"] => Route::Divisions,
            ["api", "v2", "authorization", "divisions", "home"] => Route::HomeDivision,
            ["api", "v2", "authorization", "subjects", id] => Route::Subject(owned(id)),
            [
                "api",
                "v2",
                "authorization",
                "subjects",
                id,
                op @ ("bulkadd" | "bulkremove"),
            ] => Route::Bulk {
                subject: owned(id),
                add: *op == "bulkadd",
            },
            [
                "api",
                "v2",
                "authorization",
                "subjects",
                id,
                "divisions",
                division,
                "roles",
                role,
            ] => Route::SubjectGrant {
                subject: owned(id),
                division: owned(division),
                role: owned(role),
            },
            ["api", "v2", "oauth", "clients", id] => Route::OAuthClient(owned(id)),
            ["api", "v2", "tokens", "me"] => Route::TokensMe,
            ["api", "v2", "users", "search"] => Route::UsersSearch,
            ["api", "v2", "license", "definitions"] => Route::LicenseDefinitions,
            ["api", "v2", "license", "users"] => Route::LicenseUsers,
            ["api", "v2", "license", "users", id] => Route::LicenseUser(owned(id)),
            ["api", "v2", "license", "organization"] => Route::LicenseOrganization,
            ["api", "v2", "users", id] => Route::PlatformUser(owned(id)),
            _ => Route::Unknown,
        }
    }

    fn scim(rest: &[&str]) -> Route {
        let owned = |x: &str| x.to_owned();
        match rest {
            ["users"] => Route::Users,
            ["users", id] => Route::User(owned(id)),
            ["groups"] => Route::Groups {
                filter_required: true,
            },
            ["groups", id] => Route::Group {
                id: owned(id),
                v1: false,
            },
            ["serviceproviderconfig"] => Route::ServiceProviderConfig,
            ["schemas"] => Route::Schemas(None),
            ["schemas", urn] => Route::Schemas(Some(owned(urn))),
            ["resourcetypes"] => Route::ResourceTypes(None),
            ["resourcetypes", name] => Route::ResourceTypes(Some(owned(name))),
            _ => Route::Unknown,
        }
    }

    fn is_discovery(&self) -> bool {
        matches!(
            self,
            Route::ServiceProviderConfig | Route::Schemas(_) | Route::ResourceTypes(_)
        )
    }

    /// SCIM routes answer errors with SCIM bodies; the others with Platform bodies.
    fn is_scim(&self) -> bool {
        self.is_discovery()
            || matches!(
                self,
                Route::Users | Route::User(_) | Route::Groups { .. } | Route::Group { .. }
            )
    }

    fn is_write(&self, method: &Method) -> bool {
        match self {
            Route::Users
            | Route::PlatformGroups
            | Route::Roles
            | Route::Members(_)
            | Route::Bulk { .. }
            | Route::LicenseOrganization => method == Method::POST,
            Route::User(_) | Route::Group { .. } | Route::PlatformGroup(_) | Route::Role(_) => {
                [Method::PUT, Method::PATCH, Method::DELETE].contains(method)
            }
            Route::SubjectGrant { .. } => method == Method::DELETE,
            Route::PlatformUser(_) => method == Method::PATCH,
            _ => false,
        }
    }
}

/// A Platform API error (`ErrorBody`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PlatformError {
    pub(super) status: u16,
    pub(super) code: &'static str,
    pub(super) message: String,
    /// Seconds for `Retry-After` (429 only).
    pub(super) retry_after: Option<u64>,
}

impl PlatformError {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        PlatformError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not.found", message)
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad.request", message)
    }

    pub(super) fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(400, "invalid.value", message)
    }

    pub(super) fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "general.conflict", message)
    }

    /// The normalized 429 (dev forum, 2021).
    pub(super) fn too_many(retry_after: u64) -> Self {
        PlatformError {
            status: 429,
            code: "too.many.requests.retry.after",
            message: format!(
                "Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
            ),
            retry_after: Some(retry_after),
        }
    }

    pub(super) fn response(&self) -> Response {
        let body = json!({
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "contextId": uuid(),
            "details": [],
            "errors": [],
        });
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = with_body(
            status,
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        );
        if let Some(seconds) = self.retry_after {
            set_header(&mut response, RETRY_AFTER, &seconds.to_string());
        }
        response
    }
}

impl From<ScimError> for PlatformError {
    fn from(error: ScimError) -> Self {
        let code = match (error.status, error.scim_type) {
            (404, _) => "not.found",
            (409, _) => "general.conflict",
            (400, Some("invalidValue")) => "invalid.value",
            (400, _) => "bad.request",
            (415, _) => "unsupported.media.type",
            (413, _) => "request.entity.too.large",
            _ => "internal.server.error",
        };
        PlatformError::new(error.status, code, error.detail)
    }
}

/// Why a SCIM request was refused: a SCIM error, or (for gateway-level refusals such as the
/// 25 rule and removed operations) a Platform error.
#[derive(Debug)]
pub(super) enum Refusal {
    Scim(ScimError),
    Platform(PlatformError),
}

impl From<ScimError> for Refusal {
    fn from(error: ScimError) -> Self {
        Refusal::Scim(error)
    }
}

impl From<PlatformError> for Refusal {
    fn from(error: PlatformError) -> Self {
        Refusal::Platform(error)
    }
}

impl Refusal {
    fn response(&self) -> Response {
        match self {
            Refusal::Scim(e) => error_response(e),
            Refusal::Platform(e) => e.response(),
        }
    }
}

/// The SCIM `If-Match` mismatch, as Genesys answers it: 400 `invalidVers`, never 412.
pub(super) fn invalid_version(current: u64) -> ScimError {
    ScimError::new(
        400,
        Some("invalidVers"),
        format!("If-Match does not match the current version \"{current}\""),
    )
}

/// Checks a SCIM `If-Match` header against `version`, the pessimistic way: the SDK docs
/// describe the value as "the ETag of a resource in double quotes" (example `"42"`) while
/// `meta.version` comes back bare (`42`), so only the exact quoted form matches. A bare
/// version, a weak tag (`W/"42"`), a list or `*` is answered 400 `invalidVers`, which is
/// what a client that copies `meta.version` into the header would meet on a strict server.
pub(super) fn check_if_match(if_match: Option<&str>, version: u64) -> Result<(), ScimError> {
    match if_match {
        Some(tag) if tag.trim() != format!("\"{version}\"") => Err(invalid_version(version)),
        _ => Ok(()),
    }
}

/// The sub-attributes of an email or phone number (`ScimEmail`, `ScimPhoneNumber`: value,
/// type, primary; a phone extension lives in the value as `tel:+1…;ext=…`).
const CONTACT_SUBS: &[&str] = &["value", "type", "primary"];

/// Refuses every PATCH path but the forms Genesys documents (docs/genesys.md §6), the
/// pessimistic reading of "unconfirmed": a plain attribute name, an extension attribute
/// under its full URN (users), an email or phone number picked out by `type` with a
/// sub-attribute for add and replace (`emails[type eq "work"].value`) and whole for remove
/// (`emails[type eq "work"]`), a role removed by name (`roles[value eq "X"]`), and a group
/// member removed by id (`members[value eq "id"]`, what Okta and Entra send). Anything else
/// (a whole-value replace through a filter, a filter on another sub-attribute, a filter on
/// an extension attribute, a sub-attribute path) is 400 `invalidPath`.
pub(super) fn check_documented_paths(ops: &[PatchOp], kind: ResourceKind) -> Result<(), ScimError> {
    for op in ops {
        let Some(path) = op.path.as_deref() else {
            continue;
        };
        let refuse = |why: &str| {
            Err(ScimError::invalid_path(format!(
                "path `{path}` is not a form Genesys Cloud documents: {why}"
            )))
        };
        let Some(open) = path.find('[') else {
            let Some(parsed) = AttrPath::parse(path) else {
                return refuse("not an attribute path");
            };
            if parsed.sub.is_some() {
                return refuse("sub-attribute paths are documented only after a `type` filter");
            }
            let extension = parsed.urn.as_deref().is_some_and(|u| {
                kind == ResourceKind::User
                    && KNOWN_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(u))
            });
            if parsed.urn.is_some() && !extension {
                return refuse("only extension attributes carry a URN prefix");
            }
            continue;
        };
        let Some(close) = path.rfind(']').filter(|&c| c > open) else {
            return refuse("an unclosed value filter");
        };
        let attr = &path[..open];
        let sub = match &path[close + 1..] {
            "" => None,
            rest => match rest.strip_prefix('.') {
                Some(sub) => Some(sub),
                None => return refuse("text after the value filter"),
            },
        };
        let (key, subs, whole_remove): (&str, &[&str], bool) = match (kind, attr) {
            (ResourceKind::User, "emails" | "phoneNumbers") => ("type", CONTACT_SUBS, true),
            (ResourceKind::User, "roles") | (ResourceKind::Group, "members") => {
                ("value", &[], true)
            }
            _ => {
                return refuse(
                    "value filters are documented only on emails, phoneNumbers, roles and members",
                );
            }
        };
        let on_key = match Filter::parse(&path[open + 1..close]) {
            Ok(Filter::Compare {
                path: p,
                op: CompareOp::Eq,
                value: Literal::Str { .. },
            }) => p.urn.is_none() && p.sub.is_none() && p.attr == key,
            _ => false,
        };
        if !on_key {
            return refuse(&format!("{attr} is picked out by `{key} eq \"…\"` only"));
        }
        match (op.kind, sub) {
            (OpKind::Remove, None) if whole_remove => {}
            (OpKind::Add | OpKind::Replace, Some(sub)) if subs.contains(&sub) => {}
            (OpKind::Remove, _) => return refuse("a remove names the whole value"),
            (_, None) if !subs.is_empty() => {
                return refuse(&format!(
                    "add and replace write a sub-attribute ({attr}[…].value), not the whole value"
                ));
            }
            _ => return refuse(&format!("{attr} values are only removed through a filter")),
        }
    }
    Ok(())
}

/// A JSON answer from the Platform API.
pub(super) fn platform_json(status: StatusCode, body: &Value) -> Response {
    with_body(
        status,
        "application/json",
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

/// An empty answer (204, 202).
pub(super) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// A query string's pairs.
pub(super) fn query_pairs(request: &Request) -> Vec<(String, String)> {
    parse_query(request.uri().query())
}

/// The pairs of a query string (none when there is none).
pub(super) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query.map(|q| parse_form(q.as_bytes())).unwrap_or_default()
}

/// One query parameter, name matched case-insensitively.
pub(super) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A Platform list page of `items`: `pageSize` (default 25, at most 500), `pageNumber`
/// (1-based).
pub(super) fn paged(pairs: &[(String, String)], items: Vec<Value>) -> Result<Value, PlatformError> {
    let number = |name: &str, default: usize| -> Result<usize, PlatformError> {
        match param(pairs, name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    PlatformError::bad_request(format!("{name} must be a positive integer"))
                }),
        }
    };
    let size = number("pageSize", 25)?;
    if size > 500 {
        return Err(PlatformError::bad_request("pageSize must be at most 500"));
    }
    let page = number("pageNumber", 1)?;
    let total = items.len();
    let entities: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    Ok(json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": page,
        "total": total,
        "pageCount": total.div_ceil(size),
    }))
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> String {
    super::super::http::header(headers, &axum::http::header::AUTHORIZATION)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .unwrap_or_default()
}

fn platform_unauthorized(denied: Denied) -> Response {
    let message = match denied {
        Denied::Missing => "No authentication bearer token specified in authorization header.",
        Denied::Invalid => "Invalid login credentials.",
    };
    PlatformError::new(401, "bad.credentials", message).response()
}

impl Genesys {
    /// Handles one request to the Genesys flavour (the `/oauth/token` endpoint is the
    /// standard one; every other answer carries the `inin-*` headers).
    pub(crate) async fn dispatch(&self, app: &App, request: Request) -> Outcome {
        let route = Route::parse(request.uri().path());
        if route == Route::Token {
            return Outcome::Respond(app.token(request).await);
        }
        let now = Instant::now();
        let token = bearer(request.headers());
        let (mut verdict, mut window) = if route.is_discovery() || route == Route::Unknown {
            (Verdict::Pass, None)
        } else {
            app.faults.decide(now, route.is_write(request.method()))
        };
        // Without a rate-limit fault, the org's own per-token window applies, and is
        // enforced: a client that ignores `inin-ratelimit-allowed` meets 429s.
        if window.is_none() {
            let own = self.token_window(&token, now);
            if own.count > own.allowed && verdict == Verdict::Pass {
                verdict = Verdict::RateLimited {
                    retry_after: own.reset,
                };
            }
            window = Some(own);
        }
        let mut response = match verdict {
            Verdict::Drop => {
                app.stats.fault_drop();
                return Outcome::Drop;
            }
            Verdict::RateLimited { retry_after } => {
                app.stats.fault_rate_limited();
                PlatformError::too_many(retry_after).response()
            }
            Verdict::Error(status) => {
                app.stats.fault_error();
                let message = "injected fault (sandbox error_rate)";
                if route.is_scim() {
                    error_response(&ScimError::new(status, None, message))
                } else {
                    PlatformError::new(status, "internal.server.error", message).response()
                }
            }
            Verdict::Pass | Verdict::DropAfter => {
                let response = if route == Route::Unknown {
                    PlatformError::not_found(format!(
                        "No resource found at {} {}",
                        request.method(),
                        request.uri().path()
                    ))
                    .response()
                } else {
                    match app.auth.check(request.headers(), now) {
                        Err(denied) if route.is_scim() => unauthorized(denied),
                        Err(denied) => platform_unauthorized(denied),
                        Ok(()) => self.serve(route, request).await,
                    }
                };
                if verdict == Verdict::DropAfter && response.status().is_success() {
                    app.stats.fault_drop_after();
                    return Outcome::Drop;
                }
                response
            }
        };
        Self::add_headers(&mut response, window);
        Outcome::Respond(response)
    }

    /// Runs an authenticated request.
    async fn serve(&self, route: Route, request: Request) -> Response {
        let method = request.method().clone();
        let scim = match route {
            Route::ServiceProviderConfig | Route::Schemas(_) | Route::ResourceTypes(_) => {
                Ok(self.discovery.answer(&route, &method))
            }
            Route::Users | Route::User(_) => self.users(route, request).await,
            Route::Groups { .. } | Route::Group { .. } => self.scim_groups(route, request).await,
            _ => {
                return self
                    .platform(route, request)
                    .await
                    .unwrap_or_else(|e| e.response());
            }
        };
        scim.unwrap_or_else(|refusal| refusal.response())
    }

    /// The Platform API endpoints.
    async fn platform(&self, route: Route, request: Request) -> Result<Response, PlatformError> {
        match route {
            Route::PlatformGroups | Route::PlatformGroup(_) => {
                self.platform_groups(route, request).await
            }
            Route::Individuals(_) | Route::Members(_) => self.group_members(route, request).await,
            Route::Roles | Route::Role(_) => self.roles(route, request).await,
            Route::Divisions | Route::HomeDivision => self.divisions(&route, &request),
            Route::Subject(_) | Route::Bulk { .. } | Route::SubjectGrant { .. } => {
                self.subjects(route, request).await
            }
            Route::OAuthClient(id) => self.oauth_client(&id, request.method()),
            Route::TokensMe => self.tokens_me(request.method()),
            Route::UsersSearch | Route::PlatformUser(_) => {
                self.platform_users(route, request).await
            }
            Route::LicenseDefinitions
            | Route::LicenseUsers
            | Route::LicenseUser(_)
            | Route::LicenseOrganization => self.licenses(route, request).await,
            _ => Err(not_here(&request)),
        }
    }

    /// One more request in `token`'s window of a minute at the org's allowance
    /// (`GenesysOptions::requests_per_minute`, 300 by default).
    fn token_window(&self, token: &str, now: Instant) -> RateWindow {
        let mut windows = lock(&self.windows);
        let minute = std::time::Duration::from_secs(60);
        let slot = windows.entry(token.to_owned()).or_insert((now, 0));
        if now >= slot.0 + minute {
            *slot = (now, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        let left = (slot.0 + minute).saturating_duration_since(now);
        RateWindow {
            count: slot.1,
            allowed: self.requests_per_minute,
            reset: (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1),
        }
    }

    /// `inin-ratelimit-*` from the window that counted the request (the rate-limit fault's,
    /// or the token's own); a fresh `ININ-Correlation-Id`.
    fn add_headers(response: &mut Response, window: Option<RateWindow>) {
        if let Some(window) = window {
            let mut put = |name: &'static str, value: String| {
                set_header(response, HeaderName::from_static(name), &value);
            };
            put("inin-ratelimit-allowed", window.allowed.to_string());
            put("inin-ratelimit-count", window.count.to_string());
            put("inin-ratelimit-reset", window.reset.to_string());
        }
        set_header(
            response,
            HeaderName::from_static("inin-correlation-id"),
            &uuid(),
        );
    }
}

/// The 404 of a method a known path does not offer.
pub(super) fn not_here(request: &Request) -> PlatformError {
    PlatformError::not_found(format!(
        "No resource found at {} {}",
        request.method(),
        request.uri().path()
    ))
}
