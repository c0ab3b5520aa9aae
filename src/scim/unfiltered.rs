//! PATCH without value-filter paths, for servers that refuse them.
//!
//! RFC 7644 §3.5.2 lets a PATCH path pick values of a multi-valued attribute with a filter
//! (`members[value eq "2819c223"]`, `emails[type eq "work"]`), and scimctl uses that form to
//! remove a member or change one email. Some servers answer such a path with 501 (or 400) and
//! roll back the whole request, so a member could never be removed. After the first such
//! refusal the client rewrites every PATCH of the run into the forms those servers take
//! ([`without_value_filters`]): member removals become one `remove` of `members` with the
//! members as its value (the form Entra ID sends), and any other filtered change to an
//! attribute becomes one `replace` of that attribute's whole list, computed from the resource
//! as it is now. The request's other operations are kept, in order.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::wire::{PatchOpKind, PatchOperation};

/// Whether any of `ops` has a value-filter path.
pub(super) fn has_value_filter(ops: &[PatchOperation]) -> bool {
    ops.iter()
        .any(|op| op.path.as_deref().is_some_and(|p| p.contains('[')))
}

/// Whether `error` is a server refusing a PATCH's path form: 501, or 400 that blames the
/// path, the filter or the syntax (not a value, a uniqueness or a mutability).
pub(super) fn refused_filter(error: &ScimError) -> bool {
    match error.status().map(|s| s.as_u16()) {
        Some(501) => true,
        Some(400) => matches!(
            error.scim_type(),
            None | Some("invalidPath" | "invalidFilter" | "invalidSyntax")
        ),
        _ => false,
    }
}

/// Whether rewriting `ops` needs the resource as it is (a filtered change other than a
/// member removal).
pub(super) fn needs_current(ops: &[PatchOperation]) -> bool {
    ops.iter().any(|op| {
        let Some(path) = op.path.as_deref().and_then(FilteredPath::parse) else {
            return false;
        };
        !(path.is_member() && op.op == PatchOpKind::Remove && path.sub.is_none())
    })
}

/// A path `attr[filter]` or `attr[filter].sub` whose filter is `name eq literal`, possibly
/// joined by `and` (the only filters scimctl writes).
#[derive(Debug, PartialEq)]
struct FilteredPath {
    attr: String,
    terms: Vec<(String, Value)>,
    sub: Option<String>,
}

impl FilteredPath {
    fn parse(path: &str) -> Option<FilteredPath> {
        let open = path.find('[')?;
        let close = path.rfind(']')?;
        let attr = path[..open].trim().to_owned();
        let sub = path[close + 1..]
            .strip_prefix('.')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let mut rest = path[open + 1..close].trim();
        let mut terms = Vec::new();
        loop {
            let (name, after) = rest.split_once(char::is_whitespace)?;
            let after = after.trim_start().strip_prefix("eq")?.trim_start();
            let mut stream = serde_json::Deserializer::from_str(after).into_iter::<Value>();
            let literal = stream.next()?.ok()?;
            let used = stream.byte_offset();
            terms.push((name.to_owned(), literal));
            rest = after[used..].trim_start();
            if rest.is_empty() {
                break;
            }
            rest = rest.strip_prefix("and")?.trim_start();
        }
        Some(FilteredPath { attr, terms, sub })
    }

    fn is_member(&self) -> bool {
        self.attr.eq_ignore_ascii_case("members")
    }

    /// Whether `item` (one value of the attribute) passes the filter; strings compare
    /// case-insensitively, as the attributes scimctl filters on are not case-exact.
    fn matches(&self, item: &Value) -> bool {
        let Some(item) = item.as_object() else {
            return false;
        };
        self.terms
            .iter()
            .all(|(name, want)| match (get_ci(item, name), want) {
                (Some(Value::String(have)), Value::String(want)) => have.eq_ignore_ascii_case(want),
                (Some(have), want) => have == want,
                (None, _) => false,
            })
    }
}

fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The attribute an operation changes (`emails`, `urn:...:User:department`), without filter
/// or sub-attribute.
fn attribute_of(path: &str) -> &str {
    match path.find('[') {
        Some(open) => path[..open].trim(),
        None => path.trim(),
    }
}

/// The current values of multi-valued `attr` (`name` or `urn:...:name`) in `resource`.
fn current_values(resource: &Value, attr: &str) -> Vec<Value> {
    let Some(resource) = resource.as_object() else {
        return Vec::new();
    };
    let found = match attr.rfind(':') {
        Some(colon) if attr.starts_with("urn:") => get_ci(resource, &attr[..colon])
            .and_then(Value::as_object)
            .and_then(|ext| get_ci(ext, &attr[colon + 1..])),
        _ => get_ci(resource, attr),
    };
    match found {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one.clone()],
    }
}

