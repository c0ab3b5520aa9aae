//! SCIM users as Genesys Cloud serves them: the supported attributes only (anything else is
//! 400 `invalidValue`), the read-only `emails[type eq "other"]` (= `userName`) and `groups`,
//! roles by name backed by grants, divisions by name, `dateHire` as a date, routing skills and
//! languages (at most 50, proficiency 0–5), active-only default lists and the 25 rule. A
//! DELETE keeps the user in the `deleted` state (deleted.rs).

use axum::extract::Request;
use axum::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::super::discovery::LIST_URN;
use super::super::error::ScimError;
use super::super::filter::Filter;
use super::super::http::{header, read_json, scim_json, set_header};
use super::super::patch::{self, PatchOp};
use super::super::resource::{
    self, ENTERPRISE_URN, GENESYS_URN, Projection, ResourceKind, USER_URN, canonical, is_urn,
    key_ci,
};
use super::super::store::{Entry, ListQuery};
use super::schemas::MAX_COUNT;
use super::wire::{PlatformError, Refusal, Route, check_documented_paths, empty, not_here, param};
use super::{Data, Genesys, lock};

/// `phoneNumbers[].type` values Genesys accepts.
pub(super) const PHONE_TYPES: &[&str] = &[
    "work",
    "work2",
    "work3",
    "work4",
    "home",
    "mobile",
    "other",
    "microsoftteams",
    "zoomphone",
    "eightbyeight",
    "ringcentral",
];

const CORE_ATTRS: &[&str] = &[
    "schemas",
    "id",
    "meta",
    "userName",
    "displayName",
    "active",
    "title",
    "password",
    "emails",
    "phoneNumbers",
    "externalId",
    "roles",
    "groups",
];
const ENTERPRISE_ATTRS: &[&str] = &[
    "division",
    "department",
    "manager",
    "employeeNumber",
    "dateHire",
];
const GENESYS_ATTRS: &[&str] = &["routingSkills", "routingLanguages", "externalIds"];

/// The authority of the `externalIds` entry Genesys keeps for SCIM itself: "Always includes
/// an immutable SCIM authority prefixed with x-pc:scimv2:v1" (genesys-api.md §3). That it
/// mirrors the SCIM `externalId`, and this exact spelling, are UNCONFIRMED guesses.
const SCIM_AUTHORITY: &str = "x-pc:scimv2:v1";

/// Attributes whose lookups make a page over 25 users too expensive (`(schema, name)`).
const USER_EXPENSIVE: &[(&str, &str)] = &[
    (USER_URN, "externalId"),
    (USER_URN, "roles"),
    (GENESYS_URN, "routingSkills"),
    (GENESYS_URN, "routingLanguages"),
];

/// The page size above which the expensive attributes must be left out.
const CHEAP_COUNT: i64 = 25;

/// A user's stored document and the role ids a write names (`None`: roles left alone).
pub(super) type Stored = (Map<String, Value>, Option<Vec<String>>);

/// How a write treats attributes it does not mention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Replace,
    Patch,
}

/// List parameters shared by users and groups.
pub(super) struct ListRequest {
    pub(super) filter: Option<Filter>,
    pub(super) start_index: usize,
    pub(super) count: usize,
    pub(super) projection: Option<Projection>,
}

/// Whether `name` (as given in `attributes`/`excludedAttributes`) covers `attr` of `urn`.
fn names_attr(name: &str, urn: &str, attr: &str) -> bool {
    let name = name.trim();
    let qualified = format!("{urn}:{attr}");
    let starts = |prefix: &str| {
        name.len() > prefix.len()
            && name[..prefix.len()].eq_ignore_ascii_case(prefix)
            && name.as_bytes()[prefix.len()] == b'.'
    };
    name.eq_ignore_ascii_case(attr)
        || name.eq_ignore_ascii_case(&qualified)
        || (urn != USER_URN && urn != resource::GROUP_URN && name.eq_ignore_ascii_case(urn))
        || starts(attr)
        || starts(&qualified)
}

