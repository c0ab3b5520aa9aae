//! PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` body and applying its operations to one
//! resource's JSON. The caller hands in a copy and keeps it only if every operation succeeds,
//! which makes a PATCH atomic. Behaviour follows the third-party peer where the RFC leaves room:
//! a value filter that matches nothing is `noTarget` for add/replace and a no-op for remove; a
//! `remove` carrying a `value` is refused (`invalidValue`); a remove without a path is
//! `noTarget`; touching `id` is `mutability`.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{AttrPath, Filter, get_ci};
use super::resource::{
    KNOWN_EXTENSIONS, ResourceKind, canonical, get_ci_mut, insert_ci, is_urn, key_ci, remove_ci,
};

/// The three PATCH operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Add,
    Replace,
    Remove,
}

/// One operation, syntactically checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PatchOp {
    pub(crate) kind: OpKind,
    pub(crate) path: Option<String>,
    pub(crate) value: Option<Value>,
}

/// Reads a `PatchOp` request body. `schemas` is not required (the peer accepts its absence);
/// `Operations` is matched case-insensitively.
pub(crate) fn parse_body(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body must be a JSON object",
        ));
    };
    let Some(Value::Array(ops)) = get_ci(map, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body needs an Operations array",
        ));
    };
    ops.iter()
        .map(|op| {
            let Value::Object(op) = op else {
                return Err(ScimError::invalid_syntax(
                    "each operation must be an object",
                ));
            };
            let kind = match get_ci(op, "op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("replace") => OpKind::Replace,
                Some("remove") => OpKind::Remove,
                Some(other) => {
                    return Err(ScimError::invalid_value(format!(
                        "unknown PATCH op `{other}`"
                    )));
                }
                None => return Err(ScimError::invalid_value("each operation needs an op")),
            };
            let path = match get_ci(op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(p.trim().to_owned()),
                Some(_) => return Err(ScimError::invalid_path("path must be a string")),
            };
            let value = get_ci(op, "value").filter(|v| !v.is_null()).cloned();
            Ok(PatchOp { kind, path, value })
        })
        .collect()
}

/// Applies `ops` in order to `doc`. On error `doc` may be half-changed: callers work on a copy.
pub(crate) fn apply(
    doc: &mut Map<String, Value>,
    ops: &[PatchOp],
    kind: ResourceKind,
) -> Result<(), ScimError> {
    for op in ops {
        apply_op(doc, op, kind)?;
    }
    Ok(())
}

/// Where a PATCH path points.
#[derive(Debug)]
enum Target {
    /// A whole schema: `None` for the core schema (the resource itself), or an extension key.
    Schema(Option<String>),
    /// An attribute, optionally narrowed to the values matching a filter; with a filter, `sub`
    /// applies to each matching value.
    Attr {
        path: AttrPath,
        filter: Option<Box<Filter>>,
    },
}

fn parse_path(
    text: &str,
    doc: &Map<String, Value>,
    kind: ResourceKind,
) -> Result<Target, ScimError> {
    let bad = || ScimError::invalid_path(format!("invalid path `{text}`"));
    if let Some(open) = text.find('[') {
        let bytes = text.as_bytes();
        let mut i = open + 1;
        let close = loop {
            match bytes.get(i) {
                None => return Err(bad()),
                Some(b'"') => i = super::filter::string_end(bytes, i).ok_or_else(bad)? + 1,
                Some(b']') => break i,
                Some(_) => i += 1,
            }
        };
        let mut path = AttrPath::parse(&text[..open]).ok_or_else(bad)?;
        if path.sub.is_some() {
            return Err(bad());
        }
        let filter = Filter::parse(&text[open + 1..close])?;
        let after = &text[close + 1..];
        if !after.is_empty() {
            let sub = after.strip_prefix('.').ok_or_else(bad)?;
            let check = AttrPath::parse(sub).ok_or_else(bad)?;
            if check.urn.is_some() || check.sub.is_some() {
                return Err(bad());
            }
            path.sub = Some(check.attr);
        }
        return Ok(Target::Attr {
            path,
            filter: Some(Box::new(filter)),
        });
    }
    if is_urn(text) {
        if text.eq_ignore_ascii_case(kind.core_urn()) {
            return Ok(Target::Schema(None));
        }
        if let Some(key) = schema_key(text, doc) {
            return Ok(Target::Schema(Some(key)));
        }
    }
    let path = AttrPath::parse(text).ok_or_else(bad)?;
    Ok(Target::Attr { path, filter: None })
}