/// `value` as a list of values (an array as is, anything else as one value).
fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one.clone()],
    }
}

/// Applies one operation on `attr` to `list`, its values.
fn fold(list: &mut Vec<Value>, op: &PatchOperation) {
    let path = op.path.as_deref().unwrap_or_default();
    let Some(filtered) = FilteredPath::parse(path) else {
        match op.op {
            PatchOpKind::Add => list.extend(as_list(op.value.as_ref())),
            PatchOpKind::Replace => *list = as_list(op.value.as_ref()),
            PatchOpKind::Remove => list.clear(),
        }
        return;
    };
    match (&filtered.sub, op.op) {
        (None, PatchOpKind::Remove) => list.retain(|item| !filtered.matches(item)),
        (None, PatchOpKind::Add | PatchOpKind::Replace) => {
            let new = op.value.clone().unwrap_or(Value::Null);
            let mut hit = false;
            for item in list.iter_mut().filter(|i| filtered.matches(i)) {
                item.clone_from(&new);
                hit = true;
            }
            if !hit {
                list.push(new);
            }
        }
        (Some(sub), kind) => {
            for item in list.iter_mut() {
                if !filtered.matches(item) {
                    continue;
                }
                let Some(fields) = item.as_object_mut() else {
                    continue;
                };
                fields.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                if kind != PatchOpKind::Remove {
                    fields.insert(sub.clone(), op.value.clone().unwrap_or(Value::Null));
                }
            }
        }
    }
}