/// Whether a list leaves out every expensive attribute: all named in `excludedAttributes`,
/// or `attributes` given without any of them.
pub(super) fn cheap(
    attributes: Option<&str>,
    excluded: Option<&str>,
    expensive: &[(&str, &str)],
) -> bool {
    let split = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(attributes) = attributes.filter(|a| !a.trim().is_empty()) {
        let names = split(attributes);
        return !expensive
            .iter()
            .any(|(urn, attr)| names.iter().any(|n| names_attr(n, urn, attr)));
    }
    let names = split(excluded.unwrap_or_default());
    expensive
        .iter()
        .all(|(urn, attr)| names.iter().any(|n| names_attr(n, urn, attr)))
}

/// Quotes bare comparison values (`userName eq a@b.org` → `userName eq "a@b.org"`), which
/// Genesys's documented examples use; `true`, `false` and `null` stay bare.
pub(super) fn quote_bare_values(filter: &str) -> String {
    const OPS: [&str; 9] = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let chars: Vec<char> = filter.chars().collect();
    let mut out = String::with_capacity(filter.len() + 8);
    let mut after_op = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']') {
            out.push(c);
            i += 1;
            continue;
        }
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
            after_op = false;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], ')' | ']' | '[') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let lower = word.to_ascii_lowercase();
        if after_op && !matches!(lower.as_str(), "true" | "false" | "null") {
            out.push_str(&serde_json::to_string(&word).unwrap_or(word));
            after_op = false;
        } else {
            after_op = OPS.contains(&lower.as_str());
            out.push_str(&word);
        }
    }
    out
}

/// Whether a filter says anything about `active`.
fn mentions_active(filter: &Filter) -> bool {
    let is_active = |path: &super::super::filter::AttrPath| {
        path.is_core(USER_URN) && path.attr.eq_ignore_ascii_case("active")
    };
    match filter {
        Filter::Or(all) | Filter::And(all) => all.iter().any(mentions_active),
        Filter::Not(inner) => mentions_active(inner),
        Filter::Present(path) | Filter::Compare { path, .. } => is_active(path),
        Filter::Elements { path, filter } => is_active(path) || mentions_active(filter),
    }
}

/// Reads the list parameters; the 25 rule answers 429 (Platform body, `Retry-After: 1`).
pub(super) fn list_request(
    pairs: &[(String, String)],
    expensive: &[(&str, &str)],
) -> Result<ListRequest, Refusal> {
    let int = |name: &str, default: i64| -> Result<i64, ScimError> {
        param(pairs, name).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
        })
    };
    let count = int("count", CHEAP_COUNT)?;
    let start_index = int("startIndex", 1)?;
    let attributes = param(pairs, "attributes");
    let excluded = param(pairs, "excludedAttributes");
    if count > CHEAP_COUNT && !cheap(attributes, excluded, expensive) {
        return Err(PlatformError::too_many(1).into());
    }
    let filter = param(pairs, "filter")
        .filter(|f| !f.trim().is_empty())
        .map(|f| Filter::parse(&quote_bare_values(f)))
        .transpose()?;
    Ok(ListRequest {
        filter,
        start_index: usize::try_from(start_index.max(1)).unwrap_or(1),
        count: usize::try_from(count.max(0))
            .unwrap_or(MAX_COUNT)
            .min(MAX_COUNT),
        projection: Projection::from_params(attributes, excluded)?,
    })
}

/// Applies a projection, keeping what Genesys always returns.
pub(super) fn project(
    doc: Map<String, Value>,
    projection: Option<&Projection>,
    kind: ResourceKind,
) -> Map<String, Value> {
    let Some(projection) = projection else {
        return doc;
    };
    let mut out = projection.apply(&doc, kind);
    let always: &[&str] = match kind {
        ResourceKind::User => &["id", "userName", "active", "meta"],
        ResourceKind::Group => &["id", "meta"],
    };
    for key in always {
        if let Some(v) = doc.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    out
}

/// A SCIM list response of already projected resources.
pub(super) fn list_body(total: usize, start_index: usize, items: Vec<Value>) -> Value {
    let shown = items.len();
    json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": shown,
        "Resources": Value::Array(items),
    })
}

