//! One SCIM resource as a JSON object: the two resource kinds, what the server does to a body
//! before storing it (drop read-only and write-only attributes, canonical attribute spelling,
//! `schemas` kept in step with the extensions present), what makes a resource valid (RFC 7643
//! required attributes, one `primary` per multi-valued attribute), the `meta` stamp, and the
//! `attributes`/`excludedAttributes` projection (RFC 7644 §3.9). No storage, no HTTP.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{AttrPath, get_ci};

/// Core schema URN of users.
pub(crate) const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core schema URN of groups.
pub(crate) const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise user extension (RFC 7643 §4.3).
pub(crate) const ENTERPRISE_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The Genesys Cloud user extension.
pub(crate) const GENESYS_URN: &str =
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";

/// The kinds of resource the sandbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ResourceKind {
    /// The core schema URN.
    #[must_use]
    pub fn core_urn(self) -> &'static str {
        match self {
            ResourceKind::User => USER_URN,
            ResourceKind::Group => GROUP_URN,
        }
    }

    /// The endpoint segment: `Users` or `Groups`.
    #[must_use]
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// `meta.resourceType`: `User` or `Group`.
    #[must_use]
    pub fn resource_type(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The required, case-insensitively unique name attribute: `userName` or `displayName`.
    #[must_use]
    pub fn name_attr(self) -> &'static str {
        match self {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        }
    }

    /// Lowercase noun for messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
        }
    }
}

/// Extension URNs the sandbox knows (announced in `/ResourceTypes` and `/Schemas`).
pub(crate) const KNOWN_EXTENSIONS: [&str; 2] = [ENTERPRISE_URN, GENESYS_URN];

/// Top-level attribute names of RFC 7643 §4.1, §4.2 and the common ones, in canonical
/// spelling; a body that writes `username` is stored as `userName`.
const CANONICAL: [&str; 28] = [
    "schemas",
    "id",
    "externalId",
    "meta",
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "members",
    "employeeNumber",
    "department",
];

/// Whether `name` is one of [`CANONICAL`] or a known URN, spelled exactly.
fn is_canonical(name: &str) -> bool {
    matches!(
        name,
        "schemas"
            | "id"
            | "externalId"
            | "meta"
            | "userName"
            | "name"
            | "displayName"
            | "nickName"
            | "profileUrl"
            | "title"
            | "userType"
            | "preferredLanguage"
            | "locale"
            | "timezone"
            | "active"
            | "password"
            | "emails"
            | "phoneNumbers"
            | "ims"
            | "photos"
            | "addresses"
            | "groups"
            | "entitlements"
            | "roles"
            | "x509Certificates"
            | "members"
            | "employeeNumber"
            | "department"
            | USER_URN
            | GROUP_URN
            | ENTERPRISE_URN
            | GENESYS_URN
    )
}

/// The canonical spelling of a top-level attribute or extension URN, if the sandbox knows it.
pub(crate) fn canonical(name: &str) -> &str {
    // Most keys are already spelled canonically; a `match` on the exact spelling is cheap.
    if is_canonical(name) {
        return name;
    }
    CANONICAL
        .iter()
        .chain(KNOWN_EXTENSIONS.iter())
        .chain([USER_URN, GROUP_URN].iter())
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

/// Whether `key` names a schema (extension) container rather than an attribute.
pub(crate) fn is_urn(key: &str) -> bool {
    key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:")
}

/// The key of `map` equal to `name` ignoring ASCII case.
pub(crate) fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Mutable case-insensitive lookup.
pub(crate) fn get_ci_mut<'a>(map: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_ci(map, name)?;
    map.get_mut(&key)
}

/// Inserts under the existing spelling of `name`, or the canonical one.
pub(crate) fn insert_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    let key = key_ci(map, name).unwrap_or_else(|| canonical(name).to_owned());
    map.insert(key, value);
}

/// Case-insensitive removal.
pub(crate) fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(map, name)?;
    map.remove(&key)
}