/// If `text` names an extension schema (known to the sandbox, present in the resource or
/// listed in its `schemas`), the key to store it under.
fn schema_key(text: &str, doc: &Map<String, Value>) -> Option<String> {
    if let Some(key) = key_ci(doc, text) {
        return Some(key);
    }
    if KNOWN_EXTENSIONS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(text))
    {
        return Some(canonical(text).to_owned());
    }
    let listed = doc.get("schemas").and_then(Value::as_array)?;
    listed
        .iter()
        .filter_map(Value::as_str)
        .find(|s| s.eq_ignore_ascii_case(text))
        .map(str::to_owned)
}

fn apply_op(
    doc: &mut Map<String, Value>,
    op: &PatchOp,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    match &op.path {
        None if op.kind == OpKind::Remove => Err(ScimError::no_target("remove needs a path")),
        None => {
            let Some(Value::Object(values)) = &op.value else {
                return Err(ScimError::invalid_value(
                    "add/replace without a path needs an object value",
                ));
            };
            for (key, value) in values {
                apply_keyed(doc, op.kind, key, value, kind)?;
            }
            Ok(())
        }
        Some(text) => {
            if op.kind == OpKind::Remove && op.value.is_some() {
                return Err(ScimError::invalid_value(
                    "a remove operation carries no value",
                ));
            }
            let target = parse_path(text, doc, kind)?;
            apply_target(doc, op.kind, &target, op.value.as_ref(), kind)
        }
    }
}