/// A single resource answer with its `ETag` (`etag`: Genesys's strong `"n"` unless the
/// sandbox was told to send weak ones).
pub(super) fn resource_answer(
    status: StatusCode,
    doc: &Map<String, Value>,
    etag: &str,
) -> Response {
    let mut response = scim_json(status, &Value::Object(doc.clone()));
    set_header(&mut response, ETAG, etag);
    response
}

fn values_of(doc: &Map<String, Value>, attr: &str) -> Vec<String> {
    let mut values: Vec<String> = match doc.get(attr) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.get("value").and_then(Value::as_str))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    values.sort();
    values
}

/// The `value`s of `emails` of type `other`, lowercased and sorted.
fn other_emails(doc: &Map<String, Value>) -> Vec<String> {
    let mut values: Vec<String> = match doc.get("emails") {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|e| {
                e.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("other"))
            })
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .map(str::to_lowercase)
            .collect(),
        _ => Vec::new(),
    };
    values.sort();
    values
}

fn unsupported(name: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "attribute `{name}` is not supported by Genesys Cloud"
    ))
}

/// Refuses attributes outside the supported set; canonical spelling of top-level keys.
fn check_attributes(doc: &mut Map<String, Value>) -> Result<(), ScimError> {
    let keys: Vec<String> = doc.keys().cloned().collect();
    for key in keys {
        let canon = canonical(&key).to_owned();
        if canon != key
            && let Some(v) = doc.remove(&key)
        {
            doc.insert(canon.clone(), v);
        }
        let allowed: &[&str] = if canon == ENTERPRISE_URN {
            ENTERPRISE_ATTRS
        } else if canon == GENESYS_URN {
            GENESYS_ATTRS
        } else if is_urn(&canon) {
            return Err(ScimError::invalid_value(format!(
                "schema extension `{canon}` is not supported by Genesys Cloud"
            )));
        } else if CORE_ATTRS.contains(&canon.as_str()) {
            continue;
        } else {
            return Err(unsupported(&canon));
        };
        match doc.get(&canon) {
            Some(Value::Object(ext)) => {
                if let Some(bad) = ext
                    .keys()
                    .find(|k| !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)))
                {
                    return Err(unsupported(&format!("{canon}:{bad}")));
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(ScimError::invalid_value(format!(
                    "{canon} must be an object"
                )));
            }
        }
    }
    Ok(())
}

/// `YYYY-MM-DD` from a date or an ISO-8601 timestamp.
fn date_only(text: &str) -> Option<String> {
    let date = text.get(..10)?;
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    (digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10))
        .then(|| date.to_owned())
}

fn check_proficiencies(ext: &Map<String, Value>) -> Result<(), ScimError> {
    for attr in ["routingSkills", "routingLanguages"] {
        let Some(key) = key_ci(ext, attr) else {
            continue;
        };
        let items = match &ext[&key] {
            Value::Array(items) => items,
            Value::Null => continue,
            _ => return Err(ScimError::invalid_value(format!("{attr} must be an array"))),
        };
        if items.len() > 50 {
            return Err(ScimError::invalid_value(format!(
                "{attr}: at most 50 per user"
            )));
        }
        for item in items {
            let name_ok = item.get("name").and_then(Value::as_str).is_some();
            let proficiency = item.get("proficiency").and_then(Value::as_f64);
            if !name_ok || !proficiency.is_some_and(|p| (0.0..=5.0).contains(&p)) {
                return Err(ScimError::invalid_value(format!(
                    "{attr}: each needs a name and a proficiency from 0 to 5"
                )));
            }
        }
    }
    Ok(())
}