/// Turns a POST/PUT body (or a seed resource) into the attributes the server keeps:
/// server-owned `id`/`meta`, read-only `groups` and write-only `password` are dropped (RFC 7643
/// §4.1: a password is never returned; the sandbox does not store it at all). Returns the
/// document and its name attribute (`userName`/`displayName`). Works on the body's own map, so
/// bulk seeding does not copy every resource.
pub(crate) fn prepare(
    body: Value,
    kind: ResourceKind,
) -> Result<(Map<String, Value>, String), ScimError> {
    let Value::Object(mut doc) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let misspelled: Vec<String> = doc
        .keys()
        .filter(|key| canonical(key) != key.as_str())
        .cloned()
        .collect();
    for key in misspelled {
        if let Some(value) = doc.remove(&key) {
            doc.insert(canonical(&key).to_owned(), value);
        }
    }
    for server_owned in ["id", "meta", "password"] {
        doc.remove(server_owned);
    }
    if kind == ResourceKind::User {
        doc.remove("groups");
    }
    normalize(&mut doc, kind);
    let name = validate(&doc, kind)?;
    Ok((doc, name))
}

/// Brings a resource into the stored shape after any change: `schemas` lists the core schema
/// first and exactly the extensions with data (the peer does the same), empty extensions are
/// dropped, `"true"`/`"false"` strings in `active`/`primary` become booleans, duplicate group
/// members (same `value`) collapse, and `password` never stays.
pub(crate) fn normalize(doc: &mut Map<String, Value>, kind: ResourceKind) {
    doc.remove("password");
    // `schemas` belongs to the resource (RFC 7643 §3), which names each extension holding a
    // value. Clients that serialise an extension as an object of its own (scim2-models does)
    // send one inside the extension's value too, on create, replace or PATCH; it is not an
    // attribute of the extension and is not stored there.
    for (key, value) in doc.iter_mut() {
        if is_urn(key)
            && let Value::Object(extension) = value
        {
            extension.retain(|k, _| !k.eq_ignore_ascii_case("schemas"));
        }
    }
    doc.retain(|key, value| !(is_urn(key) && value.as_object().is_some_and(Map::is_empty)));
    let schemas: Vec<Value> = expected_schemas(doc, kind)
        .into_iter()
        .map(Value::from)
        .collect();
    doc.insert("schemas".to_owned(), Value::Array(schemas));

    if let Some(active) = doc.get_mut("active") {
        coerce_bool(active);
    }
    for value in doc.values_mut() {
        if let Value::Array(items) = value {
            for item in items.iter_mut() {
                if let Some(primary) = item.as_object_mut().and_then(|o| o.get_mut("primary")) {
                    coerce_bool(primary);
                }
            }
        }
    }
    if kind == ResourceKind::Group
        && let Some(Value::Array(members)) = doc.get_mut("members")
    {
        // Keyed by (value, type): a server whose ids are unique only per resource type
        // (`integer-ids`) may hold user 2 and group 2 in one group.
        let mut seen = std::collections::HashSet::new();
        members.retain(|m| match m.get("value").and_then(Value::as_str) {
            Some(v) => seen.insert((v.to_owned(), member_type(m))),
            None => true,
        });
    }
}

/// A member's `type`, lowercased (empty when absent).
fn member_type(member: &Value) -> String {
    member
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The `schemas` a resource carries: its core schema first, then every extension holding
/// data, those already listed first (in their listed order and spelling), then the others in
/// key order.
pub(crate) fn expected_schemas(doc: &Map<String, Value>, kind: ResourceKind) -> Vec<&str> {
    let has_data = |urn: &str| {
        !urn.eq_ignore_ascii_case(kind.core_urn())
            && doc.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(urn) && v.as_object().is_some_and(|m| !m.is_empty())
            })
    };
    let mut schemas = vec![kind.core_urn()];
    if let Some(Value::Array(listed)) = doc.get("schemas") {
        for urn in listed.iter().filter_map(Value::as_str) {
            if is_urn(urn) && has_data(urn) {
                push_unique(urn, &mut schemas);
            }
        }
    }
    for key in doc.keys() {
        if is_urn(key) && has_data(key) {
            push_unique(key, &mut schemas);
        }
    }
    schemas
}