/// One key of a path-less add/replace value: a plain or dotted attribute, a URN-qualified
/// attribute, or a whole schema whose object value is applied key by key.
fn apply_keyed(
    doc: &mut Map<String, Value>,
    op: OpKind,
    key: &str,
    value: &Value,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    if ["meta", "groups"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
    {
        return Ok(()); // read-only: ignored, as RFC 7644 §3.5.2 allows for path-less values
    }
    if key.eq_ignore_ascii_case("id") {
        if doc.get("id") == Some(value) {
            return Ok(());
        }
        return Err(ScimError::mutability("id cannot be changed"));
    }
    let target = parse_path(key, doc, kind)
        .map_err(|_| ScimError::invalid_value(format!("`{key}` is not an attribute name")))?;
    apply_target(doc, op, &target, Some(value), kind)
}

fn apply_target(
    doc: &mut Map<String, Value>,
    op: OpKind,
    target: &Target,
    value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    match target {
        Target::Schema(schema) => {
            if op == OpKind::Remove {
                if let Some(key) = schema {
                    remove_ci(doc, key);
                    return Ok(());
                }
                return Err(ScimError::mutability("the core schema cannot be removed"));
            }
            let Some(Value::Object(values)) = value else {
                return Err(ScimError::invalid_value(
                    "a schema path needs an object value",
                ));
            };
            for (key, inner) in values {
                match schema {
                    None => apply_keyed(doc, op, key, inner, kind)?,
                    Some(urn) => {
                        let mut path = AttrPath::parse(key)
                            .filter(|p| p.urn.is_none())
                            .ok_or_else(|| {
                                ScimError::invalid_value(format!(
                                    "`{key}` is not an attribute name"
                                ))
                            })?;
                        path.urn = Some(urn.clone());
                        apply_target(
                            doc,
                            op,
                            &Target::Attr { path, filter: None },
                            Some(inner),
                            kind,
                        )?;
                    }
                }
            }
            Ok(())
        }
        Target::Attr { path, filter } => {
            check_mutability(path, kind)?;
            match filter {
                None => match op {
                    OpKind::Remove => {
                        remove_attr(doc, path, kind);
                        Ok(())
                    }
                    OpKind::Add | OpKind::Replace => {
                        let value = value
                            .ok_or_else(|| ScimError::invalid_value("add/replace needs a value"))?;
                        set_attr(doc, op, path, value.clone(), kind)
                    }
                },
                Some(filter) => apply_filtered(doc, op, path, filter, value, kind),
            }
        }
    }
}

fn check_mutability(path: &AttrPath, kind: ResourceKind) -> Result<(), ScimError> {
    if path.is_core(kind.core_urn()) {
        for read_only in ["id", "meta"] {
            if path.attr.eq_ignore_ascii_case(read_only) {
                return Err(ScimError::mutability(format!(
                    "{read_only} cannot be changed"
                )));
            }
        }
        if kind == ResourceKind::User && path.attr.eq_ignore_ascii_case("groups") {
            return Err(ScimError::mutability(
                "groups is read-only; change the group's members",
            ));
        }
    }
    Ok(())
}

/// The object holding `path`'s attribute; extensions are created on demand when `create`.
fn container_mut<'a>(
    doc: &'a mut Map<String, Value>,
    path: &AttrPath,
    kind: ResourceKind,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, ScimError> {
    if path.is_core(kind.core_urn()) {
        return Ok(Some(doc));
    }
    let urn = path.urn.as_deref().unwrap_or_default();
    let key = match key_ci(doc, urn) {
        Some(key) => key,
        None if create => {
            let key = canonical(urn).to_owned();
            doc.insert(key.clone(), Value::Object(Map::new()));
            key
        }
        None => return Ok(None),
    };
    match doc.get_mut(&key) {
        Some(Value::Object(map)) => Ok(Some(map)),
        _ => Err(ScimError::invalid_value(format!("{key} is not an object"))),
    }
}

/// add/replace without a value filter.
fn set_attr(
    doc: &mut Map<String, Value>,
    op: OpKind,
    path: &AttrPath,
    value: Value,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    let Some(container) = container_mut(doc, path, kind, true)? else {
        return Ok(());
    };
    let attr = path.attr.as_str();
    if let Some(sub) = &path.sub {
        return match get_ci_mut(container, attr) {
            None | Some(Value::Null) => {
                let mut inner = Map::new();
                inner.insert(sub.clone(), value);
                insert_ci(container, attr, Value::Object(inner));
                Ok(())
            }
            Some(Value::Object(inner)) => {
                insert_ci(inner, sub, value);
                Ok(())
            }
            Some(Value::Array(_)) => Err(ScimError::invalid_path(format!(
                "{attr} is multi-valued: select values with a filter, \
                 as in {attr}[type eq \"work\"].{sub}"
            ))),
            Some(_) => Err(ScimError::invalid_path(format!(
                "{attr} has no sub-attributes"
            ))),
        };
    }
    match (get_ci_mut(container, attr), value) {
        (Some(Value::Array(existing)), value) if op == OpKind::Add => {
            append(existing, value, attr);
            Ok(())
        }
        (Some(Value::Object(existing)), Value::Object(values)) => {
            // RFC 7644 §3.5.2.1/3: sub-attributes given replace, the others stay.
            for (key, v) in values {
                insert_ci(existing, &key, v);
            }
            Ok(())
        }
        (_, value) => {
            insert_ci(container, attr, value);
            Ok(())
        }
    }
}

/// Adds values to a multi-valued attribute: identical values are not duplicated, members with
/// the same `value` count as identical, and a new `primary` value demotes the old one
/// (RFC 7644 §3.5.2).
fn append(existing: &mut Vec<Value>, value: Value, attr: &str) {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let by_value = attr.eq_ignore_ascii_case("members");
    for item in items {
        let duplicate = if by_value {
            // Same value and, where both say it, the same type: ids may be unique only per
            // resource type (`integer-ids`), so user 1 and group 1 are two members.
            let key = item.get("value");
            let kind = |m: &Value| m.get("type").and_then(Value::as_str).map(str::to_lowercase);
            key.is_some()
                && existing.iter().any(|e| {
                    e.get("value") == key
                        && (kind(e).is_none() || kind(&item).is_none() || kind(e) == kind(&item))
                })
        } else {
            existing.contains(&item)
        };
        if duplicate {
            continue;
        }
        if item.get("primary").and_then(Value::as_bool) == Some(true) {
            for other in existing.iter_mut() {
                if let Some(flag) = other.as_object_mut().and_then(|o| o.get_mut("primary")) {
                    *flag = Value::Bool(false);
                }
            }
        }
        existing.push(item);
    }
}

fn remove_attr(doc: &mut Map<String, Value>, path: &AttrPath, kind: ResourceKind) {
    let Ok(Some(container)) = container_mut(doc, path, kind, false) else {
        return;
    };
    match &path.sub {
        None => {
            remove_ci(container, &path.attr);
        }
        Some(sub) => match get_ci_mut(container, &path.attr) {
            Some(Value::Object(inner)) => {
                remove_ci(inner, sub);
                if inner.is_empty() {
                    remove_ci(container, &path.attr);
                }
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

/// Operations on `attr[filter]` and `attr[filter].sub`.
fn apply_filtered(
    doc: &mut Map<String, Value>,
    op: OpKind,
    path: &AttrPath,
    filter: &Filter,
    value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    let attr = path.attr.as_str();
    let no_match = || ScimError::no_target(format!("no value of {attr} matches the filter"));
    let container = container_mut(doc, path, kind, false)?;
    let items = match container.and_then(|c| get_ci_mut(c, attr)) {
        Some(Value::Array(items)) => items,
        _ if op == OpKind::Remove => return Ok(()),
        _ => return Err(no_match()),
    };
    let matching: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| filter.matches_element(item, attr))
        .map(|(i, _)| i)
        .collect();
    if matching.is_empty() {
        return if op == OpKind::Remove {
            Ok(())
        } else {
            Err(no_match())
        };
    }
    match (op, &path.sub) {
        (OpKind::Remove, None) => {
            let mut index = 0;
            items.retain(|_| {
                let keep = !matching.contains(&index);
                index += 1;
                keep
            });
            if items.is_empty()
                && let Ok(Some(container)) = container_mut(doc, path, kind, false)
            {
                remove_ci(container, attr);
            }
        }
        (OpKind::Remove, Some(sub)) => {
            for &i in &matching {
                if let Some(item) = items[i].as_object_mut() {
                    remove_ci(item, sub);
                }
            }
        }
        (OpKind::Add | OpKind::Replace, Some(sub)) => {
            let value =
                value.ok_or_else(|| ScimError::invalid_value("add/replace needs a value"))?;
            let demote = sub.eq_ignore_ascii_case("primary") && value.as_bool() == Some(true);
            for (i, item) in items.iter_mut().enumerate() {
                let Some(item) = item.as_object_mut() else {
                    continue;
                };
                if matching.contains(&i) {
                    insert_ci(item, sub, value.clone());
                } else if demote && let Some(flag) = item.get_mut("primary") {
                    *flag = Value::Bool(false);
                }
            }
        }
        (OpKind::Add | OpKind::Replace, None) => {
            let Some(Value::Object(values)) = value else {
                return Err(ScimError::invalid_value(format!(
                    "values of {attr} are objects"
                )));
            };
            for &i in &matching {
                if op == OpKind::Replace {
                    // RFC 7644 §3.5.2.3: "all matching record values SHALL be replaced".
                    items[i] = Value::Object(values.clone());
                } else if let Some(item) = items[i].as_object_mut() {
                    for (key, v) in values {
                        insert_ci(item, key, v.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sandbox::resource::{ENTERPRISE_URN, GENESYS_URN, USER_URN, normalize};

    fn user() -> Map<String, Value> {
        let v = json!({
            "schemas": [USER_URN],
            "id": "u1",
            "userName": "alice",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [
                {"value": "a@work", "type": "work", "primary": true},
                {"value": "a@home", "type": "home"}
            ]
        });
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn run(doc: &mut Map<String, Value>, ops: Value) -> Result<(), ScimError> {
        let body = Value::Object(Map::from_iter([("Operations".to_owned(), ops)]));
        let ops = parse_body(&body)?;
        apply(doc, &ops, ResourceKind::User)?;
        normalize(doc, ResourceKind::User);
        Ok(())
    }

    fn patched(ops: Value) -> Value {
        let mut doc = user();
        run(&mut doc, ops).expect("patch applies");
        Value::Object(doc)
    }

    fn refused(ops: Value) -> ScimError {
        let mut doc = user();
        run(&mut doc, ops).expect_err("patch refused")
    }

    // add: simple, complex merge, multi-valued append without duplicates, primary demotion.
    #[test]
    fn add() {
        let doc = patched(json!([{"op": "add", "path": "title", "value": "Queen"}]));
        assert_eq!(doc["title"], "Queen");
        let doc = patched(json!([{"op": "Add", "path": "name", "value": {"middleName": "P"}}]));
        assert_eq!(
            doc["name"],
            json!({"givenName": "Alice", "familyName": "Liddell", "middleName": "P"})
        );
        let doc = patched(json!([{"op": "add", "path": "emails", "value": [
            {"value": "a@home", "type": "home"},
            {"value": "a@new", "type": "other", "primary": true}]}]));
        let emails = doc["emails"].as_array().expect("array");
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[0]["primary"], false);
        assert_eq!(emails[2]["primary"], true);
        let doc = patched(json!([{"op": "add", "path": "name.honorificPrefix", "value": "Ms"}]));
        assert_eq!(doc["name"]["honorificPrefix"], "Ms");
        let doc =
            patched(json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "+1"}]}]));
        assert_eq!(doc["phoneNumbers"], json!([{"value": "+1"}]));
    }

    // replace: attribute, sub-attribute, value filter with and without sub, whole multi-valued.
    #[test]
    fn replace() {
        let doc = patched(json!([{"op": "replace", "path": "active", "value": "False"}]));
        assert_eq!(doc["active"], false);
        let doc = patched(json!([{"op": "REPLACE", "path": "name.givenName", "value": "Al"}]));
        assert_eq!(doc["name"]["givenName"], "Al");
        assert_eq!(doc["name"]["familyName"], "Liddell");
        let doc = patched(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@work"}]),
        );
        assert_eq!(
            doc["emails"][0],
            json!({"value": "x@work", "type": "work", "primary": true})
        );
        let doc = patched(
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h", "type": "home"}}]),
        );
        assert_eq!(doc["emails"][1], json!({"value": "h", "type": "home"}));
        let doc =
            patched(json!([{"op": "replace", "path": "emails", "value": [{"value": "only"}]}]));
        assert_eq!(doc["emails"], json!([{"value": "only"}]));
        let doc = patched(
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        );
        assert_eq!(doc["emails"][0]["primary"], false);
        assert_eq!(doc["emails"][1]["primary"], true);
    }

    // remove: attribute, sub-attribute, filtered values, filtered sub, missing attribute.
    #[test]
    fn remove() {
        let doc = patched(json!([{"op": "remove", "path": "active"}]));
        assert!(doc.get("active").is_none());
        let doc = patched(json!([{"op": "remove", "path": "name.givenName"}]));
        assert_eq!(doc["name"], json!({"familyName": "Liddell"}));
        let doc = patched(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
        assert_eq!(doc["emails"].as_array().map(Vec::len), Some(1));
        let doc = patched(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
        assert!(doc["emails"][0].get("primary").is_none());
        let doc = patched(json!([{"op": "remove", "path": "emails[type eq \"nope\"]"}]));
        assert_eq!(doc["emails"].as_array().map(Vec::len), Some(2));
        let doc = patched(json!([{"op": "remove", "path": "nickName"}]));
        assert_eq!(
            doc,
            Value::Object({
                let mut u = user();
                normalize(&mut u, ResourceKind::User);
                u
            })
        );
        let doc = patched(json!([{"op": "remove", "path": "emails[type ne \"x\"]"}]));
        assert!(doc.get("emails").is_none());
    }

    // Path-less values with plain, dotted, URN-qualified and whole-extension keys (Azure AD style).
    #[test]
    fn pathless() {
        let doc = patched(json!([{"op": "replace", "value": {
            "displayName": "Alice L", "name.familyName": "L",
            (format!("{ENTERPRISE_URN}:costCenter")): "CC1",
            GENESYS_URN: {"routingSkills": [{"name": "Sales", "proficiency": 2}]}
        }}]));
        assert_eq!(doc["displayName"], "Alice L");
        assert_eq!(doc["name"]["familyName"], "L");
        assert_eq!(doc[ENTERPRISE_URN]["costCenter"], "CC1");
        assert_eq!(doc[GENESYS_URN]["routingSkills"][0]["name"], "Sales");
        assert_eq!(
            doc["schemas"],
            json!([USER_URN, ENTERPRISE_URN, GENESYS_URN])
        );
        let doc =
            patched(json!([{"op": "add", "value": {"emails": [{"value": "n@x"}], "id": "u1"}}]));
        assert_eq!(doc["emails"].as_array().map(Vec::len), Some(3));
    }

    // URN paths, extension value filters and removing a whole extension.
    #[test]
    fn extension_paths() {
        let doc = patched(json!([
            {"op": "add", "path": format!("{ENTERPRISE_URN}:department"), "value": "Ops"},
            {"op": "add", "path": format!("{ENTERPRISE_URN}:manager.value"), "value": "boss"},
            {"op": "add", "path": GENESYS_URN, "value": {"routingSkills": [
                {"name": "Sales", "proficiency": 1}, {"name": "Billing", "proficiency": 3}]}},
            {"op": "replace", "path": format!("{GENESYS_URN}:routingSkills[name eq \"Sales\"].proficiency"), "value": 4},
            {"op": "replace", "path": format!("{USER_URN}:title"), "value": "T"}
        ]));
        assert_eq!(
            doc[ENTERPRISE_URN],
            json!({"department": "Ops", "manager": {"value": "boss"}})
        );
        assert_eq!(doc[GENESYS_URN]["routingSkills"][0]["proficiency"], 4);
        assert_eq!(doc["title"], "T");
        let Value::Object(mut d) = doc else {
            unreachable!()
        };
        run(
            &mut d,
            json!([{"op": "remove", "path": ENTERPRISE_URN},
            {"op": "remove", "path": format!("{GENESYS_URN}:routingSkills")}]),
        )
        .expect("removes");
        assert_eq!(d["schemas"], json!([USER_URN]));
        assert!(d.get(ENTERPRISE_URN).is_none() && d.get(GENESYS_URN).is_none());
    }

    // A whole extension sent with its own `schemas` inside (as scim2-models serialises one),
    // with a path or without: the attributes are stored, the stray `schemas` is not (see
    // `resource::normalize`, which every write goes through), and the resource's `schemas`
    // names the extension.
    #[test]
    fn stray_schemas_inside_an_extension_value_are_not_stored() {
        let value =
            json!({"schemas": [GENESYS_URN], "externalIds": [{"authority": "hr", "value": "7"}]});
        for ops in [
            json!([{"op": "add", "path": GENESYS_URN, "value": value}]),
            json!([{"op": "add", "value": {GENESYS_URN: value}}]),
            json!([{"op": "replace", "path": GENESYS_URN, "value": value}]),
        ] {
            let doc = patched(ops.clone());
            assert_eq!(
                doc[GENESYS_URN],
                json!({"externalIds": [{"authority": "hr", "value": "7"}]}),
                "{ops}"
            );
            assert!(
                doc["schemas"]
                    .as_array()
                    .is_some_and(|s| s.contains(&json!(GENESYS_URN))),
                "{ops}"
            );
        }
    }

    // The refusals the peer makes, with the same scimType.
    #[test]
    fn refusals() {
        let ty = |ops| refused(ops).scim_type;
        assert_eq!(ty(json!([{"op": "remove"}])), Some("noTarget"));
        assert_eq!(
            ty(json!([{"op": "replace", "path": "emails[type eq \"pager\"].value", "value": "x"}])),
            Some("noTarget")
        );
        assert_eq!(
            ty(json!([{"op": "add", "path": "addresses[type eq \"work\"].street", "value": "x"}])),
            Some("noTarget")
        );
        assert_eq!(
            ty(json!([{"op": "replace", "path": "id", "value": "x"}])),
            Some("mutability")
        );
        assert_eq!(
            ty(json!([{"op": "replace", "value": {"id": "other"}}])),
            Some("mutability")
        );
        assert_eq!(
            ty(json!([{"op": "move", "path": "x"}])),
            Some("invalidValue")
        );
        assert_eq!(
            ty(json!([{"op": "remove", "path": "emails", "value": [{"value": "a@home"}]}])),
            Some("invalidValue")
        );
        assert_eq!(
            ty(json!([{"op": "add", "path": "emails.value", "value": "x"}])),
            Some("invalidPath")
        );
        assert_eq!(
            ty(json!([{"op": "add", "path": "bad path", "value": "x"}])),
            Some("invalidPath")
        );
        assert_eq!(
            ty(json!([{"op": "add", "path": "emails[type eq]", "value": "x"}])),
            Some("invalidFilter")
        );
        assert_eq!(
            ty(json!([{"op": "add", "path": "title"}])),
            Some("invalidValue")
        );
        assert_eq!(
            ty(json!([{"op": "replace", "value": "not an object"}])),
            Some("invalidValue")
        );
        assert!(parse_body(&json!({"ops": []})).is_err());
    }

    // Group members: add dedups by value, filter remove, replace of the whole list.
    #[test]
    fn members() {
        let Value::Object(mut group) = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "g",
            "members": [{"value": "a"}]
        }) else {
            unreachable!()
        };
        let ops = parse_body(&json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": "a", "display": "A"}, {"value": "b"}]},
            {"op": "remove", "path": "members[value eq \"a\"]"},
            {"op": "add", "value": {"members": [{"value": "c"}]}}
        ]}))
        .expect("parses");
        apply(&mut group, &ops, ResourceKind::Group).expect("applies");
        assert_eq!(group["members"], json!([{"value": "b"}, {"value": "c"}]));
    }
}