/// The enterprise extension: division by name (default Home), `dateHire` as a date, manager
/// as `{value}`.
fn check_enterprise(doc: &mut Map<String, Value>, data: &Data) -> Result<(), ScimError> {
    let ext = doc
        .entry(ENTERPRISE_URN.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if ext.is_null() {
        *ext = Value::Object(Map::new());
    }
    let Value::Object(ext) = ext else {
        return Err(ScimError::invalid_value(
            "the enterprise extension must be an object",
        ));
    };
    let division = match key_ci(ext, "division").and_then(|k| ext.remove(&k)) {
        None | Some(Value::Null) => data.home().name.clone(),
        Some(Value::String(name)) => data
            .division_named(&name)
            .map(|d| d.name.clone())
            .ok_or_else(|| ScimError::invalid_value(format!("no division named {name:?}")))?,
        Some(_) => return Err(ScimError::invalid_value("division must be a division name")),
    };
    ext.insert("division".to_owned(), Value::String(division));
    if let Some(key) = key_ci(ext, "dateHire") {
        let given = ext.remove(&key).unwrap_or(Value::Null);
        match given.as_str().map(date_only) {
            Some(Some(day)) => {
                ext.insert("dateHire".to_owned(), Value::String(day));
            }
            _ if given.is_null() => {}
            _ => return Err(ScimError::invalid_value("dateHire must be YYYY-MM-DD")),
        }
    }
    if let Some(key) = key_ci(ext, "manager") {
        match ext.remove(&key).unwrap_or(Value::Null) {
            Value::Null => {}
            Value::Object(m) => match m.get("value").and_then(Value::as_str) {
                Some(id) => {
                    ext.insert("manager".to_owned(), json!({"value": id}));
                }
                None => return Err(ScimError::invalid_value("manager needs a value")),
            },
            _ => return Err(ScimError::invalid_value("manager must be {\"value\": id}")),
        }
    }
    Ok(())
}

/// Emails: types `work`/`other`; the `other` one is read-only (it is `userName`). Keeps the
/// work emails only.
fn check_emails(
    doc: &mut Map<String, Value>,
    before: &Map<String, Value>,
    user_name: &str,
) -> Result<(), ScimError> {
    let after_other = other_emails(doc);
    if after_other != other_emails(before)
        && after_other
            .iter()
            .any(|v| !v.eq_ignore_ascii_case(user_name))
    {
        return Err(ScimError::mutability(
            "emails[type eq \"other\"] is read-only: it is always the userName",
        ));
    }
    let Some(Value::Array(items)) = doc.remove("emails") else {
        return Ok(());
    };
    let mut work = Vec::new();
    for item in items {
        match item.get("type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("work") => work.push(item),
            Some(t) if t.eq_ignore_ascii_case("other") => {}
            _ => {
                return Err(ScimError::invalid_value(
                    "emails[].type must be work or other",
                ));
            }
        }
    }
    if !work.is_empty() {
        doc.insert("emails".to_owned(), Value::Array(work));
    }
    Ok(())
}

fn check_phones(doc: &Map<String, Value>) -> Result<(), ScimError> {
    let Some(Value::Array(items)) = doc.get("phoneNumbers") else {
        return Ok(());
    };
    for item in items {
        if let Some(kind) = item.get("type").and_then(Value::as_str)
            && !PHONE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(kind))
        {
            return Err(ScimError::invalid_value(format!(
                "phoneNumbers[].type {kind:?} is not supported"
            )));
        }
    }
    Ok(())
}

/// Role names → role ids (case-insensitive; unknown is 400 `invalidValue`).
fn resolve_roles(value: &Value, data: &Data) -> Result<Vec<String>, ScimError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::Null => &[],
        _ => return Err(ScimError::invalid_value("roles must be an array")),
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let name = item
            .get("value")
            .and_then(Value::as_str)
            .or_else(|| item.as_str())
            .ok_or_else(|| ScimError::invalid_value("roles[].value must be a role name"))?;
        let role = data
            .role_named(name)
            .ok_or_else(|| ScimError::invalid_value(format!("no role named {name:?}")))?;
        if !ids.contains(&role.id) {
            ids.push(role.id.clone());
        }
    }
    Ok(ids)
}

