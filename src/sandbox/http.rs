//! The HTTP face of the sandbox: routing (`/scim/v2/...`, `/v2/...` or bare, resource segments
//! case-insensitive, `/oauth/token`), the order in which a request meets latency, faults, auth
//! and the store, request parsing (query parameters, content types, JSON bodies) and response
//! shapes (RFC 7644 list and error bodies, `ETag`, `Location`, `Retry-After`).
//!
//! [`App::handle`] is transport-independent: it takes an `http::Request` and returns an
//! [`Outcome`], so unit tests drive it directly (no sockets, pausable time) and the axum glue in
//! `mod.rs` turns [`Outcome::Drop`] into a severed connection.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION, PRAGMA,
    RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth::{Authenticator, Denied, TokenRefusal, parse_form, percent_decode};
use super::discovery::{Discovery, LIST_URN, list_of};
use super::error::ScimError;
use super::faults::{FaultInjector, RateWindow, Verdict};
use super::filter::{AttrPath, Filter};
use super::genesys::Genesys;
use super::patch;
use super::resource::{Projection, ResourceKind, etag, etag_matches};
use super::stats::Stats;
use super::store::{Entry, ListPage, ListQuery, MAX_RESULTS, Store};
use super::types::Types;
use super::{Faults, Quirk, Quirks, SandboxAuth};

/// The media type of every SCIM response (RFC 7644 §3.1).
const SCIM_JSON: &str = "application/scim+json";
/// `count` when the request gives none.
const DEFAULT_COUNT: usize = 100;
/// Largest request body read (Genesys allows 512,000 bytes; this leaves room for big
/// membership changes).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What to do with a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this response.
    Respond(Response),
    /// Close the connection without a response (injected fault).
    Drop,
}

/// Everything a request can reach; one per sandbox.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) store: Arc<Store>,
    pub(crate) stats: Stats,
    pub(crate) auth: Authenticator,
    pub(crate) faults: FaultInjector,
    latency: Duration,
    discovery: Discovery,
    /// The Genesys Cloud flavour, which then routes every request.
    pub(crate) genesys: Option<Genesys>,
    /// Where each answered request is logged, if anywhere.
    pub(crate) request_log: Option<RequestLog>,
    /// Whose resource `GET /Me` answers ([`super::SandboxConfig::me`]).
    pub(crate) me: Option<String>,
    /// Behaviours of other servers imitated ([`super::SandboxConfig::quirks`]).
    pub(crate) quirks: Quirks,
    /// Whether a PATCH may set `password` ([`super::SandboxConfig::change_password`]).
    change_password: bool,
    /// What `/Bulk` takes; `None`: not supported ([`super::SandboxConfig::bulk`]).
    pub(crate) bulk: Option<super::BulkLimits>,
    /// With a state file: the store generation the journal has made durable. A request is
    /// answered only once every change made before its answer is durable.
    pub(crate) durable: Option<tokio::sync::watch::Receiver<u64>>,
}

/// The body of a logged request as its shape: the JSON with every value replaced by its
/// type (`"string"`, `"number"`, `"bool"`, `null`), except PATCH's `op` and `path`, which say
/// what a request does and hold no secret. A password in a body is never written to the log;
/// the check that a request carries its model's required fields reads the shape. Returns
/// the request rebuilt with its body; `None` for a body that is empty or not JSON.
async fn logged_body(request: Request) -> (Request, Option<Value>) {
    fn shape(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let kept = matches!(k.as_str(), "op" | "path") && v.is_string();
                        (k.clone(), if kept { v.clone() } else { shape(v) })
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
            Value::String(_) => Value::from("string"),
            Value::Number(_) => Value::from("number"),
            Value::Bool(_) => Value::from("bool"),
            Value::Null => Value::Null,
        }
    }
    let (parts, body) = request.into_parts();
    // Read whole (the handlers apply their own limits afterwards): the log is a test aid.
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return (Request::from_parts(parts, Body::empty()), None);
    };
    let shaped = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .map(|v| shape(&v));
    (Request::from_parts(parts, Body::from(bytes)), shaped)
}

/// The request log: one JSON line per answered request, written and flushed as it happens.
#[derive(Debug)]
pub(crate) struct RequestLog(std::sync::Mutex<std::fs::File>);

impl RequestLog {
    /// Opens `path` for appending (created if missing).
    pub(crate) fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(RequestLog(std::sync::Mutex::new(file)))
    }

    /// Logs one answered request: its method, path, query string (when it has one), status
    /// and the shape of its body.
    fn write(&self, method: &Method, uri: &axum::http::Uri, status: u16, body: Option<Value>) {
        use std::io::Write as _;
        let mut entry = json!({"method": method.as_str(), "path": uri.path(), "status": status});
        if let Some(query) = uri.query() {
            entry["query"] = Value::from(logged_query(query));
        }
        if let Some(body) = body {
            entry["body"] = body;
        }
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = file.write_all(&line).and_then(|()| file.flush()) {
            tracing::warn!(%error, "sandbox: request log not written");
        }
    }
}

/// A query string as the request log keeps it: the value of a parameter whose name suggests a
/// credential (`access_token`, `client_secret`, a password or key) is replaced, so that a
/// careless client's secret never reaches the log.
fn logged_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            let lower = name.to_ascii_lowercase();
            let secret = ["token", "secret", "password", "key", "auth"]
                .iter()
                .any(|s| lower.contains(s));
            if secret && pair.contains('=') {
                format!("{name}=(redacted)")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Token,
    ServiceProviderConfig,
    ResourceTypes(Option<String>),
    Schemas(Option<String>),
    Collection(ResourceKind),
    Search(ResourceKind),
    Resource(ResourceKind, String),
    NotImplemented(&'static str),
    /// `/Me`: the authenticated subject's own resource.
    Me,
    /// `/Bulk` (RFC 7644 §3.7).
    Bulk,
    Unknown,
}

pub(crate) fn route(path: &str) -> Route {
    // `+` is a literal plus in a path, unlike in a query string.
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(&s.replace('+', "%2B")))
        .collect();
    let is = |s: &String, want: &str| s.eq_ignore_ascii_case(want);
    if let [a, b] = segments.as_slice()
        && is(a, "oauth")
        && is(b, "token")
    {
        return Route::Token;
    }
    let mut rest = segments.as_slice();
    if rest.first().is_some_and(|s| is(s, "scim")) {
        rest = &rest[1..];
    }
    if rest.first().is_some_and(|s| is(s, "v2")) {
        rest = &rest[1..];
    }
    let Some((first, tail)) = rest.split_first() else {
        return Route::Unknown;
    };
    let kind = if is(first, "users") {
        Some(ResourceKind::User)
    } else if is(first, "groups") {
        Some(ResourceKind::Group)
    } else {
        None
    };
    match (kind, tail) {
        (Some(kind), []) => Route::Collection(kind),
        (Some(kind), [s]) if s == ".search" => Route::Search(kind),
        (Some(kind), [id]) => Route::Resource(kind, id.clone()),
        (Some(_), _) => Route::Unknown,
        (None, tail) => match (first.to_ascii_lowercase().as_str(), tail) {
            ("serviceproviderconfig" | "serviceproviderconfigs", []) => {
                Route::ServiceProviderConfig
            }
            ("resourcetypes", []) => Route::ResourceTypes(None),
            ("resourcetypes", [id]) => Route::ResourceTypes(Some(id.clone())),
            ("schemas", []) => Route::Schemas(None),
            ("schemas", [urn]) => Route::Schemas(Some(urn.clone())),
            ("bulk", []) => Route::Bulk,
            // RFC 7644 §3.4.3: a search of every resource type at once, which the sandbox
            // does not offer; 501 says so (a 404 would say there is no such endpoint).
            (".search", []) => Route::NotImplemented("Searching every resource type (/.search)"),
            ("me", []) => Route::Me,
            ("me", _) => Route::NotImplemented("/Me sub-paths"),
            _ => Route::Unknown,
        },
    }
}

/// Whether a request to `route` with `method` changes the store (`.search` does not).
fn is_write(route: &Route, method: &Method) -> bool {
    match route {
        Route::Collection(_) | Route::Bulk => method == Method::POST,
        Route::Resource(..) => [Method::PUT, Method::PATCH, Method::DELETE].contains(method),
        _ => false,
    }
}