fn push_unique<'a>(urn: &'a str, schemas: &mut Vec<&'a str>) {
    if !schemas.iter().any(|s| s.eq_ignore_ascii_case(urn)) {
        schemas.push(urn);
    }
}

/// Whether [`prepare`] would keep `doc` as it is, apart from dropping `id`, `meta`,
/// `password` and (users) `groups` and rewriting `schemas`, which [`write_stamped`] does while
/// serializing. Bulk seeding then reads the caller's document instead of copying it.
pub(crate) fn is_normal(doc: &Map<String, Value>, kind: ResourceKind) -> bool {
    let keys_ok = doc.iter().all(|(key, value)| {
        canonical(key) == key.as_str()
            && !(is_urn(key) && value.as_object().is_some_and(Map::is_empty))
    });
    let booleans_ok = !doc.get("active").is_some_and(Value::is_string)
        && doc.values().all(|value| match value {
            Value::Array(items) => items
                .iter()
                .all(|item| !item.get("primary").is_some_and(Value::is_string)),
            _ => true,
        });
    let members_ok = kind == ResourceKind::User
        || match doc.get("members") {
            Some(Value::Array(members)) => {
                let mut seen = std::collections::HashSet::new();
                members.iter().all(|m| {
                    m.get("value")
                        .and_then(Value::as_str)
                        .is_none_or(|v| seen.insert((v.to_owned(), member_type(m))))
                })
            }
            _ => true,
        };
    keys_ok && booleans_ok && members_ok
}

/// `"True"` → `true`, as the peer coerces Azure AD's string booleans.
fn coerce_bool(value: &mut Value) {
    if let Value::String(s) = value {
        if s.eq_ignore_ascii_case("true") {
            *value = Value::Bool(true);
        } else if s.eq_ignore_ascii_case("false") {
            *value = Value::Bool(false);
        }
    }
}

/// Checks what the sandbox enforces, returning the name attribute's value.
pub(crate) fn validate(doc: &Map<String, Value>, kind: ResourceKind) -> Result<String, ScimError> {
    let name_attr = kind.name_attr();
    let name = match doc.get(name_attr) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_) | Value::Null) | None => {
            return Err(ScimError::invalid_value(format!("{name_attr} is required")));
        }
        Some(_) => {
            return Err(ScimError::invalid_value(format!(
                "{name_attr} must be a string"
            )));
        }
    };
    if let Some(active) = doc.get("active")
        && !active.is_boolean()
        && !active.is_null()
    {
        return Err(ScimError::invalid_value("active must be a boolean"));
    }
    if let Some(external) = doc.get("externalId")
        && !external.is_string()
        && !external.is_null()
    {
        return Err(ScimError::invalid_value("externalId must be a string"));
    }
    let containers = std::iter::once(doc).chain(
        doc.iter()
            .filter(|(k, _)| is_urn(k))
            .filter_map(|(_, v)| v.as_object()),
    );
    for container in containers {
        for (attr, value) in container {
            if let Value::Array(items) = value {
                let primaries = items
                    .iter()
                    .filter(|item| item.get("primary").and_then(Value::as_bool) == Some(true))
                    .count();
                if primaries > 1 {
                    return Err(ScimError::invalid_value(format!(
                        "at most one value of {attr} may be primary"
                    )));
                }
            }
        }
    }
    if kind == ResourceKind::Group {
        match doc.get("members") {
            None | Some(Value::Null) => {}
            Some(Value::Array(members)) => {
                if members
                    .iter()
                    .any(|m| m.get("value").and_then(Value::as_str).is_none())
                {
                    return Err(ScimError::invalid_value(
                        "every member needs a string value",
                    ));
                }
            }
            Some(_) => return Err(ScimError::invalid_value("members must be an array")),
        }
    }
    Ok(name)
}