/// Turns the client's view `after` of a user into the stored document, checked against the
/// current view `before` (empty for a create). Also returns the role ids named, or `None`
/// when the write leaves roles alone (a create or PUT without `roles`).
pub(super) fn to_stored(
    data: &Data,
    before: &Map<String, Value>,
    mut after: Map<String, Value>,
    mode: Mode,
) -> Result<Stored, ScimError> {
    check_attributes(&mut after)?;
    if after.contains_key("groups") && values_of(&after, "groups") != values_of(before, "groups") {
        return Err(ScimError::mutability(
            "groups is read-only; change membership through the group",
        ));
    }
    let user_name = match after.get("userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(ScimError::invalid_value("userName is required")),
    };
    if !matches!(after.get("displayName"), Some(Value::String(s)) if !s.trim().is_empty()) {
        return Err(ScimError::invalid_value("displayName is required"));
    }
    check_emails(&mut after, before, &user_name)?;
    check_phones(&after)?;
    let roles = match after.remove("roles") {
        Some(value) => Some(resolve_roles(&value, data)?),
        None if mode == Mode::Patch => Some(Vec::new()),
        None => None,
    };
    check_enterprise(&mut after, data)?;
    if let Some(Value::Object(ext)) = after.get_mut(GENESYS_URN) {
        check_proficiencies(ext)?;
        check_external_ids(ext, before)?;
    }
    if after.get("active").is_none_or(Value::is_null) {
        after.insert("active".to_owned(), Value::Bool(true));
    }
    for server_owned in ["id", "meta", "password", "groups"] {
        after.remove(server_owned);
    }
    resource::normalize(&mut after, ResourceKind::User);
    resource::validate(&after, ResourceKind::User)?;
    Ok((after, roles))
}