pub(crate) fn set_header(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub(crate) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    with_body(
        status,
        SCIM_JSON,
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

/// An RFC 7644 §3.12 error response.
pub(crate) fn error_response(error: &ScimError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    scim_json(status, &error.to_json())
}

fn method_not_allowed(allow: &str) -> Response {
    let mut response = error_response(&ScimError::new(
        405,
        None,
        format!("method not allowed; use {allow}"),
    ));
    set_header(&mut response, ALLOW, allow);
    response
}

pub(crate) fn unauthorized(denied: Denied) -> Response {
    let (detail, challenge) = match denied {
        Denied::Missing => ("authentication required", "Bearer realm=\"SCIM\""),
        Denied::Invalid => ("invalid or expired token", "Bearer error=\"invalid_token\""),
    };
    let mut response = error_response(&ScimError::new(401, None, detail));
    set_header(&mut response, WWW_AUTHENTICATE, challenge);
    response
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads a JSON request body; SCIM bodies must say `application/scim+json` or
/// `application/json` (the peer answers 415 otherwise, so the sandbox does too).
pub(crate) async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ScimError> {
    check_media(headers)?;
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| {
        ScimError::new(
            413,
            None,
            format!("request body unreadable or over {MAX_BODY} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("invalid JSON: {e}")))
}

/// 415 unless the body is declared SCIM JSON or JSON.
pub(crate) fn check_media(headers: &HeaderMap) -> Result<(), ScimError> {
    let media = header(headers, &CONTENT_TYPE).map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if !matches!(
        media.as_deref(),
        Some("application/scim+json" | "application/json")
    ) {
        return Err(ScimError::new(
            415,
            None,
            "Content-Type must be application/scim+json or application/json",
        ));
    }
    Ok(())
}

/// List parameters, from a query string or a `.search` body.
#[derive(Debug, Default)]
struct ListParams {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
}

fn number(name: &str, text: &str) -> Result<i64, ScimError> {
    text.trim()
        .parse()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
}

impl ListParams {
    fn from_query(pairs: &[(String, String)]) -> Result<Self, ScimError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Ok(ListParams {
            filter: get("filter"),
            start_index: get("startIndex")
                .map(|v| number("startIndex", &v))
                .transpose()?,
            count: get("count").map(|v| number("count", &v)).transpose()?,
            attributes: get("attributes"),
            excluded: get("excludedAttributes"),
            sort_by: get("sortBy"),
            sort_order: get("sortOrder"),
        })
    }

    /// RFC 7644 §3.4.3 `SearchRequest`.
    fn from_search(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax(
                "a search body must be a JSON object",
            ));
        };
        let get = |name: &str| super::filter::get_ci(map, name).filter(|v| !v.is_null());
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => Ok(Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
                Some(Value::String(s)) => number(name, s).map(Some),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer"
                ))),
            }
        };
        Ok(ListParams {
            filter: text("filter")?,
            start_index: int("startIndex")?,
            count: int("count")?,
            attributes: text("attributes")?,
            excluded: text("excludedAttributes")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
        })
    }

    /// RFC 7644 §3.4.2.4: `startIndex` below 1 means 1; `count` below 0 means 0 and is capped at
    /// `maxResults`.
    fn into_query(self) -> Result<(ListQuery, Option<Projection>), ScimError> {
        let filter = self
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(Filter::parse)
            .transpose()?;
        let start_index = usize::try_from(self.start_index.unwrap_or(1).max(1)).unwrap_or(1);
        let count = match self.count {
            None => DEFAULT_COUNT,
            Some(c) => usize::try_from(c.max(0))
                .unwrap_or(MAX_RESULTS)
                .min(MAX_RESULTS),
        };
        let sort_by = match self
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(text) => Some(
                AttrPath::parse(text)
                    .ok_or_else(|| ScimError::invalid_value(format!("invalid sortBy `{text}`")))?,
            ),
        };
        let descending = match self.sort_order.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(order) if order.eq_ignore_ascii_case("ascending") => false,
            Some(order) if order.eq_ignore_ascii_case("descending") => true,
            Some(order) => {
                return Err(ScimError::invalid_value(format!(
                    "invalid sortOrder `{order}`"
                )));
            }
        };
        let projection =
            Projection::from_params(self.attributes.as_deref(), self.excluded.as_deref())?;
        Ok((
            ListQuery {
                filter,
                start_index,
                count,
                sort_by,
                descending,
            },
            projection,
        ))
    }
}

/// Removes `type` from an email value or a list of them.
fn untype(emails: &mut Value) {
    match emails {
        Value::Array(values) => values.iter_mut().for_each(untype),
        Value::Object(value) => {
            value.retain(|k, _| !k.eq_ignore_ascii_case("type"));
        }
        _ => {}
    }
}

fn list_response(page: &ListPage, kind: ResourceKind, projection: Option<&Projection>) -> Response {
    let size: usize = page.items.iter().map(|e| e.json.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 192);
    out.extend_from_slice(
        format!(
            concat!(
                "{{\"schemas\":[\"{}\"],\"totalResults\":{},\"startIndex\":{},",
                "\"itemsPerPage\":{},\"Resources\":["
            ),
            LIST_URN,
            page.total,
            page.start_index,
            page.items.len()
        )
        .as_bytes(),
    );
    for (i, entry) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match projection {
            None => out.extend_from_slice(&entry.json),
            Some(p) => {
                let _ = serde_json::to_writer(&mut out, &p.apply(&entry.doc(), kind));
            }
        }
    }
    out.extend_from_slice(b"]}");
    with_body(StatusCode::OK, SCIM_JSON, out)
}

pub(crate) fn resource_response(
    status: StatusCode,
    kind: ResourceKind,
    entry: &Entry,
    projection: Option<&Projection>,
) -> Response {
    let body = match projection {
        None => Body::from(entry.json.clone()),
        Some(p) => Body::from(serde_json::to_vec(&p.apply(&entry.doc(), kind)).unwrap_or_default()),
    };
    let mut response = with_body(status, SCIM_JSON, body);
    set_header(&mut response, ETAG, &etag(entry.version));
    response
}

fn add_rate_headers(response: &mut Response, window: RateWindow) {
    // Genesys Cloud's names, so a client's reset-header handling can be exercised locally.
    set_header(
        response,
        HeaderName::from_static("inin-ratelimit-count"),
        &window.count.to_string(),
    );
    set_header(
        response,
        HeaderName::from_static("inin-ratelimit-allowed"),
        &window.allowed.to_string(),
    );
    set_header(
        response,
        HeaderName::from_static("inin-ratelimit-reset"),
        &window.reset.to_string(),
    );
}

impl App {
    pub(crate) fn new(
        store: Arc<Store>,
        auth: SandboxAuth,
        faults: Faults,
        base_url: &str,
        quirks: &Quirks,
    ) -> Self {
        let latency = faults.latency;
        let auth = Authenticator::new(auth);
        let discovery = Discovery::new(base_url, auth.required(), quirks);
        store.set_types(Types::new(&discovery));
        if quirks.has(Quirk::IntegerIds) {
            store.use_integer_ids();
        }
        App {
            store,
            stats: Stats::default(),
            auth,
            faults: FaultInjector::new(faults),
            latency,
            discovery,
            genesys: None,
            request_log: None,
            me: None,
            quirks: quirks.clone(),
            change_password: true,
            bulk: None,
            durable: None,
        }
    }

    /// Sets what `/ServiceProviderConfig` says of `changePassword`, and holds to it: when
    /// unsupported, a PATCH that sets `password` is refused whole (a client that ignores the
    /// announcement finds out at once, rather than the sandbox accepting what it says it
    /// does not do). A create may still set the initial password.
    /// The `/ServiceProviderConfig` document, to adjust.
    pub(crate) fn spc_mut(&mut self) -> &mut Value {
        &mut self.discovery.service_provider_config
    }

    pub(crate) fn set_change_password(&mut self, supported: bool) {
        self.discovery.service_provider_config["changePassword"]["supported"] =
            Value::Bool(supported);
        self.change_password = supported;
    }

    /// Refuses a PATCH of a user that sets `password` (by path, or inside a path-less
    /// value) when password changes are not supported.
    fn refuse_password_change(&self, kind: ResourceKind, body: &Value) -> Result<(), ScimError> {
        if self.change_password || kind != ResourceKind::User {
            return Ok(());
        }
        let ops = body.get("Operations").and_then(Value::as_array);
        let sets_password = ops.into_iter().flatten().any(|op| {
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            path.eq_ignore_ascii_case("password")
                || (path.is_empty()
                    && op
                        .get("value")
                        .and_then(Value::as_object)
                        .is_some_and(|v| v.keys().any(|k| k.eq_ignore_ascii_case("password"))))
        });
        if sets_password {
            return Err(ScimError::mutability(
                "this server does not let clients change passwords \
                 (ServiceProviderConfig changePassword.supported is false)",
            ));
        }
        Ok(())
    }