/// The `value`s of a group's members.
pub(crate) fn member_values(doc: &Map<String, Value>) -> Vec<String> {
    match doc.get("members") {
        Some(Value::Array(members)) => members
            .iter()
            .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The `meta` attributes the server stamps on every write.
pub(crate) struct Stamp<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    pub(crate) version: u64,
    pub(crate) location: &'a str,
}

/// Serializes `doc` as stored: `id` and `meta` (RFC 7643 §3.1) from `stamp`, `schemas` from
/// `schemas` when given, and never `password` (nor a user's read-only `groups`); whatever `doc`
/// holds under those names is ignored. Keys come out in the sorted order serializing the
/// stamped map would give, but `doc` is neither copied nor changed, so bulk seeding can
/// serialize the caller's documents as they are.
pub(crate) fn write_stamped(
    out: &mut Vec<u8>,
    doc: &Map<String, Value>,
    kind: ResourceKind,
    stamp: &Stamp<'_>,
    schemas: Option<&[&str]>,
) -> serde_json::Result<()> {
    let version = etag(stamp.version);
    let meta = [
        ("created", stamp.created),
        ("lastModified", stamp.modified),
        ("location", stamp.location),
        ("resourceType", kind.resource_type()),
        ("version", version.as_str()),
    ];
    let skip = |name: &str| {
        matches!(name, "id" | "meta" | "password")
            || (name == "schemas" && schemas.is_some())
            || (name == "groups" && kind == ResourceKind::User)
    };
    // The attributes written from `stamp`/`schemas`, in sorted key order.
    let mut injected = vec!["id", "meta"];
    if schemas.is_some() {
        injected.push("schemas");
    }
    let mut injected = injected.into_iter().peekable();
    let mut first = true;
    let mut write_key = |out: &mut Vec<u8>, name: &str| -> serde_json::Result<()> {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, name)?;
        out.push(b':');
        Ok(())
    };
    let write_injected = |out: &mut Vec<u8>, name: &str| -> serde_json::Result<()> {
        match name {
            "id" => serde_json::to_writer(&mut *out, stamp.id),
            "meta" => {
                out.push(b'{');
                for (i, (key, value)) in meta.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, key)?;
                    out.push(b':');
                    serde_json::to_writer(&mut *out, value)?;
                }
                out.push(b'}');
                Ok(())
            }
            _ => serde_json::to_writer(&mut *out, &schemas.unwrap_or_default()),
        }
    };
    out.push(b'{');
    for (name, value) in doc {
        while let Some(next) = injected.next_if(|next| *next < name.as_str()) {
            write_key(out, next)?;
            write_injected(out, next)?;
        }
        if skip(name) {
            continue;
        }
        write_key(out, name)?;
        serde_json::to_writer(&mut *out, value)?;
    }
    for next in injected {
        write_key(out, next)?;
        write_injected(out, next)?;
    }
    out.push(b'}');
    Ok(())
}

/// The weak entity tag of a version: `W/"n"`.
pub(crate) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// Whether an `If-Match`/`If-None-Match` header value names `version` (RFC 7232 weak
/// comparison: `"3"` matches `W/"3"`; `*` matches anything; a list matches if any entry does).
pub(crate) fn etag_matches(header: &str, version: u64) -> bool {
    let want = version.to_string();
    header.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return true;
        }
        let tag = tag
            .strip_prefix("W/")
            .or_else(|| tag.strip_prefix("w/"))
            .unwrap_or(tag);
        tag.trim_matches('"') == want
    })
}