/// `ops` with no value-filter path, the same change made to a server that refuses them.
/// `current` is the resource as it is now (JSON; needed when [`needs_current`]).
///
/// Member removals (`members[value eq "x"]`, with or without `and type eq "User"`) become one
/// `remove` of `members` whose value lists them, where the first of them was. Every other
/// attribute with a filtered operation is folded: all its operations, filtered or not, are
/// applied in order to its current values, and one `replace` of the whole list (or a `remove`
/// of the attribute when nothing is left) takes the place of the first. Operations on other
/// attributes stay as they are, in order.
pub(super) fn without_value_filters(
    ops: &[PatchOperation],
    current: Option<&Value>,
) -> Vec<PatchOperation> {
    let member_removal = |op: &PatchOperation| {
        op.op == PatchOpKind::Remove
            && op
                .path
                .as_deref()
                .and_then(FilteredPath::parse)
                .is_some_and(|p| p.is_member() && p.sub.is_none())
    };
    // Attributes (lower case) with a filtered operation other than a member removal.
    let folded: Vec<String> = ops
        .iter()
        .filter(|op| !member_removal(op))
        .filter_map(|op| op.path.as_deref())
        .filter(|p| p.contains('['))
        .map(|p| attribute_of(p).to_ascii_lowercase())
        .collect();
    let mut out: Vec<PatchOperation> = Vec::with_capacity(ops.len());
    let mut removed_members: Option<usize> = None;
    let mut done: Vec<String> = Vec::new();
    for op in ops {
        if member_removal(op) {
            let Some(filtered) = op.path.as_deref().and_then(FilteredPath::parse) else {
                continue;
            };
            let member: Map<String, Value> = filtered.terms.into_iter().collect();
            if let Some(Value::Array(list)) = removed_members.and_then(|at| out[at].value.as_mut())
            {
                list.push(Value::Object(member));
            } else {
                removed_members = Some(out.len());
                out.push(PatchOperation {
                    op: PatchOpKind::Remove,
                    path: Some("members".into()),
                    value: Some(Value::Array(vec![Value::Object(member)])),
                });
            }
            continue;
        }
        let Some(path) = op.path.as_deref() else {
            out.push(op.clone());
            continue;
        };
        let attr = attribute_of(path).to_ascii_lowercase();
        if !folded.contains(&attr) {
            out.push(op.clone());
            continue;
        }
        if done.contains(&attr) {
            continue;
        }
        let name = attribute_of(path);
        let mut list = current.map(|c| current_values(c, name)).unwrap_or_default();
        for same in ops.iter().filter(|o| !member_removal(o)).filter(|o| {
            o.path
                .as_deref()
                .is_some_and(|p| attribute_of(p).eq_ignore_ascii_case(name))
        }) {
            fold(&mut list, same);
        }
        out.push(if list.is_empty() {
            PatchOperation {
                op: PatchOpKind::Remove,
                path: Some(name.to_owned()),
                value: None,
            }
        } else {
            PatchOperation {
                op: PatchOpKind::Replace,
                path: Some(name.to_owned()),
                value: Some(Value::Array(list)),
            }
        });
        done.push(attr);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ops(v: Value) -> Vec<PatchOperation> {
        serde_json::from_value(v).expect("operations")
    }

    #[test]
    fn paths_and_filters_are_read() {
        assert_eq!(
            FilteredPath::parse(r#"members[value eq "a\"b" and type eq "User"]"#),
            Some(FilteredPath {
                attr: "members".into(),
                terms: vec![
                    ("value".into(), json!("a\"b")),
                    ("type".into(), json!("User"))
                ],
                sub: None,
            })
        );
        let sub = FilteredPath::parse(r#"emails[type eq "work"].value"#).expect("parsed");
        assert_eq!(sub.sub.as_deref(), Some("value"));
        assert!(sub.matches(&json!({"type": "WORK", "value": "x"})));
        assert!(!sub.matches(&json!({"type": "home"})));
        assert_eq!(FilteredPath::parse("title"), None);
        assert_eq!(FilteredPath::parse(r#"emails[type co "w"]"#), None);
    }

    /// Member removals become one value-list removal; the other operations stay, in order.
    #[test]
    fn member_removals_become_one_removal_with_a_value_list() {
        let sent = ops(json!([
            {"op": "add", "path": "members", "value": [{"value": "3"}]},
            {"op": "remove", "path": "members[value eq \"1\"]"},
            {"op": "replace", "path": "displayName", "value": "Ops"},
            {"op": "remove", "path": "members[value eq \"2\" and type eq \"Group\"]"},
        ]));
        assert!(!needs_current(&sent));
        let out = serde_json::to_value(without_value_filters(&sent, None)).expect("json");
        assert_eq!(
            out,
            json!([
                {"op": "add", "path": "members", "value": [{"value": "3"}]},
                {"op": "remove", "path": "members",
                 "value": [{"value": "1"}, {"value": "2", "type": "Group"}]},
                {"op": "replace", "path": "displayName", "value": "Ops"},
            ])
        );
    }

    /// A changed or removed email becomes a replace of the whole list, from the user as it is.
    #[test]
    fn other_filtered_changes_replace_the_whole_attribute() {
        let current = json!({
            "userName": "ann",
            "emails": [
                {"value": "ann@old.example", "type": "work", "primary": true},
                {"value": "ann@home.example", "type": "home"},
            ],
            "phoneNumbers": [{"value": "+1", "type": "work"}],
        });
        let sent = ops(json!([
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "replace", "path": "emails[type eq \"work\"]",
             "value": {"value": "ann@new.example", "type": "work", "primary": true}},
            {"op": "remove", "path": "emails[value eq \"ann@home.example\"]"},
            {"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+2"},
        ]));
        assert!(needs_current(&sent));
        let out = serde_json::to_value(without_value_filters(&sent, Some(&current))).expect("json");
        assert_eq!(
            out,
            json!([
                {"op": "replace", "path": "title", "value": "Lead"},
                {"op": "replace", "path": "emails",
                 "value": [{"value": "ann@new.example", "type": "work", "primary": true}]},
                {"op": "replace", "path": "phoneNumbers",
                 "value": [{"value": "+2", "type": "work"}]},
            ])
        );
        // Everything removed: the attribute goes.
        let gone = ops(json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"]"}]));
        assert_eq!(
            serde_json::to_value(without_value_filters(&gone, Some(&current))).expect("json"),
            json!([{"op": "remove", "path": "phoneNumbers"}])
        );
    }

    #[test]
    fn what_counts_as_refusing_the_path() {
        let status = |code: u16, scim_type: Option<&str>| ScimError::Status {
            method: "PATCH".into(),
            path: "/Groups/1".into(),
            status: reqwest::StatusCode::from_u16(code).expect("status"),
            scim_type: scim_type.map(str::to_owned),
            detail: None,
            retry_after: None,
        };
        assert!(refused_filter(&status(501, None)));
        assert!(refused_filter(&status(400, Some("invalidPath"))));
        assert!(refused_filter(&status(400, None)));
        assert!(!refused_filter(&status(400, Some("invalidValue"))));
        assert!(!refused_filter(&status(400, Some("mutability"))));
        assert!(!refused_filter(&status(412, None)));
        assert!(!refused_filter(&status(409, Some("uniqueness"))));
    }
}