    /// Handles one request: latency first, then routing; faults and auth apply to the SCIM
    /// resource endpoints only (discovery and `/oauth/token` stay clean).
    pub(crate) async fn handle(&self, request: Request) -> Outcome {
        self.stats.request(request.method());
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let logged = self
            .request_log
            .as_ref()
            .map(|_| (request.method().clone(), request.uri().clone()));
        let (request, shape) = if self.request_log.is_some() {
            logged_body(request).await
        } else {
            (request, None)
        };
        let outcome = match &self.genesys {
            Some(genesys) => genesys.dispatch(self, request).await,
            None => self.dispatch(request).await,
        };
        if let Some(durable) = &self.durable {
            super::journal::wait_durable(durable, &self.store).await;
        }
        if let Outcome::Respond(response) = &outcome {
            self.stats.status(response.status().as_u16());
            if let (Some(log), Some((method, uri))) = (&self.request_log, &logged) {
                log.write(method, uri, response.status().as_u16(), shape);
            }
        }
        outcome
    }

    async fn dispatch(&self, request: Request) -> Outcome {
        let route = route(request.uri().path());
        let response = match route {
            Route::Token => self.token(request).await,
            Route::ServiceProviderConfig | Route::ResourceTypes(_) | Route::Schemas(_) => {
                self.discovery(&route, request.method())
            }
            Route::NotImplemented(what) => error_response(&ScimError::new(
                501,
                None,
                format!("{what} is not supported by the sandbox"),
            )),
            Route::Unknown => error_response(&ScimError::not_found(format!(
                "no SCIM endpoint at {}",
                request.uri().path()
            ))),
            Route::Collection(_)
            | Route::Search(_)
            | Route::Resource(..)
            | Route::Me
            | Route::Bulk => {
                return self.scim(route, request).await;
            }
        };
        Outcome::Respond(response)
    }

    fn discovery(&self, route: &Route, method: &Method) -> Response {
        if method != Method::GET {
            return method_not_allowed("GET");
        }
        let d = &self.discovery;
        let found = match route {
            Route::ServiceProviderConfig => Some(d.service_provider_config.clone()),
            Route::ResourceTypes(None) => Some(list_of(&d.resource_types)),
            Route::ResourceTypes(Some(id)) => d.resource_type(id).cloned(),
            Route::Schemas(None) => Some(list_of(&d.schemas)),
            Route::Schemas(Some(urn)) => d.schema(urn).cloned(),
            _ => None,
        };
        match found {
            Some(body) => scim_json(StatusCode::OK, &body),
            None => error_response(&ScimError::not_found("no such resource type or schema")),
        }
    }