/// `attributes` or `excludedAttributes` (RFC 7644 §3.4.2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Projection {
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl Projection {
    /// From the two request parameters; `attributes` wins when both are given.
    pub(crate) fn from_params(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Option<Projection>, ScimError> {
        let split = |text: &str| -> Result<Vec<String>, ScimError> {
            let paths: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            for path in &paths {
                if !is_urn(path) && AttrPath::parse(path).is_none() {
                    return Err(ScimError::invalid_value(format!(
                        "invalid attribute path `{path}`"
                    )));
                }
            }
            Ok(paths)
        };
        if let Some(text) = attributes.filter(|t| !t.trim().is_empty()) {
            return Ok(Some(Projection::Include(split(text)?)));
        }
        if let Some(text) = excluded.filter(|t| !t.trim().is_empty()) {
            return Ok(Some(Projection::Exclude(split(text)?)));
        }
        Ok(None)
    }

    /// Applies the projection. `id` and `schemas` are always returned (RFC 7643 §7
    /// `returned: always`).
    pub(crate) fn apply(&self, doc: &Map<String, Value>, kind: ResourceKind) -> Map<String, Value> {
        match self {
            Projection::Include(paths) => {
                let mut out = Map::new();
                for key in ["id", "schemas"] {
                    if let Some(v) = doc.get(key) {
                        out.insert(key.to_owned(), v.clone());
                    }
                }
                for path in paths {
                    include(doc, &mut out, path, kind);
                }
                out.retain(|k, v| !(is_urn(k) && v.as_object().is_some_and(Map::is_empty)));
                out
            }
            Projection::Exclude(paths) => {
                let mut out = doc.clone();
                for path in paths {
                    exclude(&mut out, path, kind);
                }
                out
            }
        }
    }
}

fn include(doc: &Map<String, Value>, out: &mut Map<String, Value>, path: &str, kind: ResourceKind) {
    if let Some(key) = key_ci(doc, path) {
        if let Some(v) = doc.get(&key) {
            out.insert(key, v.clone());
        }
        return;
    }
    let Some(parsed) = AttrPath::parse(path) else {
        return;
    };
    let (src, dst) = if parsed.is_core(kind.core_urn()) {
        (doc, out)
    } else {
        let urn = parsed.urn.as_deref().unwrap_or_default();
        let Some(key) = key_ci(doc, urn) else { return };
        let Some(Value::Object(src)) = doc.get(&key) else {
            return;
        };
        let dst = out.entry(key).or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(dst) = dst else { return };
        (src, dst)
    };
    let Some(key) = key_ci(src, &parsed.attr) else {
        return;
    };
    let Some(value) = src.get(&key) else { return };
    let Some(sub) = &parsed.sub else {
        dst.insert(key, value.clone());
        return;
    };
    match value {
        Value::Object(obj) => {
            let Some(sub_key) = key_ci(obj, sub) else {
                return;
            };
            let slot = dst.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if let (Value::Object(slot), Some(v)) = (slot, obj.get(&sub_key)) {
                slot.insert(sub_key, v.clone());
            }
        }
        Value::Array(items) => {
            let slot = dst
                .entry(key)
                .or_insert_with(|| Value::Array(vec![Value::Object(Map::new()); items.len()]));
            let Value::Array(slots) = slot else { return };
            if slots.len() != items.len() {
                return;
            }
            for (item, slot) in items.iter().zip(slots.iter_mut()) {
                if let (Value::Object(item), Value::Object(slot)) = (item, slot)
                    && let Some(sub_key) = key_ci(item, sub)
                    && let Some(v) = item.get(&sub_key)
                {
                    slot.insert(sub_key, v.clone());
                }
            }
        }
        _ => {}
    }
}

fn exclude(out: &mut Map<String, Value>, path: &str, kind: ResourceKind) {
    if ["id", "schemas"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(path))
    {
        return;
    }
    if is_urn(path) && key_ci(out, path).is_some() {
        remove_ci(out, path);
        return;
    }
    let Some(parsed) = AttrPath::parse(path) else {
        return;
    };
    let container = if parsed.is_core(kind.core_urn()) {
        Some(out)
    } else {
        parsed
            .urn
            .as_deref()
            .and_then(|urn| get_ci_mut(out, urn))
            .and_then(Value::as_object_mut)
    };
    let Some(container) = container else { return };
    match &parsed.sub {
        None => {
            remove_ci(container, &parsed.attr);
        }
        Some(sub) => match get_ci_mut(container, &parsed.attr) {
            Some(Value::Object(obj)) => {
                remove_ci(obj, sub);
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    remove_ci(item, sub);
                }
            }
            _ => {}
        },
    }
}

