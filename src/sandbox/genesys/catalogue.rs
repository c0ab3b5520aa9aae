//! The simulator's permission catalogue, and what the server does to a role's permission
//! policies when one is written (docs/genesys.md §4):
//!
//! - **Wildcard expansion.** Since the June 2026 wildcard deprecation Genesys Cloud expands
//!   wildcards in a written role into explicit permissions (the Genesys Terraform provider,
//!   `auth_role` utils, suppresses the perpetual diff this causes). The simulator does the
//!   same: an unconditional policy whose `entityName` or `actionSet` holds `*` is replaced by
//!   the explicit `(domain, entity, actions)` of [`CATALOGUE`] it matches. A domain `*`
//!   (written as `*` or `*:*:*` in YAML) expands into the whole catalogue: UNCONFIRMED that the
//!   real API accepts it; a refusal there would be a loud 400 naming the role, while a
//!   perpetual diff is silent, so the simulator models the silent case. A wildcard that
//!   matches nothing in the catalogue is refused (400), the pessimistic reading.
//! - **Backfill.** Genesys adds newly released permissions to existing roles that hold a
//!   related one (help centre, "Automatically backfill roles with new permissions"). The
//!   simulator's one rule, [`BACKFILL`]: a role that holds `routing:queue:view` is given
//!   `routing:queueMember:view`, once per role (a later write that leaves it out removes it).
//! - Policies with conditions (`resourceConditionNode`, `namedResources`, `allowConditions`)
//!   are stored verbatim; explicit permissions outside the catalogue are stored as written.
//!
//! The catalogue is small and invented from names the example org and the docs use; it is
//! not Genesys's list (`GET /api/v2/authorization/permissions` on a real org).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// `(domain, entity, actions)`: every permission the simulator knows.
pub(super) const CATALOGUE: &[(&str, &str, &[&str])] = &[
    ("analytics", "conversationDetail", &["view"]),
    ("analytics", "queueObservation", &["view"]),
    ("analytics", "userObservation", &["view"]),
    ("authorization", "grant", &["add", "delete", "view"]),
    ("authorization", "role", &["add", "delete", "edit", "view"]),
    (
        "conversation",
        "call",
        &["accept", "coach", "monitor", "record"],
    ),
    ("conversation", "email", &["accept"]),
    ("conversation", "message", &["accept"]),
    ("conversation", "wrapup", &["add"]),
    ("directory", "group", &["add", "delete", "edit", "view"]),
    ("directory", "organization", &["delete", "edit"]),
    (
        "directory",
        "user",
        &["add", "delete", "edit", "setPassword", "view"],
    ),
    ("oauth", "client", &["add", "delete", "edit", "view"]),
    ("quality", "evaluation", &["add", "edit", "view"]),
    ("recording", "recording", &["view"]),
    ("reporting", "dashboard", &["view"]),
    ("routing", "agent", &["onqueue"]),
    ("routing", "language", &["assign"]),
    ("routing", "queue", &["edit", "join", "view"]),
    ("routing", "queueMember", &["view"]),
    ("routing", "skill", &["assign"]),
    ("routing", "wrapupCode", &["view"]),
    ("telephony", "extension", &["assign"]),
    ("wfm", "agentSchedule", &["view"]),
    ("wfm", "forecast", &["edit"]),
    ("wfm", "schedule", &["edit"]),
];

/// `(held, added)`: a role holding the first permission is given the second.
pub(super) const BACKFILL: (&str, &str) = ("routing:queue:view", "routing:queueMember:view");

/// Whether a policy carries conditions or named resources, which the simulator keeps as
/// written.
pub(super) fn conditional(policy: &Value) -> bool {
    policy
        .get("resourceConditionNode")
        .is_some_and(|n| !n.is_null())
        || policy
            .get("namedResources")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.is_empty())
        || policy.get("allowConditions").and_then(Value::as_bool) == Some(true)
}

fn segment_matches(pattern: &str, name: &str) -> bool {
    pattern == "*" || pattern.eq_ignore_ascii_case(name)
}

/// The catalogue's explicit permissions that `(domain, entity, action)` matches.
fn matching(domain: &str, entity: &str, action: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (d, e, actions) in CATALOGUE {
        if segment_matches(domain, d) && segment_matches(entity, e) {
            for a in *actions {
                if segment_matches(action, a) {
                    out.push(((*d).to_owned(), (*e).to_owned(), (*a).to_owned()));
                }
            }
        }
    }
    out
}