    pub(crate) async fn token(&self, request: Request) -> Response {
        if !self.auth.oauth() {
            return error_response(&ScimError::not_found(
                "the sandbox is not configured for OAuth",
            ));
        }
        if request.method() != Method::POST {
            return method_not_allowed("POST");
        }
        if let Some(retry_after) = self.faults.token_verdict(Instant::now()) {
            self.stats.fault_rate_limited();
            let mut response = with_body(
                StatusCode::TOO_MANY_REQUESTS,
                "application/json",
                format!(
                    r#"{{"message":"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds","code":"too.many.requests.retry.after","status":429}}"#
                ),
            );
            set_header(&mut response, RETRY_AFTER, &retry_after.to_string());
            return response;
        }
        let (parts, body) = request.into_parts();
        let Ok(form) = to_bytes(body, 64 * 1024).await else {
            return with_body(
                StatusCode::BAD_REQUEST,
                "application/json",
                r#"{"error":"invalid_request"}"#,
            );
        };
        let (status, body) = match self.auth.issue(&parts.headers, &form, Instant::now()) {
            Ok(issued) => {
                self.stats.token_issued();
                let body = json!({
                    "access_token": issued.access_token,
                    "token_type": "bearer",
                    "expires_in": issued.expires_in,
                });
                (StatusCode::OK, body)
            }
            Err(TokenRefusal::InvalidClient) => {
                (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}))
            }
            Err(TokenRefusal::UnsupportedGrantType) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type"}),
            ),
            Err(TokenRefusal::InvalidRequest | TokenRefusal::NotEnabled) => {
                (StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}))
            }
        };
        let mut response = with_body(
            status,
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        );
        // RFC 6749 §5.1.
        set_header(&mut response, CACHE_CONTROL, "no-store");
        set_header(&mut response, PRAGMA, "no-cache");
        if status == StatusCode::UNAUTHORIZED {
            set_header(&mut response, WWW_AUTHENTICATE, "Basic realm=\"oauth\"");
        }
        response
    }

    /// A SCIM resource request: faults (before anything else, so they have no side effect),
    /// then auth, then the store. A write with the drop-after verdict is carried out, and then
    /// its connection is dropped instead of answered if it succeeded.
    async fn scim(&self, route: Route, request: Request) -> Outcome {
        let now = Instant::now();
        let (verdict, window) = self.faults.decide(now, is_write(&route, request.method()));
        let mut response = match verdict {
            Verdict::Drop => {
                self.stats.fault_drop();
                return Outcome::Drop;
            }
            Verdict::RateLimited { retry_after } => {
                self.stats.fault_rate_limited();
                let mut response = error_response(&ScimError::new(
                    429,
                    None,
                    format!("rate limit exceeded; retry in {retry_after} s"),
                ));
                set_header(&mut response, RETRY_AFTER, &retry_after.to_string());
                response
            }
            Verdict::Error(status) => {
                self.stats.fault_error();
                error_response(&ScimError::new(
                    status,
                    None,
                    "injected fault (sandbox error_rate)",
                ))
            }
            Verdict::Pass | Verdict::DropAfter => {
                let response = match self.auth.check(request.headers(), now) {
                    Err(denied) => unauthorized(denied),
                    Ok(()) if route == Route::Me => self
                        .me(request.method())
                        .unwrap_or_else(|e| error_response(&e)),
                    Ok(()) if route == Route::Bulk => self
                        .bulk(request)
                        .await
                        .unwrap_or_else(|e| error_response(&e)),
                    Ok(()) => self
                        .resource_request(route, request)
                        .await
                        .unwrap_or_else(|e| error_response(&e)),
                };
                if verdict == Verdict::DropAfter && response.status().is_success() {
                    self.stats.fault_drop_after();
                    return Outcome::Drop;
                }
                response
            }
        };
        if let Some(window) = window {
            add_rate_headers(&mut response, window);
        }
        Outcome::Respond(response)
    }

    /// [`Quirk::NoFilter`]: any non-empty filter is refused with 501.
    fn refuse_filter(&self, filter: Option<&str>) -> Result<(), ScimError> {
        if self.quirks.has(Quirk::NoFilter) && filter.is_some_and(|f| !f.trim().is_empty()) {
            return Err(ScimError::new(501, None, ""));
        }
        Ok(())
    }

    /// [`Quirk::NoValueFilterPatch`]: a PATCH with any value-filter path is refused whole
    /// (501, nothing applied); a `remove` of `members` whose value lists members removes just
    /// those (rewritten here into the filters the store applies).
    fn refuse_value_filters(&self, body: &mut Value) -> Result<(), ScimError> {
        if !self.quirks.has(Quirk::NoValueFilterPatch) {
            return Ok(());
        }
        let Some(Value::Array(ops)) = body.get_mut("Operations") else {
            return Ok(());
        };
        let filtered = ops.iter().any(|op| {
            op.get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| p.contains('['))
        });
        if filtered {
            return Err(ScimError::new(
                501,
                None,
                "PATCH paths with a value filter are not supported",
            ));
        }
        let mut out = Vec::with_capacity(ops.len());
        for op in ops.drain(..) {
            let removes_listed = op
                .get("op")
                .and_then(Value::as_str)
                .is_some_and(|o| o.eq_ignore_ascii_case("remove"))
                && op
                    .get("path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("members"))
                && op.get("value").is_some_and(Value::is_array);
            if !removes_listed {
                out.push(op);
                continue;
            }
            for member in op["value"].as_array().into_iter().flatten() {
                let Some(id) = member.get("value").and_then(Value::as_str) else {
                    continue;
                };
                let literal = Value::from(id).to_string();
                let path = match member.get("type").and_then(Value::as_str) {
                    Some(t) => {
                        format!("members[value eq {literal} and type eq {}]", Value::from(t))
                    }
                    None => format!("members[value eq {literal}]"),
                };
                out.push(json!({"op": "remove", "path": path}));
            }
        }
        *ops = out;
        Ok(())
    }

    /// [`Quirk::NoEmailType`]: a user's emails lose their `type` before they are stored.
    fn drop_unstored(&self, kind: ResourceKind, resource: &mut Value) {
        if kind != ResourceKind::User || !self.quirks.has(Quirk::NoEmailType) {
            return;
        }
        if let Some(emails) = resource.get_mut("emails") {
            untype(emails);
        }
    }

    /// [`Quirk::IntegerIds`]: each written group member (in `members` of a resource, or a
    /// PATCH value that is a list of members) gets `type` (`User` when absent) and a `$ref`
    /// naming its endpoint, the only things that tell user 2 from group 2.
    fn ref_members(&self, kind: ResourceKind, value: &mut Value) {
        if kind != ResourceKind::Group || !self.quirks.has(Quirk::IntegerIds) {
            return;
        }
        let list = match value {
            Value::Object(resource) => match resource.get_mut("members") {
                Some(Value::Array(list)) => list,
                _ => return,
            },
            Value::Array(list) => list,
            _ => return,
        };
        for member in list.iter_mut() {
            let Some(m) = member.as_object_mut() else {
                continue;
            };
            let Some(id) = m.get("value").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let group = m
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("Group"));
            let (of, type_name) = if group {
                (ResourceKind::Group, "Group")
            } else {
                (ResourceKind::User, "User")
            };
            m.insert("type".into(), Value::from(type_name));
            m.insert("$ref".into(), Value::from(self.store.location(of, &id)));
        }
    }

    /// [`Quirk::DropGroupMembersOnCreate`]: a group create loses its `members`.
    fn drop_created_members(&self, kind: ResourceKind, body: &mut Value) {
        if kind == ResourceKind::Group
            && self.quirks.has(Quirk::DropGroupMembersOnCreate)
            && let Some(group) = body.as_object_mut()
        {
            group.retain(|k, _| !k.eq_ignore_ascii_case("members"));
        }
    }

    /// [`App::drop_unstored`] for the values of a PATCH: whole-resource values, values of
    /// `emails` (the path's attribute name, filtered or not), and `emails[..].type` writes,
    /// which are dropped (the server has nowhere to keep them).
    fn drop_unstored_in_patch(&self, kind: ResourceKind, body: &mut Value) {
        if kind != ResourceKind::User || !self.quirks.has(Quirk::NoEmailType) {
            return;
        }
        let Some(Value::Array(ops)) = body.get_mut("Operations") else {
            return;
        };
        ops.retain(|op| {
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            let lower = path.to_ascii_lowercase();
            !(lower.starts_with("emails")
                && lower
                    .rsplit_once('.')
                    .is_some_and(|(_, last)| last == "type"))
        });
        for op in ops.iter_mut() {
            let path = op
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let Some(value) = op.get_mut("value") else {
                continue;
            };
            if path.is_empty() {
                if let Some(emails) = value.get_mut("emails") {
                    untype(emails);
                }
            } else if path.starts_with("emails") && !path.contains('.') {
                untype(value);
            }
        }
    }

    /// `GET /Me`: the user [`App::me`] names, whole (404 while it does not exist); 501
    /// without one, and for other methods.
    fn me(&self, method: &Method) -> Result<Response, ScimError> {
        if method != Method::GET {
            return Err(ScimError::new(
                501,
                None,
                "only GET /Me is supported by the sandbox",
            ));
        }
        let Some(me) = &self.me else {
            return Err(ScimError::new(
                501,
                None,
                "/Me is not supported by the sandbox (see --me)",
            ));
        };
        let entry = self
            .store
            .find_entry(ResourceKind::User, me)
            .ok_or_else(|| {
                ScimError::not_found(format!("the authenticated subject {me:?} has no User"))
            })?;
        Ok(resource_response(
            StatusCode::OK,
            ResourceKind::User,
            &entry,
            None,
        ))
    }

    // One arm per (route, method), each short; the quirks' hooks pushed it past 100 lines.
    #[allow(clippy::too_many_lines)]
    pub(crate) async fn resource_request(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response, ScimError> {
        let (parts, body) = request.into_parts();
        let query = parts
            .uri
            .query()
            .map(|q| parse_form(q.as_bytes()))
            .unwrap_or_default();
        let projection = || {
            let get = |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            };
            Projection::from_params(get("attributes"), get("excludedAttributes"))
        };
        let if_match = header(&parts.headers, &IF_MATCH);
        let store = &self.store;
        let method = parts.method.clone();
        match (route, method) {
            (Route::Collection(kind), Method::GET) => {
                let params = ListParams::from_query(&query)?;
                self.refuse_filter(params.filter.as_deref())?;
                let (query, projection) = params.into_query()?;
                Ok(list_response(
                    &store.list(kind, &query),
                    kind,
                    projection.as_ref(),
                ))
            }
            (Route::Search(kind), Method::POST) => {
                let body = read_json(&parts.headers, body).await?;
                let params = ListParams::from_search(&body)?;
                self.refuse_filter(params.filter.as_deref())?;
                let (query, projection) = params.into_query()?;
                Ok(list_response(
                    &store.list(kind, &query),
                    kind,
                    projection.as_ref(),
                ))
            }
            (Route::Collection(kind), Method::POST) => {
                let projection = projection()?;
                let mut body = read_json(&parts.headers, body).await?;
                self.drop_unstored(kind, &mut body);
                self.drop_created_members(kind, &mut body);
                self.ref_members(kind, &mut body);
                let entry = store.create(kind, body)?;
                let mut response =
                    resource_response(StatusCode::CREATED, kind, &entry, projection.as_ref());
                set_header(&mut response, LOCATION, &store.location(kind, &entry.id));
                Ok(response)
            }
            (Route::Resource(kind, id), Method::GET) => {
                let projection = projection()?;
                let entry = store.get_entry(kind, &id).ok_or_else(|| {
                    ScimError::not_found(format!("{} {id} not found", kind.resource_type()))
                })?;
                if header(&parts.headers, &IF_NONE_MATCH)
                    .is_some_and(|tag| etag_matches(tag, entry.version))
                {
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = StatusCode::NOT_MODIFIED;
                    set_header(&mut response, ETAG, &etag(entry.version));
                    return Ok(response);
                }
                Ok(resource_response(
                    StatusCode::OK,
                    kind,
                    &entry,
                    projection.as_ref(),
                ))
            }
            (Route::Resource(kind, id), Method::PUT) => {
                let projection = projection()?;
                let mut body = read_json(&parts.headers, body).await?;
                self.drop_unstored(kind, &mut body);
                self.ref_members(kind, &mut body);
                let entry = store.replace(kind, &id, body, if_match)?;
                Ok(resource_response(
                    StatusCode::OK,
                    kind,
                    &entry,
                    projection.as_ref(),
                ))
            }
            (Route::Resource(kind, id), Method::PATCH) => {
                let projection = projection()?;
                let mut body = read_json(&parts.headers, body).await?;
                self.refuse_password_change(kind, &body)?;
                self.drop_unstored_in_patch(kind, &mut body);
                if let Some(Value::Array(ops)) = body.get_mut("Operations") {
                    for op in ops.iter_mut() {
                        if let Some(value) = op.get_mut("value") {
                            self.ref_members(kind, value);
                        }
                    }
                }
                self.refuse_value_filters(&mut body)?;
                let ops = patch::parse_body(&body)?;
                let entry = store.patch(kind, &id, &ops, if_match)?;
                Ok(resource_response(
                    StatusCode::OK,
                    kind,
                    &entry,
                    projection.as_ref(),
                ))
            }
            (Route::Resource(kind, id), Method::DELETE) => {
                store.delete(kind, &id, if_match)?;
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                Ok(response)
            }
            (Route::Collection(_), _) => Ok(method_not_allowed("GET, POST")),
            (Route::Search(_), _) => Ok(method_not_allowed("POST")),
            (_, _) => Ok(method_not_allowed("GET, PUT, PATCH, DELETE")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use axum::http::Request as HttpRequest;

    use super::*;
    use crate::sandbox::RateLimit;
    use crate::sandbox::clock::Clock;
    use crate::sandbox::resource::{ENTERPRISE_URN, GENESYS_URN};

    const BASE: &str = "http://127.0.0.1:9/scim/v2";

    struct Reply {
        status: u16,
        headers: HeaderMap,
        body: Value,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }

        fn scim_type(&self) -> Option<&str> {
            self.body["scimType"].as_str()
        }
    }

    fn app_with(auth: SandboxAuth, faults: Faults) -> App {
        let store = Arc::new(Store::new(
            BASE,
            Clock::fixed(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        ));
        App::new(store, auth, faults, BASE, &Quirks::default())
    }

    fn app() -> App {
        app_with(SandboxAuth::None, Faults::default())
    }

    async fn send(app: &App, request: HttpRequest<Body>) -> Option<Reply> {
        match app.handle(request).await {
            Outcome::Drop => None,
            Outcome::Respond(response) => {
                let (parts, body) = response.into_parts();
                let bytes = to_bytes(body, usize::MAX).await.expect("body");
                let body = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).expect("JSON body")
                };
                Some(Reply {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                })
            }
        }
    }

    async fn call_with(
        app: &App,
        method: &str,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut builder = HttpRequest::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/scim+json");
                Body::from(serde_json::to_vec(&v).expect("json"))
            }
            None => Body::empty(),
        };
        send(app, builder.body(body).expect("request"))
            .await
            .expect("not dropped")
    }

    async fn call(app: &App, method: &str, uri: &str, body: Option<Value>) -> Reply {
        call_with(app, method, uri, body, &[]).await
    }

    async fn create_user(app: &App, name: &str) -> String {
        let reply = call(
            app,
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": name})),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    // Routing: prefixes, case-insensitive segments, .search, discovery, unknowns.
    #[test]
    fn routes() {
        assert_eq!(
            route("/scim/v2/Users"),
            Route::Collection(ResourceKind::User)
        );
        assert_eq!(route("/v2/users/"), Route::Collection(ResourceKind::User));
        assert_eq!(
            route("/GROUPS/abc"),
            Route::Resource(ResourceKind::Group, "abc".into())
        );
        assert_eq!(
            route("/scim/v2/Groups/.search"),
            Route::Search(ResourceKind::Group)
        );
        assert_eq!(route("/oauth/token"), Route::Token);
        assert_eq!(
            route("/scim/v2/Schemas/urn:a%3Ab"),
            Route::Schemas(Some("urn:a:b".into()))
        );
        assert_eq!(
            route("/scim/v2/ServiceProviderConfig"),
            Route::ServiceProviderConfig
        );
        assert_eq!(route("/scim/v2/Bulk"), Route::Bulk);
        assert!(matches!(
            route("/scim/v2/.search"),
            Route::NotImplemented(_)
        ));
        assert_eq!(route("/scim/v2/Users/a/b"), Route::Unknown);
        assert_eq!(route("/scim/v2"), Route::Unknown);
        assert_eq!(route("/scim/v2/Nope"), Route::Unknown);
    }

    // A sandbox that announces changePassword false holds to it: a PATCH that sets the
    // password (by path or in a path-less value) is refused whole with 400 mutability, and
    // nothing of it is applied; other PATCHes and a create's initial password still work.
    #[tokio::test]
    async fn password_changes_are_refused_when_not_supported() {
        let mut app = app();
        app.set_change_password(false);
        let spc = call(&app, "GET", "/scim/v2/ServiceProviderConfig", None).await;
        assert_eq!(spc.body["changePassword"]["supported"], false);
        let created = call(
            &app,
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "pw@example.com", "password": "Init1al-pw!"})),
        )
        .await;
        assert_eq!(created.status, 201);
        let uri = format!(
            "/scim/v2/Users/{}",
            created.body["id"].as_str().expect("id")
        );
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        for ops in [
            json!([{"op": "replace", "path": "title", "value": "Lead"},
                   {"op": "replace", "path": "password", "value": "N3w-passw0rd!"}]),
            json!([{"op": "replace", "value": {"title": "Lead", "Password": "N3w-passw0rd!"}}]),
        ] {
            let refused = call(&app, "PATCH", &uri, Some(patch(ops))).await;
            assert_eq!(refused.status, 400, "{}", refused.body);
            assert_eq!(refused.body["scimType"], "mutability");
        }
        let read = call(&app, "GET", &uri, None).await;
        assert!(
            read.body.get("title").is_none(),
            "nothing of a refused PATCH applies"
        );
        let title = json!([{"op": "replace", "path": "title", "value": "Lead"}]);
        assert_eq!(
            call(&app, "PATCH", &uri, Some(patch(title))).await.status,
            200
        );
    }

    // POST then GET: 201, Location, ETag, meta; password never returned; 404 after DELETE.
    #[tokio::test]
    async fn create_get_delete() {
        let app = app();
        let created = call(
            &app,
            "POST",
            "/scim/v2/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
                "userName": "alice@example.com", "password": "Secr3t!", "externalId": "hr-1",
                "name": {"givenName": "Alice"},
                ENTERPRISE_URN: {"employeeNumber": "42"},
                GENESYS_URN: {"routingSkills": [{"name": "Sales", "proficiency": 2.5}]}
            })),
        )
        .await;
        assert_eq!(created.status, 201);
        assert_eq!(created.header("content-type"), Some(SCIM_JSON));
        let id = created.body["id"].as_str().expect("id");
        let location = format!("{BASE}/Users/{id}");
        assert_eq!(created.header("location"), Some(location.as_str()));
        assert_eq!(created.header("etag"), Some("W/\"1\""));
        assert_eq!(created.body["meta"]["location"], location);
        assert_eq!(created.body["meta"]["version"], "W/\"1\"");
        assert_eq!(
            created.body["meta"]["created"],
            created.body["meta"]["lastModified"]
        );
        assert!(created.body.get("password").is_none());
        assert_eq!(
            created.body[GENESYS_URN]["routingSkills"][0]["proficiency"],
            2.5
        );

        let got = call(&app, "GET", &format!("/scim/v2/users/{id}"), None).await;
        assert_eq!((got.status, &got.body), (200, &created.body));
        assert_eq!(got.header("etag"), Some("W/\"1\""));
        let not_modified = call_with(
            &app,
            "GET",
            &format!("/v2/Users/{id}"),
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
        assert_eq!(not_modified.status, 304);
        let projected = call(
            &app,
            "GET",
            &format!("/scim/v2/Users/{id}?attributes=userName"),
            None,
        )
        .await;
        assert_eq!(
            projected.body,
            json!({"id": id, "userName": "alice@example.com",
            "schemas": created.body["schemas"].clone()})
        );

        assert_eq!(
            call(&app, "DELETE", &format!("/scim/v2/Users/{id}"), None)
                .await
                .status,
            204
        );
        let gone = call(&app, "GET", &format!("/scim/v2/Users/{id}"), None).await;
        assert_eq!(gone.status, 404);
        assert_eq!(gone.body["status"], "404");
        assert_eq!(
            gone.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(
            call(&app, "DELETE", &format!("/scim/v2/Users/{id}"), None)
                .await
                .status,
            404
        );
    }

    // Request-level errors: missing userName, bad JSON, wrong content type, 405, 404, 501, 409.
    #[tokio::test]
    async fn request_errors() {
        let app = app();
        let reply = call(&app, "POST", "/scim/v2/Users", Some(json!({"name": {}}))).await;
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidValue"))
        );
        let bad = HttpRequest::post("/scim/v2/Users")
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from("{nope"))
            .expect("request");
        let reply = send(&app, bad).await.expect("reply");
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidSyntax"))
        );
        let untyped = HttpRequest::post("/scim/v2/Users")
            .body(Body::from("{}"))
            .expect("request");
        assert_eq!(send(&app, untyped).await.expect("reply").status, 415);
        let reply = call(&app, "PUT", "/scim/v2/Users", None).await;
        assert_eq!(
            (reply.status, reply.header("allow")),
            (405, Some("GET, POST"))
        );
        assert_eq!(
            call(&app, "POST", "/scim/v2/Users/x", None).await.status,
            405
        );
        assert_eq!(call(&app, "GET", "/scim/v2/Nope", None).await.status, 404);
        assert_eq!(call(&app, "POST", "/scim/v2/Bulk", None).await.status, 501);
        create_user(&app, "Bob@X").await;
        let reply = call(
            &app,
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "bob@x"})),
        )
        .await;
        assert_eq!((reply.status, reply.scim_type()), (409, Some("uniqueness")));
        assert_eq!(reply.body["status"], "409");
        let reply = call(
            &app,
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Ops"})),
        )
        .await;
        assert_eq!(reply.status, 201);
        let reply = call(
            &app,
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "OPS"})),
        )
        .await;
        assert_eq!(
            reply.status, 201,
            "group names need not be unique (RFC 7643 §4.2)"
        );
        let reply = call(
            &app,
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "ann@x.example"})),
        )
        .await;
        assert_eq!(reply.status, 201);
        let reply = call(
            &app,
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "ANN@x.example"})),
        )
        .await;
        assert_eq!(reply.status, 409);
        let reply = call(&app, "GET", "/scim/v2/Users?count=abc", None).await;
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidValue"))
        );
        let reply = call(&app, "GET", "/scim/v2/Users?filter=userName%20eq", None).await;
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidFilter"))
        );
        let reply = call(&app, "GET", "/scim/v2/Users?sortOrder=sideways", None).await;
        assert_eq!(reply.status, 400);
    }

    // List: ListResponse shape, 1-based paging, count limits, filters via query and .search.
    #[tokio::test]
    async fn listing() {
        let app = app();
        for i in 0..25 {
            create_user(&app, &format!("user{i:02}@x")).await;
        }
        let page = call(&app, "GET", "/scim/v2/Users?startIndex=11&count=5", None).await;
        assert_eq!(page.body["schemas"][0], LIST_URN);
        assert_eq!(
            (
                page.body["totalResults"].as_u64(),
                page.body["startIndex"].as_u64()
            ),
            (Some(25), Some(11))
        );
        assert_eq!(page.body["itemsPerPage"], 5);
        assert_eq!(page.body["Resources"][0]["userName"], "user10@x");
        let all = call(&app, "GET", "/scim/v2/Users", None).await;
        assert_eq!(all.body["Resources"].as_array().map(Vec::len), Some(25));
        let zero = call(&app, "GET", "/scim/v2/Users?count=0", None).await;
        assert_eq!(
            (
                zero.body["totalResults"].as_u64(),
                zero.body["itemsPerPage"].as_u64()
            ),
            (Some(25), Some(0))
        );
        let negative = call(&app, "GET", "/scim/v2/Users?startIndex=-4&count=-1", None).await;
        assert_eq!(
            (
                negative.body["startIndex"].as_u64(),
                negative.body["itemsPerPage"].as_u64()
            ),
            (Some(1), Some(0))
        );
        let past = call(&app, "GET", "/scim/v2/Users?startIndex=99", None).await;
        assert_eq!(
            (past.status, past.body["itemsPerPage"].as_u64()),
            (200, Some(0))
        );
        let found = call(
            &app,
            "GET",
            "/scim/v2/Users?filter=userName+eq+%22USER07%40X%22",
            None,
        )
        .await;
        assert_eq!(found.body["totalResults"], 1);
        assert_eq!(found.body["Resources"][0]["userName"], "user07@x");
        let sorted = call(
            &app,
            "GET",
            "/scim/v2/Users?sortBy=userName&sortOrder=descending&count=2&attributes=userName",
            None,
        )
        .await;
        assert_eq!(
            sorted.body["Resources"],
            json!([
                {"id": sorted.body["Resources"][0]["id"], "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "user24@x"},
                {"id": sorted.body["Resources"][1]["id"], "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "user23@x"}
            ])
        );
        let searched = call(&app, "POST", "/scim/v2/Users/.search", Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName sw \"user1\"", "startIndex": 2, "count": 3, "excludedAttributes": ["meta"]
        })))
        .await;
        assert_eq!(searched.body["totalResults"], 10);
        assert_eq!(searched.body["Resources"][0]["userName"], "user11@x");
        assert!(searched.body["Resources"][0].get("meta").is_none());
        let capped = call(&app, "GET", "/scim/v2/Users?count=5000", None).await;
        assert_eq!(capped.status, 200);
    }

    // PUT replaces; PATCH answers 200 with the resource and ETag; If-Match mismatch is 412.
    #[tokio::test]
    async fn put_patch_if_match() {
        let app = app();
        let id = create_user(&app, "carol").await;
        let uri = format!("/scim/v2/Users/{id}");
        let put = call_with(
            &app,
            "PUT",
            &uri,
            Some(json!({"userName": "carol", "title": "Boss"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
        assert_eq!((put.status, put.header("etag")), (200, Some("W/\"2\"")));
        assert_eq!(put.body["title"], "Boss");
        let stale = call_with(
            &app,
            "PUT",
            &uri,
            Some(json!({"userName": "carol"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
        assert_eq!(stale.status, 412);
        assert_eq!(stale.body["status"], "412");
        let patch_body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "CEO"}]});
        let stale = call_with(
            &app,
            "PATCH",
            &uri,
            Some(patch_body.clone()),
            &[("if-match", "\"1\"")],
        )
        .await;
        assert_eq!(stale.status, 412);
        let patched = call_with(
            &app,
            "PATCH",
            &uri,
            Some(patch_body),
            &[("if-match", "\"2\"")],
        )
        .await;
        assert_eq!(
            (patched.status, patched.header("etag")),
            (200, Some("W/\"3\""))
        );
        assert_eq!(patched.body["title"], "CEO");
        let no_target = call(
            &app,
            "PATCH",
            &uri,
            Some(json!({"Operations": [
            {"op": "replace", "path": "title", "value": "X"},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@y"}]})),
        )
        .await;
        assert_eq!(
            (no_target.status, no_target.scim_type()),
            (400, Some("noTarget"))
        );
        assert_eq!(call(&app, "GET", &uri, None).await.body["title"], "CEO");
        let deleted = call_with(&app, "DELETE", &uri, None, &[("if-match", "W/\"2\"")]).await;
        assert_eq!(deleted.status, 412);
        assert_eq!(
            call_with(&app, "DELETE", &uri, None, &[("if-match", "*")])
                .await
                .status,
            204
        );
        let missing = call(&app, "PUT", &uri, Some(json!({"userName": "carol"}))).await;
        assert_eq!(missing.status, 404);
    }

    // A value of the wrong type for /Schemas is refused, 400 invalidValue, by POST, PUT and
    // PATCH alike, and nothing of it is stored; the same attributes with their types pass,
    // and "True" strings still become booleans.
    #[tokio::test]
    async fn wrong_types_are_refused() {
        let app = app();
        let invalid = |reply: &Reply, what: &str| {
            assert_eq!(
                (reply.status, reply.scim_type()),
                (400, Some("invalidValue")),
                "{what}: {}",
                reply.body
            );
        };
        for body in [
            json!({"userName": "dora", "name": "Dora"}),
            json!({"userName": "dora", "emails": "dora@example.com"}),
            json!({"userName": "dora", "emails": [{"value": "d@x", "primary": 1}]}),
            json!({"userName": "dora", ENTERPRISE_URN: {"employeeNumber": 42}}),
        ] {
            invalid(
                &call(&app, "POST", "/scim/v2/Users", Some(body.clone())).await,
                "POST",
            );
        }
        let listed = call(&app, "GET", "/scim/v2/Users", None).await;
        assert_eq!(
            listed.body["totalResults"], 0,
            "no refused create was stored"
        );

        let created = call(
            &app,
            "POST",
            "/scim/v2/Users",
            Some(
                json!({"userName": "dora", "name": {"givenName": "Dora"}, "active": "True",
                "emails": [{"value": "d@x", "primary": true}],
                ENTERPRISE_URN: {"employeeNumber": "42"}}),
            ),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["active"], true);
        let uri = format!(
            "/scim/v2/Users/{}",
            created.body["id"].as_str().expect("id")
        );
        let put = call(
            &app,
            "PUT",
            &uri,
            Some(json!({"userName": "dora", "title": "Lead", "emails": "dora@example.com"})),
        )
        .await;
        invalid(&put, "PUT");
        let patch = |ops: Value| json!({"Operations": ops});
        for ops in [
            json!([{"op": "replace", "path": "name.givenName", "value": 5}]),
            json!([{"op": "replace", "path": "title", "value": "Lead"},
                   {"op": "add", "path": "emails", "value": [{"value": ["e@x"]}]}]),
            json!([{"op": "replace", "path": "emails[value eq \"d@x\"].primary", "value": 3}]),
            json!([{"op": "replace", "value": {"title": "Lead", "name": "Dora"}}]),
            json!([{"op": "add", "path": format!("{ENTERPRISE_URN}:manager"), "value": "m"}]),
        ] {
            invalid(&call(&app, "PATCH", &uri, Some(patch(ops))).await, "PATCH");
        }
        let read = call(&app, "GET", &uri, None).await;
        assert_eq!(read.header("etag"), Some("W/\"1\""), "nothing was stored");
        assert_eq!(read.body["name"], json!({"givenName": "Dora"}));
        assert_eq!(
            read.body["emails"],
            json!([{"value": "d@x", "primary": true}])
        );
        assert!(read.body.get("title").is_none());

        let fine = call(
            &app,
            "PATCH",
            &uri,
            Some(patch(json!([
                {"op": "replace", "path": "name.givenName", "value": "Dorothea"},
                {"op": "add", "path": "emails", "value": [{"value": "e@x", "primary": "False"}]},
                {"op": "add", "path": format!("{ENTERPRISE_URN}:manager"), "value": {"value": "m"}},
            ]))),
        )
        .await;
        assert_eq!(fine.status, 200, "{}", fine.body);
        assert_eq!(
            fine.body["emails"][1],
            json!({"value": "e@x", "primary": false})
        );
        let put = call(
            &app,
            "PUT",
            &uri,
            Some(json!({"userName": "dora", "title": "Lead"})),
        )
        .await;
        assert_eq!((put.status, &put.body["title"]), (200, &json!("Lead")));
    }

    // Discovery needs no auth; SCIM endpoints need the bearer token.
    #[tokio::test]
    async fn static_bearer() {
        let app = app_with(SandboxAuth::Bearer("s3cret".into()), Faults::default());
        let spc = call(&app, "GET", "/scim/v2/ServiceProviderConfig", None).await;
        assert_eq!(spc.status, 200);
        assert_eq!(
            spc.body["authenticationSchemes"][0]["type"],
            "oauthbearertoken"
        );
        assert_eq!(
            call(&app, "GET", "/scim/v2/Schemas", None).await.status,
            200
        );
        let rt = call(&app, "GET", "/scim/v2/ResourceTypes/User", None).await;
        assert_eq!(rt.body["schemaExtensions"][0]["schema"], ENTERPRISE_URN);
        let denied = call(&app, "GET", "/scim/v2/Users", None).await;
        assert_eq!(
            (denied.status, denied.header("www-authenticate")),
            (401, Some("Bearer realm=\"SCIM\""))
        );
        let wrong = call_with(
            &app,
            "GET",
            "/scim/v2/Users",
            None,
            &[("authorization", "Bearer nope")],
        )
        .await;
        assert_eq!(wrong.status, 401);
        let ok = call_with(
            &app,
            "GET",
            "/scim/v2/Users",
            None,
            &[("authorization", "Bearer s3cret")],
        )
        .await;
        assert_eq!(ok.status, 200);
        assert_eq!(call(&app, "POST", "/oauth/token", None).await.status, 404);
    }

    // OAuth client credentials: token issue, use, expiry on the paused clock, bad credentials.
    #[tokio::test(start_paused = true)]
    async fn oauth_tokens() {
        let app = app_with(
            SandboxAuth::OAuth {
                client_id: "cid".into(),
                client_secret: "csecret".into(),
                token_ttl: Duration::from_secs(300),
            },
            Faults::default(),
        );
        let form = |auth: &str| {
            HttpRequest::post("/oauth/token")
                .header("authorization", auth)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("grant_type=client_credentials"))
                .expect("request")
        };
        // "cid:csecret" and "cid:wrong" in base64
        let denied = send(&app, form("Basic Y2lkOndyb25n")).await.expect("reply");
        assert_eq!(
            (denied.status, &denied.body),
            (401, &json!({"error": "invalid_client"}))
        );
        let issued = send(&app, form("Basic Y2lkOmNzZWNyZXQ="))
            .await
            .expect("reply");
        assert_eq!(issued.status, 200);
        assert_eq!(issued.body["token_type"], "bearer");
        assert_eq!(issued.body["expires_in"], 300);
        assert_eq!(issued.header("cache-control"), Some("no-store"));
        let bearer = format!(
            "Bearer {}",
            issued.body["access_token"].as_str().expect("token")
        );
        let ok = call_with(
            &app,
            "GET",
            "/scim/v2/Groups",
            None,
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(ok.status, 200);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(
            call_with(
                &app,
                "GET",
                "/scim/v2/Groups",
                None,
                &[("authorization", &bearer)]
            )
            .await
            .status,
            200
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let expired = call_with(
            &app,
            "GET",
            "/scim/v2/Groups",
            None,
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(
            (expired.status, expired.header("www-authenticate")),
            (401, Some("Bearer error=\"invalid_token\""))
        );
        assert_eq!(app.stats.snapshot().tokens_issued, 1);
    }

    // 429 with Retry-After until the window ends; discovery is never limited; counted in stats.
    #[tokio::test(start_paused = true)]
    async fn rate_limit() {
        let app = app_with(
            SandboxAuth::None,
            Faults {
                rate_limit: Some(RateLimit {
                    requests: 2,
                    window: Duration::from_secs(60),
                }),
                ..Faults::default()
            },
        );
        assert_eq!(call(&app, "GET", "/scim/v2/Users", None).await.status, 200);
        tokio::time::advance(Duration::from_millis(20_500)).await;
        assert_eq!(call(&app, "GET", "/scim/v2/Users", None).await.status, 200);
        let limited = call(&app, "GET", "/scim/v2/Users", None).await;
        assert_eq!(
            (limited.status, limited.header("retry-after")),
            (429, Some("40"))
        );
        assert_eq!(limited.body["status"], "429");
        assert_eq!(limited.header("inin-ratelimit-reset"), Some("40"));
        assert_eq!(
            call(&app, "GET", "/scim/v2/ServiceProviderConfig", None)
                .await
                .status,
            200
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(call(&app, "GET", "/scim/v2/Users", None).await.status, 200);
        let stats = app.stats.snapshot();
        assert_eq!(
            (
                stats.faults.rate_limited,
                stats.status(429),
                stats.status(200)
            ),
            (1, 1, 4)
        );
        assert_eq!((stats.requests, stats.by_method.get), (5, 5));
    }

    // About error_rate of requests fail with 500/503 and an error body, with no side effect.
    #[tokio::test]
    async fn injected_errors() {
        let app = app_with(
            SandboxAuth::None,
            Faults {
                error_rate: 0.25,
                seed: 42,
                ..Faults::default()
            },
        );
        let mut failed = 0;
        for i in 0..1000 {
            let reply = call(
                &app,
                "POST",
                "/scim/v2/Users",
                Some(json!({"userName": format!("u{i}")})),
            )
            .await;
            match reply.status {
                201 => {}
                500 | 503 => {
                    assert_eq!(reply.body["status"], reply.status.to_string());
                    failed += 1;
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert!((200..300).contains(&failed), "{failed} of 1000 failed");
        assert_eq!(app.store.count(ResourceKind::User), 1000 - failed);
        let stats = app.stats.snapshot();
        assert_eq!(usize::try_from(stats.faults.errors).ok(), Some(failed));
        assert_eq!(
            usize::try_from(stats.status(500) + stats.status(503)).ok(),
            Some(failed)
        );
        assert_eq!(
            call(&app, "GET", "/scim/v2/Schemas", None).await.status,
            200
        );
    }

    // Dropped requests have no side effect and are counted; the latency fault delays answers.
    #[tokio::test(start_paused = true)]
    async fn drops_and_latency() {
        let app = app_with(
            SandboxAuth::None,
            Faults {
                drop_rate: 0.5,
                latency: Duration::from_millis(250),
                seed: 1,
                ..Faults::default()
            },
        );
        let mut dropped = 0;
        for i in 0..40 {
            let request = HttpRequest::post("/scim/v2/Users")
                .header("content-type", "application/json")
                .body(Body::from(format!("{{\"userName\":\"u{i}\"}}")))
                .expect("request");
            let started = Instant::now();
            match send(&app, request).await {
                None => dropped += 1,
                Some(reply) => assert_eq!(reply.status, 201),
            }
            assert_eq!(started.elapsed(), Duration::from_millis(250));
        }
        assert!((10..30).contains(&dropped), "{dropped}");
        assert_eq!(app.store.count(ResourceKind::User), 40 - dropped);
        assert_eq!(
            usize::try_from(app.stats.snapshot().faults.drops).ok(),
            Some(dropped)
        );
    }

    // Drop after acting: successful writes are carried out and then dropped; reads, searches
    // and failed writes are answered; faults before acting come first.
    #[tokio::test]
    async fn drops_after_acting() {
        let app = app_with(
            SandboxAuth::None,
            Faults {
                drop_after_rate: 1.0,
                ..Faults::default()
            },
        );
        let request = |method: &str, uri: &str, body: Option<Value>| {
            let builder = HttpRequest::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/scim+json");
            let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
            builder.body(body).expect("request")
        };
        let create = request("POST", "/scim/v2/Users", Some(json!({"userName": "kept"})));
        assert!(send(&app, create).await.is_none(), "dropped");
        let id = app
            .store
            .find(ResourceKind::User, "kept")
            .and_then(|u| u["id"].as_str().map(str::to_owned))
            .expect("created although dropped");
        // The same create again fails (409), and a failure is answered.
        let again = request("POST", "/scim/v2/Users", Some(json!({"userName": "KEPT"})));
        let reply = send(&app, again).await.expect("answered");
        assert_eq!(reply.status, 409);
        // Reads and searches are never writes.
        let user_url = format!("/scim/v2/Users/{id}");
        assert_eq!(call(&app, "GET", &user_url, None).await.status, 200);
        let search = json!({"filter": "userName eq \"kept\""});
        let reply = call(&app, "POST", "/scim/v2/Users/.search", Some(search)).await;
        assert_eq!(reply.body["totalResults"], 1);
        // PATCH and PUT are applied, then dropped.
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]
        });
        assert!(
            send(&app, request("PATCH", &user_url, Some(patch)))
                .await
                .is_none()
        );
        let stored = app.store.get(ResourceKind::User, &id).expect("kept");
        assert_eq!(stored["title"], "Lead");
        let put = json!({"userName": "kept", "title": "Chief"});
        assert!(
            send(&app, request("PUT", &user_url, Some(put)))
                .await
                .is_none()
        );
        let stored = app.store.get(ResourceKind::User, &id).expect("kept");
        assert_eq!(stored["title"], "Chief");
        // DELETE is carried out and dropped; repeated, it is a 404, answered.
        assert!(
            send(&app, request("DELETE", &user_url, None))
                .await
                .is_none()
        );
        assert_eq!(app.store.count(ResourceKind::User), 0);
        assert_eq!(call(&app, "DELETE", &user_url, None).await.status, 404);
        let stats = app.stats.snapshot();
        assert_eq!((stats.faults.drops_after, stats.faults.drops), (4, 0));
        assert_eq!(stats.requests, 8);
        assert_eq!(
            (stats.status(409), stats.status(200), stats.status(404)),
            (1, 2, 1)
        );
    }

    // Groups: members, member filters, user deletion cleans up, PATCH on members.
    #[tokio::test]
    async fn groups_and_members() {
        let app = app();
        let a = create_user(&app, "a").await;
        let b = create_user(&app, "b").await;
        let group = call(
            &app,
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Team",
            "members": [{"value": a, "type": "User"}]})),
        )
        .await;
        assert_eq!(group.status, 201);
        let gid = group.body["id"].as_str().expect("id").to_owned();
        let uri = format!("/scim/v2/Groups/{gid}");
        let patched = call(
            &app,
            "PATCH",
            &uri,
            Some(json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": b}, {"value": a}]}]})),
        )
        .await;
        assert_eq!(patched.body["members"].as_array().map(Vec::len), Some(2));
        let filter = format!(
            "/scim/v2/Groups?filter=members%5Bvalue%20eq%20%22{b}%22%5D&excludedAttributes=members"
        );
        let found = call(&app, "GET", &filter, None).await;
        assert_eq!(found.body["totalResults"], 1);
        assert!(found.body["Resources"][0].get("members").is_none());
        call(&app, "DELETE", &format!("/scim/v2/Users/{a}"), None).await;
        let after = call(&app, "GET", &uri, None).await;
        assert_eq!(after.body["members"], json!([{"value": b}]));
        let removed = call(
            &app,
            "PATCH",
            &uri,
            Some(json!({"Operations": [
            {"op": "remove", "path": format!("members[value eq \"{b}\"]")}]})),
        )
        .await;
        assert_eq!(removed.status, 200);
        assert!(removed.body.get("members").is_none());
    }

    /// `/Bulk`: operations carried out in order as their single requests would be, `bulkId`
    /// references resolved, per-operation errors with string statuses, `bulkId` echoed for
    /// POST only; over-limit requests refused whole with 413; `failOnErrors`; 501 without
    /// Bulk.
    #[tokio::test]
    async fn bulk_requests() {
        const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
        const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
        let user =
            |name: &str| json!({"schemas": [super::super::resource::USER_URN], "userName": name});
        let bulk = |ops: Value| Some(json!({"schemas": [BULK], "Operations": ops}));
        let mut app = app();
        let off = call(&app, "POST", "/scim/v2/Bulk", bulk(json!([]))).await;
        assert_eq!(off.status, 501);
        app.set_bulk(Some(super::super::BulkLimits {
            max_operations: 4,
            max_payload: 4096,
        }));
        let spc = call(&app, "GET", "/scim/v2/ServiceProviderConfig", None).await;
        assert_eq!(
            spc.body["bulk"],
            json!({"supported": true, "maxOperations": 4, "maxPayloadSize": 4096})
        );

        let reply = call(&app, "POST", "/scim/v2/Bulk", bulk(json!([
            {"method": "POST", "bulkId": "u1", "path": "/Users", "data": user("ann")},
            {"method": "POST", "bulkId": "g1", "path": "/Groups", "data": {
                "schemas": [super::super::resource::GROUP_URN], "displayName": "G",
                "members": [{"value": "bulkId:u1"}]}},
            {"method": "POST", "bulkId": "u2", "path": "/Users", "data": user("ANN")},
            {"method": "PATCH", "bulkId": "p1", "path": "/Users/bulkId:u1", "version": "W/\"999\"",
             "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}},
        ]))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let ops = reply.body["Operations"].as_array().expect("results");
        let statuses: Vec<&str> = ops
            .iter()
            .map(|o| o["status"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(statuses, ["201", "201", "409", "412"]);
        let ann = ops[0]["response"]["id"].as_str().expect("id");
        assert_eq!(ops[0]["bulkId"], "u1");
        assert!(
            ops[0]["location"]
                .as_str()
                .is_some_and(|l| l.ends_with(&format!("/Users/{ann}")))
        );
        assert!(ops[0]["version"].is_string());
        assert_eq!(ops[1]["response"]["members"][0]["value"], ann);
        assert_eq!(ops[2]["response"]["scimType"], "uniqueness");
        assert!(
            ops[3].get("bulkId").is_none(),
            "only a POST's bulkId is echoed"
        );

        // Over maxOperations or maxPayloadSize: refused whole, nothing done.
        let five: Vec<Value> = (0..5)
            .map(|i| json!({"method": "POST", "bulkId": format!("b{i}"), "path": "/Users", "data": user(&format!("u{i}"))}))
            .collect();
        let refused = call(&app, "POST", "/scim/v2/Bulk", bulk(Value::Array(five))).await;
        assert_eq!(refused.status, 413);
        let big = call(&app, "POST", "/scim/v2/Bulk", bulk(json!([
            {"method": "POST", "bulkId": "x", "path": "/Users", "data": user(&"x".repeat(5000))},
        ]))).await;
        assert_eq!(big.status, 413);
        let users = call(&app, "GET", "/scim/v2/Users", None).await;
        assert_eq!(users.body["totalResults"], 1);

        // failOnErrors stops after that many failures; an unknown bulkId fails its operation.
        let mut stop = bulk(json!([
            {"method": "DELETE", "path": "/Users/nope"},
            {"method": "DELETE", "path": format!("/Users/{ann}")},
        ]))
        .expect("body");
        stop["failOnErrors"] = json!(1);
        let stopped = call(&app, "POST", "/scim/v2/Bulk", Some(stop)).await;
        let ops = stopped.body["Operations"].as_array().expect("results");
        assert_eq!((ops.len(), ops[0]["status"].as_str()), (1, Some("404")));
        let unknown = call(
            &app,
            "POST",
            "/scim/v2/Bulk",
            bulk(json!([
                {"method": "DELETE", "path": "/Users/bulkId:nobody"},
                {"method": "GET", "path": format!("/Users/{ann}")},
            ])),
        )
        .await;
        let ops = unknown.body["Operations"].as_array().expect("results");
        assert_eq!(ops[0]["status"], "409");
        assert_eq!(ops[1]["status"], "400");
        assert_eq!(
            call(&app, "GET", &format!("/scim/v2/Users/{ann}"), None)
                .await
                .status,
            200
        );
    }
}