/// Reads `meta.version` (`W/"n"`) back as a number.
pub(crate) fn parse_version(doc: &Map<String, Value>) -> Option<u64> {
    let text = get_ci(doc, "meta")?
        .as_object()
        .and_then(|m| get_ci(m, "version"))?
        .as_str()?;
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    // A create or replace whose extension value carries its own `schemas` (as scim2-models
    // serialises one) keeps the extension's attributes, not the stray key; an extension left
    // with nothing else is dropped, and the resource's `schemas` names what holds data.
    #[test]
    fn stray_schemas_inside_extensions_are_not_kept() {
        let (doc, _) = prepare(
            json!({
                "schemas": [USER_URN, GENESYS_URN, ENTERPRISE_URN],
                "userName": "a@b.c",
                GENESYS_URN: {"schemas": [GENESYS_URN], "externalIds": [{"authority": "hr", "value": "7"}]},
                ENTERPRISE_URN: {"SCHEMAS": [ENTERPRISE_URN]},
            }),
            ResourceKind::User,
        )
        .expect("valid");
        assert_eq!(
            doc[GENESYS_URN],
            json!({"externalIds": [{"authority": "hr", "value": "7"}]})
        );
        assert!(doc.get(ENTERPRISE_URN).is_none(), "{doc:?}");
        assert_eq!(doc["schemas"], json!([USER_URN, GENESYS_URN]));
    }

    // POST bodies lose id/meta/password/groups, gain canonical spellings and a correct schemas list.
    #[test]
    fn prepare_cleans_bodies() {
        let (doc, name) = prepare(
            json!({
                "id": "client-chosen", "meta": {}, "password": "hunter2", "groups": [{"value": "g"}],
                "UserName": "a@x", "active": "False",
                "schemas": [USER_URN, ENTERPRISE_URN, GENESYS_URN],
                ENTERPRISE_URN: {"department": "Ops"},
                GENESYS_URN: {}
            }),
            ResourceKind::User,
        )
        .expect("valid");
        assert!(doc.get("id").is_none() && doc.get("meta").is_none());
        assert!(doc.get("password").is_none() && doc.get("groups").is_none());
        assert_eq!(
            (doc["userName"].as_str(), name.as_str()),
            (Some("a@x"), "a@x")
        );
        assert_eq!(doc["active"], false);
        assert_eq!(doc["schemas"], json!([USER_URN, ENTERPRISE_URN]));
        assert!(doc.get(GENESYS_URN).is_none());
    }

    // Required names, typed booleans and single primaries are enforced.
    #[test]
    fn validation() {
        let err = |v: Value, kind| prepare(v, kind).expect_err("invalid");
        assert_eq!(
            err(json!({"displayName": "x"}), ResourceKind::User).scim_type,
            Some("invalidValue")
        );
        assert_eq!(
            err(json!({"userName": " "}), ResourceKind::User).status,
            400
        );
        assert_eq!(err(json!({"members": []}), ResourceKind::Group).status, 400);
        assert_eq!(
            err(json!([1]), ResourceKind::User).scim_type,
            Some("invalidSyntax")
        );
        let two_primaries = json!({"userName": "a", "emails": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]});
        assert_eq!(
            err(two_primaries, ResourceKind::User).scim_type,
            Some("invalidValue")
        );
        let bad_member = json!({"displayName": "g", "members": [{"display": "x"}]});
        assert_eq!(err(bad_member, ResourceKind::Group).status, 400);
        let (dup, _) = prepare(
            json!({"displayName": "g", "members": [{"value": "a"}, {"value": "a"}, {"value": "b"}]}),
            ResourceKind::Group,
        )
        .expect("valid");
        assert_eq!(member_values(&dup), vec!["a", "b"]);
    }

    // Writing id/meta while serializing gives exactly what serializing a stamped map gives;
    // given schemas replace the document's; password and a user's groups never appear.
    #[test]
    fn stamped_serialization() {
        let stamp = Stamp {
            id: "abc",
            created: "2026-01-01T00:00:00.000Z",
            modified: "2026-01-02T00:00:00.000Z",
            version: 7,
            location: "http://x/scim/v2/Users/abc",
        };
        for doc in [
            json!({}),
            json!({"userName": "a", "active": true, "zeta": [1], "Apple": {"x": "\"q\""}}),
            json!({"id": "old", "meta": {"stale": 1}, "externalId": "e", "name": {},
                "members": [], "password": "never"}),
        ] {
            let doc = obj(doc);
            let mut out = Vec::new();
            write_stamped(&mut out, &doc, ResourceKind::Group, &stamp, None).expect("writes");
            let mut expected = doc.clone();
            expected.remove("password");
            expected.insert("id".into(), json!("abc"));
            expected.insert(
                "meta".into(),
                json!({"resourceType": "Group", "created": stamp.created,
                    "lastModified": stamp.modified, "location": stamp.location,
                    "version": "W/\"7\""}),
            );
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(&expected).expect("json")
            );
        }
        let doc = obj(
            json!({"userName": "u", "groups": [{"value": "g"}], "schemas": ["x"],
            "zz": 1, ENTERPRISE_URN: {"department": "D"}}),
        );
        let schemas = expected_schemas(&doc, ResourceKind::User);
        let mut out = Vec::new();
        write_stamped(&mut out, &doc, ResourceKind::User, &stamp, Some(&schemas)).expect("writes");
        let written: Map<String, Value> = serde_json::from_slice(&out).expect("json");
        assert_eq!(written["schemas"], json!([USER_URN, ENTERPRISE_URN]));
        assert!(written.get("groups").is_none());
        assert_eq!(
            (&written["userName"], &written["zz"]),
            (&json!("u"), &json!(1))
        );
        assert_eq!(
            serde_json::to_vec(&written).expect("json"),
            out,
            "sorted key order"
        );
        // is_normal spots what prepare would change
        assert!(is_normal(&doc, ResourceKind::User));
        for changed in [
            json!({"UserName": "u"}),
            json!({"active": "true"}),
            json!({ENTERPRISE_URN: {}}),
            json!({"emails": [{"primary": "True"}]}),
        ] {
            assert!(!is_normal(&obj(changed), ResourceKind::User));
        }
        let dup = obj(json!({"members": [{"value": "a"}, {"value": "a"}]}));
        assert!(!is_normal(&dup, ResourceKind::Group));
    }

    // Weak comparison and lists in If-Match.
    #[test]
    fn etags() {
        assert_eq!(etag(3), "W/\"3\"");
        assert!(etag_matches("W/\"3\"", 3));
        assert!(etag_matches("\"3\"", 3));
        assert!(etag_matches("*", 9));
        assert!(etag_matches("W/\"1\", W/\"3\"", 3));
        assert!(!etag_matches("W/\"4\"", 3));
        assert_eq!(
            parse_version(&obj(json!({"meta": {"version": "W/\"12\""}}))),
            Some(12)
        );
    }

    // attributes keeps id/schemas plus what was asked; excludedAttributes removes.
    #[test]
    fn projection() {
        let doc = obj(json!({
            "schemas": [USER_URN, ENTERPRISE_URN], "id": "1", "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            "meta": {"version": "W/\"1\""},
            ENTERPRISE_URN: {"department": "Ops", "employeeNumber": "7"}
        }));
        let p = Projection::from_params(
            Some(&format!(
                "userName,name.givenName,emails.value,emails.type,{ENTERPRISE_URN}:department"
            )),
            None,
        )
        .expect("valid")
        .expect("some");
        let out = Value::Object(p.apply(&doc, ResourceKind::User));
        assert_eq!(
            out,
            json!({
                "schemas": [USER_URN, ENTERPRISE_URN], "id": "1", "userName": "a",
                "name": {"givenName": "A"},
                "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
                ENTERPRISE_URN: {"department": "Ops"}
            })
        );
        let p = Projection::from_params(
            None,
            Some(&format!("emails,name.familyName,id,{ENTERPRISE_URN}")),
        )
        .expect("valid")
        .expect("some");
        let out = Value::Object(p.apply(&doc, ResourceKind::User));
        assert!(out.get("emails").is_none() && out.get(ENTERPRISE_URN).is_none());
        assert_eq!(out["name"], json!({"givenName": "A"}));
        assert_eq!(out["id"], "1");
        assert!(Projection::from_params(Some("bad path!"), None).is_err());
        assert_eq!(
            Projection::from_params(Some(""), Some("")).expect("ok"),
            None
        );
    }
}