/// `externalIds` of a write: `{authority, value}` entries, both non-empty strings, one per
/// authority. The `x-pc:` entries are Genesys's own: one sent back as read is dropped (it is
/// derived again on every read), any other is refused as read-only.
fn check_external_ids(
    ext: &mut Map<String, Value>,
    before: &Map<String, Value>,
) -> Result<(), ScimError> {
    let Some(list) = key_ci(ext, "externalIds").and_then(|key| ext.remove(&key)) else {
        return Ok(());
    };
    let items = match list {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        _ => return Err(ScimError::invalid_value("externalIds must be an array")),
    };
    let read: Vec<&Value> = before
        .get(GENESYS_URN)
        .and_then(|e| e.get("externalIds"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut kept: Vec<Value> = Vec::new();
    for item in items {
        let field = |name: &str| {
            item.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (Some(authority), Some(value)) = (field("authority"), field("value")) else {
            return Err(ScimError::invalid_value(
                "every externalIds entry needs a non-empty authority and value",
            ));
        };
        if authority.starts_with("x-pc:") {
            if read.contains(&&item) {
                continue;
            }
            return Err(ScimError::mutability(format!(
                "externalIds authority {authority:?} is read-only"
            )));
        }
        if kept.iter().any(|k| k["authority"] == authority.as_str()) {
            return Err(ScimError::invalid_value(format!(
                "externalIds names authority {authority:?} twice"
            )));
        }
        kept.push(json!({"authority": authority, "value": value}));
    }
    if !kept.is_empty() {
        ext.insert("externalIds".to_owned(), Value::Array(kept));
    }
    Ok(())
}

/// Refuses PATCH operations on read-only paths before they are applied.
fn check_patch_paths(ops: &[PatchOp]) -> Result<(), ScimError> {
    for op in ops {
        let Some(path) = &op.path else { continue };
        let squeezed: String = path
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if squeezed.starts_with("emails[typeeq\"other\"]") {
            return Err(ScimError::mutability(
                "emails[type eq \"other\"] is read-only: it is always the userName",
            ));
        }
        if squeezed == "groups"
            || squeezed.starts_with("groups[")
            || squeezed.starts_with("groups.")
        {
            return Err(ScimError::mutability(
                "groups is read-only; change membership through the group",
            ));
        }
    }
    Ok(())
}

impl Genesys {
    /// `/api/v2/scim/v2/users[/{id}]`.
    pub(super) async fn users(&self, route: Route, request: Request) -> Result<Response, Refusal> {
        let pairs = super::wire::query_pairs(&request);
        let method = request.method().clone();
        match (route, method) {
            (Route::Users, Method::GET) => self.list_users(&pairs),
            (Route::Users, Method::POST) => {
                let (parts, body) = request.into_parts();
                let body = read_json(&parts.headers, body).await?;
                self.create_user(body)
            }
            (Route::User(id), Method::GET) => {
                let if_none = header(request.headers(), &IF_NONE_MATCH).map(str::to_owned);
                self.get_resource(ResourceKind::User, &id, &pairs, if_none.as_deref())
            }
            (Route::User(id), Method::PUT | Method::PATCH) => {
                let patching = request.method() == Method::PATCH;
                let (parts, body) = request.into_parts();
                let if_match = header(&parts.headers, &IF_MATCH).map(str::to_owned);
                let body = read_json(&parts.headers, body).await?;
                if patching {
                    let ops = patch::parse_body(&body)?;
                    check_patch_paths(&ops)?;
                    check_documented_paths(&ops, ResourceKind::User)?;
                    self.write_user(&id, if_match.as_deref(), Mode::Patch, |before| {
                        let mut after = before.clone();
                        patch::apply(&mut after, &ops, ResourceKind::User)?;
                        Ok(after)
                    })
                } else {
                    let Value::Object(after) = body else {
                        return Err(ScimError::invalid_syntax("the body must be an object").into());
                    };
                    self.write_user(&id, if_match.as_deref(), Mode::Replace, |_| Ok(after))
                }
            }
            (Route::User(id), Method::DELETE) => {
                let if_match = header(request.headers(), &IF_MATCH).map(str::to_owned);
                self.delete_user(&id, if_match.as_deref())
            }
            _ => Err(not_here(&request).into()),
        }
    }

    fn missing_user(id: &str) -> ScimError {
        ScimError::not_found(format!("User {id} not found"))
    }

    /// Ids of the visible groups listing `user` as a member.
    pub(super) fn groups_of(&self, user: &str) -> Vec<String> {
        let Ok(filter) = Filter::parse(&format!(
            "members[value eq {}]",
            serde_json::to_string(user).unwrap_or_default()
        )) else {
            return Vec::new();
        };
        let query = ListQuery {
            filter: Some(filter),
            start_index: 1,
            count: usize::MAX,
            ..ListQuery::default()
        };
        self.store
            .list(ResourceKind::Group, &query)
            .items
            .iter()
            .filter(|g| !self.is_hidden(&g.id))
            .map(|g| g.id.to_string())
            .collect()
    }

    /// A user as Genesys returns it.
    pub(super) fn render_user(&self, entry: &Entry, data: &Data) -> Map<String, Value> {
        let mut doc = entry.doc();
        let meta = doc.remove("meta");
        let modified = meta
            .as_ref()
            .and_then(|m| m.get("lastModified"))
            .cloned()
            .unwrap_or(Value::Null);
        let user_name = doc.get("userName").cloned().unwrap_or(Value::Null);
        let mut emails = vec![json!({"type": "other", "value": user_name, "primary": true})];
        if let Some(Value::Array(work)) = doc.remove("emails") {
            emails.extend(work);
        }
        doc.insert("emails".to_owned(), Value::Array(emails));
        let roles: Vec<Value> = data
            .role_names(&entry.id)
            .into_iter()
            .map(|name| json!({"value": name}))
            .collect();
        if !roles.is_empty() {
            doc.insert("roles".to_owned(), Value::Array(roles));
        }
        let groups: Vec<Value> = self
            .groups_of(&entry.id)
            .into_iter()
            .map(|g| json!({"value": g, "$ref": self.location(ResourceKind::Group, &g), "type": "direct"}))
            .collect();
        if !groups.is_empty() {
            doc.insert("groups".to_owned(), Value::Array(groups));
        }
        if let Some(external) = doc.get("externalId").cloned().filter(Value::is_string) {
            let ext = doc
                .entry(GENESYS_URN.to_owned())
                .or_insert_with(|| json!({}));
            if let Some(ext) = ext.as_object_mut() {
                let list = ext
                    .entry("externalIds".to_owned())
                    .or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.insert(0, json!({"authority": SCIM_AUTHORITY, "value": external}));
                }
            }
        }
        if let Some(Value::Object(ext)) = doc.get_mut(ENTERPRISE_URN) {
            ext.entry("division")
                .or_insert_with(|| Value::String(data.home().name.clone()));
        } else {
            doc.insert(
                ENTERPRISE_URN.to_owned(),
                json!({"division": data.home().name}),
            );
        }
        resource::normalize(&mut doc, ResourceKind::User);
        doc.insert(
            "meta".to_owned(),
            json!({
                "resourceType": "User",
                "lastModified": modified,
                "location": self.location(ResourceKind::User, &entry.id),
                "version": entry.version.to_string(),
            }),
        );
        doc
    }

    fn list_users(&self, pairs: &[(String, String)]) -> Result<Response, Refusal> {
        let list = list_request(pairs, USER_EXPENSIVE)?;
        let everyone = ListQuery {
            start_index: 1,
            count: usize::MAX,
            ..ListQuery::default()
        };
        let entries = self.store.list(ResourceKind::User, &everyone).items;
        let data = lock(&self.data).clone();
        let by_active = list.filter.as_ref().is_none_or(|f| !mentions_active(f));
        // Only what Genesys adds to a stored user (the other email, roles, groups, the default
        // division) needs a user rendered before filtering; other filters match the stored
        // document, and only the page asked for is rendered.
        let rendered_filter = param(pairs, "filter").is_some_and(|f| {
            let f = f.to_ascii_lowercase();
            ["email", "roles", "groups", "division"]
                .iter()
                .any(|a| f.contains(a))
        });
        let mut matched = Vec::new();
        for entry in entries.iter().filter(|e| !self.is_hidden(&e.id)) {
            let doc = if rendered_filter {
                self.render_user(entry, &data)
            } else {
                entry.doc()
            };
            if by_active && doc.get("active") == Some(&Value::Bool(false)) {
                continue;
            }
            if list
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(&doc, USER_URN))
            {
                matched.push(entry);
            }
        }
        let total = matched.len();
        let items = matched
            .into_iter()
            .skip(list.start_index - 1)
            .take(list.count)
            .map(|entry| {
                let doc = self.render_user(entry, &data);
                Value::Object(project(doc, list.projection.as_ref(), ResourceKind::User))
            })
            .collect();
        Ok(scim_json(
            StatusCode::OK,
            &list_body(total, list.start_index, items),
        ))
    }

    /// `GET` of one user or group: 404 while hidden by the read lag, 304 on a matching
    /// `If-None-Match`, else Genesys's rendering of it, projected.
    pub(super) fn get_resource(
        &self,
        kind: ResourceKind,
        id: &str,
        pairs: &[(String, String)],
        if_none_match: Option<&str>,
    ) -> Result<Response, Refusal> {
        let projection = Projection::from_params(
            param(pairs, "attributes"),
            param(pairs, "excludedAttributes"),
        )?;
        let entry = self.visible(kind, id).ok_or_else(|| {
            ScimError::not_found(format!("{} {id} not found", kind.resource_type()))
        })?;
        if if_none_match.is_some_and(|tag| resource::etag_matches(tag, entry.version)) {
            let mut response = empty(StatusCode::NOT_MODIFIED);
            set_header(&mut response, ETAG, &self.etag(entry.version));
            return Ok(response);
        }
        let doc = match kind {
            ResourceKind::User => self.render_user(&entry, &lock(&self.data)),
            ResourceKind::Group => self.render_group(&entry),
        };
        let doc = project(doc, projection.as_ref(), kind);
        Ok(resource_answer(
            StatusCode::OK,
            &doc,
            &self.etag(entry.version),
        ))
    }

    fn create_user(&self, body: Value) -> Result<Response, Refusal> {
        let Value::Object(after) = body else {
            return Err(ScimError::invalid_syntax("the body must be an object").into());
        };
        let _writing = lock(&self.writes);
        let (stored, roles) = to_stored(&lock(&self.data), &Map::new(), after, Mode::Create)?;
        // A deleted user keeps its email (deleted.rs): Genesys answers `general.conflict`.
        if let Some(name) = stored.get("userName").and_then(Value::as_str)
            && self.deleted_email(name)
        {
            return Err(ScimError::uniqueness(format!(
                "general.conflict: a deleted user has the email {name:?}; restore it instead"
            ))
            .into());
        }
        let entry = self
            .store
            .create(ResourceKind::User, Value::Object(stored))?;
        let now = self.now();
        self.change(|data| {
            let home = data.home().id.clone();
            let roles = roles.unwrap_or_else(|| {
                data.role_named("employee")
                    .map(|r| vec![r.id.clone()])
                    .unwrap_or_default()
            });
            for role in roles {
                data.grant(&entry.id, &role, &home, &now);
            }
        });
        self.hide(&entry.id);
        let doc = self.render_user(&entry, &lock(&self.data).clone());
        let mut response = resource_answer(StatusCode::CREATED, &doc, &self.etag(entry.version));
        set_header(
            &mut response,
            LOCATION,
            &self.location(ResourceKind::User, &entry.id),
        );
        Ok(response)
    }

    /// PUT or PATCH: `change` turns the current view into the client's new view.
    fn write_user(
        &self,
        id: &str,
        if_match: Option<&str>,
        mode: Mode,
        change: impl FnOnce(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<Response, Refusal> {
        let _writing = lock(&self.writes);
        let entry = self
            .visible(ResourceKind::User, id)
            .ok_or_else(|| Self::missing_user(id))?;
        self.check_version(if_match, entry.version)?;
        let data = lock(&self.data).clone();
        let before = self.render_user(&entry, &data);
        let after = change(&before)?;
        let (stored, roles) = to_stored(&data, &before, after, mode)?;
        let home = data.home().id.clone();
        let held: Vec<String> = data
            .grants
            .iter()
            .filter(|g| g.subject == id)
            .map(|g| g.role.clone())
            .collect();
        let (add, remove): (Vec<String>, Vec<String>) = match &roles {
            None => (Vec::new(), Vec::new()),
            Some(wanted) => (
                wanted
                    .iter()
                    .filter(|r| !held.contains(r))
                    .cloned()
                    .collect(),
                data.grants
                    .iter()
                    .filter(|g| g.subject == id && g.division == home && !wanted.contains(&g.role))
                    .map(|g| g.role.clone())
                    .collect(),
            ),
        };
        let bump = !add.is_empty() || !remove.is_empty();
        let entry = self
            .store
            .update(ResourceKind::User, id, None, bump, |_| Ok(stored))?;
        let now = self.now();
        self.change(|data| {
            data.grants
                .retain(|g| !(g.subject == id && g.division == home && remove.contains(&g.role)));
            for role in &add {
                data.grant(id, role, &home, &now);
            }
        });
        let doc = self.render_user(&entry, &lock(&self.data).clone());
        Ok(resource_answer(
            StatusCode::OK,
            &doc,
            &self.etag(entry.version),
        ))
    }

    fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<Response, Refusal> {
        let _writing = lock(&self.writes);
        let entry = self
            .visible(ResourceKind::User, id)
            .ok_or_else(|| Self::missing_user(id))?;
        self.check_version(if_match, entry.version)?;
        let doc = entry.doc();
        self.store.delete(ResourceKind::User, id, None)?;
        self.forget_subject(id);
        self.keep_deleted(id, doc, entry.version + 1);
        Ok(empty(StatusCode::NO_CONTENT))
    }
}