/// The policies stored for written ones: conditional policies as written; the others
/// regrouped per `(domain, entity)` with wildcards expanded. `Err` names a wildcard that
/// matches nothing.
pub(super) fn expand(policies: &[Value]) -> Result<Vec<Value>, String> {
    let mut plain: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut kept = Vec::new();
    for policy in policies {
        if conditional(policy) {
            kept.push(policy.clone());
            continue;
        }
        let text = |key: &str| {
            policy
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (domain, entity) = (text("domain"), text("entityName"));
        let actions = policy
            .get("actionSet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for action in actions {
            if [domain.as_str(), entity.as_str(), action].contains(&"*") {
                let found = matching(&domain, &entity, action);
                if found.is_empty() {
                    return Err(format!(
                        "permission {domain}:{entity}:{action} matches no known permission"
                    ));
                }
                for (d, e, a) in found {
                    plain.entry((d, e)).or_default().insert(a);
                }
            } else {
                plain
                    .entry((domain.clone(), entity.clone()))
                    .or_default()
                    .insert(action.to_owned());
            }
        }
    }
    let mut out: Vec<Value> = plain
        .into_iter()
        .map(|((domain, entity), actions)| {
            json!({"domain": domain, "entityName": entity, "actionSet": actions})
        })
        .collect();
    out.extend(kept);
    Ok(out)
}

/// Adds the [`BACKFILL`] permission to (expanded) policies that hold its trigger and lack
/// it; whether it was added.
pub(super) fn backfill(policies: &mut Vec<Value>) -> bool {
    let split = |p: &'static str| {
        let mut it = p.splitn(3, ':');
        (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
        )
    };
    let holds = |policies: &[Value], (d, e, a): (&str, &str, &str)| {
        policies.iter().any(|p| {
            !conditional(p)
                && p.get("domain").and_then(Value::as_str) == Some(d)
                && p.get("entityName").and_then(Value::as_str) == Some(e)
                && p.get("actionSet")
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|x| x.as_str() == Some(a)))
        })
    };
    let (held, added) = (split(BACKFILL.0), split(BACKFILL.1));
    if !holds(policies, held) || holds(policies, added) {
        return false;
    }
    policies.push(json!({"domain": added.0, "entityName": added.1, "actionSet": [added.2]}));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    // Entity and action wildcards expand into the catalogue, explicit permissions merge into
    // the same policy, conditional policies stay as written, and an unknown wildcard fails.
    #[test]
    fn expansion() {
        let written = [
            json!({"domain": "routing", "entityName": "queue", "actionSet": ["*"]}),
            json!({"domain": "routing", "entityName": "queue", "actionSet": ["custom"]}),
            json!({"domain": "wfm", "entityName": "*", "actionSet": ["edit"]}),
            json!({"domain": "directory", "entityName": "user", "actionSet": ["view"],
                   "resourceConditionNode": {"variableName": "x"}}),
        ];
        let stored = expand(&written).expect("expands");
        assert_eq!(
            stored,
            [
                json!({"domain": "routing", "entityName": "queue",
                       "actionSet": ["custom", "edit", "join", "view"]}),
                json!({"domain": "wfm", "entityName": "forecast", "actionSet": ["edit"]}),
                json!({"domain": "wfm", "entityName": "schedule", "actionSet": ["edit"]}),
                written[3].clone(),
            ]
        );
        let all = expand(&[json!({"domain": "*", "entityName": "*", "actionSet": ["*"]})])
            .expect("everything");
        assert_eq!(all.len(), CATALOGUE.len());
        assert!(
            expand(&[json!({"domain": "nosuch", "entityName": "*", "actionSet": ["*"]})]).is_err()
        );
    }

    // The backfill rule adds its permission once, only to holders of the trigger.
    #[test]
    fn backfill_rule() {
        let mut p =
            vec![json!({"domain": "routing", "entityName": "queue", "actionSet": ["view"]})];
        assert!(backfill(&mut p));
        assert!(!backfill(&mut p), "already there");
        assert_eq!(p[1]["entityName"], "queueMember");
        let mut none =
            vec![json!({"domain": "routing", "entityName": "queue", "actionSet": ["join"]})];
        assert!(!backfill(&mut none));
    }
}
