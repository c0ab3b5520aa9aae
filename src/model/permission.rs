//! Permissions: the `domain:entity:action` pattern language, and a role's effective permissions
//! through `inherits` (docs/contract.md §3). Pure functions used by validation, the planner and
//! `explain`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use super::role::Role;
use super::span::Span;

/// A parsed permission pattern: `*`, or three segments `domain:entity:action`, each a name or
/// `*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    segments: [String; 3],
}

/// Why a permission string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// Not `*` and not three `:`-separated segments.
    #[error(
        "expected `domain:entity:action` (each a name or `*`) or `*`, found {segments} segment(s)"
    )]
    Shape {
        /// How many segments were found.
        segments: usize,
    },
    /// A segment is empty or holds characters other than letters, digits, `_`, `-` and `.`.
    #[error("segment {index} (`{segment}`) must be `*` or letters, digits, `_`, `-`, `.`")]
    Segment {
        /// 1-based segment position.
        index: usize,
        /// The offending segment.
        segment: String,
    },
}

impl Permission {
    /// Parses `*` or `domain:entity:action`.
    pub fn parse(text: &str) -> Result<Permission, PermissionError> {
        if text == "*" {
            return Ok(Permission {
                segments: ["*".into(), "*".into(), "*".into()],
            });
        }
        let parts: Vec<&str> = text.split(':').collect();
        let [domain, entity, action] = parts.as_slice() else {
            return Err(PermissionError::Shape {
                segments: parts.len(),
            });
        };
        for (index, segment) in [domain, entity, action].into_iter().enumerate() {
            let valid = *segment == "*"
                || (!segment.is_empty()
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
            if !valid {
                return Err(PermissionError::Segment {
                    index: index + 1,
                    segment: (*segment).to_owned(),
                });
            }
        }
        Ok(Permission {
            segments: [
                (*domain).to_owned(),
                (*entity).to_owned(),
                (*action).to_owned(),
            ],
        })
    }

    /// Whether some concrete permission is granted by both patterns: segment by segment, the
    /// two are equal or one of them is `*`. A granted `directory:*:*` overlaps a denied
    /// `directory:user:delete`, and so does a granted `*`.
    #[must_use]
    pub fn overlaps(&self, other: &Permission) -> bool {
        self.segments
            .iter()
            .zip(&other.segments)
            .all(|(a, b)| a == "*" || b == "*" || a.eq_ignore_ascii_case(b))
    }
}

impl Permission {
    /// Whether this pattern grants everything `inner` grants: segment by segment, this one is
    /// `*` or the same name (case-insensitively).
    #[must_use]
    pub fn covers(&self, inner: &Permission) -> bool {
        self.segments
            .iter()
            .zip(&inner.segments)
            .all(|(a, b)| a == "*" || a.eq_ignore_ascii_case(b))
    }

    /// Whether any segment is `*`.
    #[must_use]
    pub fn is_wildcard(&self) -> bool {
        self.segments.iter().any(|s| s == "*")
    }
}

/// How desired permission patterns compare with a live role's permissions, read after the
/// server's own expansion of wildcards (docs/genesys.md §4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Desired patterns the live role does not yet grant.
    pub missing: Vec<String>,
    /// Live permissions no desired pattern covers (a server backfill, a hand edit, or a
    /// permission dropped from YAML).
    pub extra: Vec<String>,
}

/// Compares desired patterns `want` with a live role's permissions `have`. `known` is every
/// permission seen on any live role: the part of the server's catalogue scimctl can see
/// (wildcards in it are ignored).
///
/// A desired pattern is granted when a live permission covers it (the live role still holds
/// the wildcard as written), or, for a wildcard, when the live role holds at least one
/// permission it matches and every known permission it matches: that is what the server's
/// expansion of it leaves. A permission released after the expansion shows as missing, and
/// the next write expands the wildcard again, so this converges. A live permission is extra
/// when no desired pattern covers it. Strings that do not parse are compared as text.
#[must_use]
pub fn compare(want: &[String], have: &[String], known: &[String]) -> Comparison {
    let parse = |list: &[String]| -> Vec<(String, Option<Permission>)> {
        list.iter()
            .map(|t| (t.clone(), Permission::parse(t).ok()))
            .collect()
    };
    let (want, have, known) = (parse(want), parse(have), parse(known));
    let held = |k: &Permission| {
        have.iter()
            .any(|(_, h)| h.as_ref().is_some_and(|h| h.covers(k)))
    };
    let granted = |text: &str, p: Option<&Permission>| {
        let Some(p) = p else {
            return have.iter().any(|(h, _)| h == text);
        };
        if held(p) {
            return true;
        }
        p.is_wildcard()
            && have
                .iter()
                .any(|(_, h)| h.as_ref().is_some_and(|h| p.covers(h)))
            && known
                .iter()
                .filter_map(|(_, k)| k.as_ref())
                .filter(|k| !k.is_wildcard() && p.covers(k))
                .all(held)
    };
    let missing = want
        .iter()
        .filter(|(t, p)| !granted(t, p.as_ref()))
        .map(|(t, _)| t.clone())
        .collect();
    let extra = have
        .iter()
        .filter(|(t, h)| {
            !want.iter().any(|(w, p)| match (p, h) {
                (Some(p), Some(h)) => p.covers(h),
                _ => w == t,
            })
        })
        .map(|(t, _)| t.clone())
        .collect();
    Comparison { missing, extra }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.iter().all(|s| s == "*") {
            f.write_str("*")
        } else {
            write!(
                f,
                "{}:{}:{}",
                self.segments[0], self.segments[1], self.segments[2]
            )
        }
    }
}

/// Roles by name (case-insensitive), for resolving `inherits`.
#[derive(Debug, Default)]
pub struct RoleIndex<'a> {
    by_name: HashMap<String, &'a Role>,
}

impl<'a> RoleIndex<'a> {
    /// Indexes roles by lower-cased name; on duplicate names the first one wins.
    pub fn new(roles: impl IntoIterator<Item = &'a Role>) -> RoleIndex<'a> {
        let mut by_name = HashMap::new();
        for role in roles {
            by_name.entry(role.name.to_lowercase()).or_insert(role);
        }
        RoleIndex { by_name }
    }

    /// The role called `name`, compared case-insensitively.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a Role> {
        self.by_name.get(&name.to_lowercase()).copied()
    }
}

/// One permission a role grants, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The permission as written in the role that declares it.
    pub permission: String,
    /// Role names from the role asked about to the role that declares the permission
    /// (`[asked]` when declared directly); the shortest such chain.
    pub via: Vec<String>,
    /// Where the declaring role writes the permission.
    pub span: Span,
}

/// The deduplicated permissions a role grants through itself and everything it inherits,
/// sorted by permission. Cycle-safe: each role is visited once, so an inheritance cycle (which
/// validation reports separately) cannot loop. Unknown inherited names are skipped.
/// Returns `None` when `role` itself is unknown.
#[must_use]
pub fn effective_permissions(index: &RoleIndex<'_>, role: &str) -> Option<Vec<Grant>> {
    let start = index.get(role)?;
    let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Breadth-first, so the first chain that reaches a permission is a shortest one.
    let mut queue: VecDeque<(&Role, Vec<String>)> = VecDeque::new();
    seen.insert(start.name.to_lowercase());
    queue.push_back((start, vec![start.name.as_str().to_owned()]));
    while let Some((current, chain)) = queue.pop_front() {
        for permission in current.permissions.iter().flatten() {
            grants
                .entry(permission.as_str().to_owned())
                .or_insert_with(|| Grant {
                    permission: permission.as_str().to_owned(),
                    via: chain.clone(),
                    span: permission.span,
                });
        }
        for parent in &current.inherits {
            let Some(parent_role) = index.get(parent) else {
                continue;
            };
            if seen.insert(parent_role.name.to_lowercase()) {
                let mut next = chain.clone();
                next.push(parent_role.name.as_str().to_owned());
                queue.push_back((parent_role, next));
            }
        }
    }
    Some(grants.into_values().collect())
}

/// A permission policy as Genesys Cloud groups permissions: every action a role has on one
/// `(domain, entity)` pair. Pure data; the wire type lives in the client layer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Policy {
    /// The domain, or `*`.
    pub domain: String,
    /// The entity, or `*`.
    pub entity: String,
    /// The actions, sorted and de-duplicated; exactly `["*"]` when every action is allowed.
    pub actions: Vec<String>,
}

/// Groups permission strings into policies: one per `(domain, entity)` in that order, with
/// sorted, de-duplicated actions, and an action set holding `*` reduced to `*` alone. `*` by
/// itself becomes domain `*`, entity `*`, actions `["*"]`: UNCONFIRMED that Genesys Cloud
/// accepts a wildcard domain (docs/genesys.md §4 documents `*` only for `entityName` and
/// `actionSet`). Strings that do not parse are skipped (validation reports them).
#[must_use]
pub fn policies_of<'a>(permissions: impl IntoIterator<Item = &'a str>) -> Vec<Policy> {
    let mut grouped: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for text in permissions {
        let Ok(Permission {
            segments: [domain, entity, action],
        }) = Permission::parse(text)
        else {
            continue;
        };
        grouped.entry((domain, entity)).or_default().insert(action);
    }
    grouped
        .into_iter()
        .map(|((domain, entity), actions)| Policy {
            domain,
            entity,
            actions: if actions.contains("*") {
                vec!["*".to_owned()]
            } else {
                actions.into_iter().collect()
            },
        })
        .collect()
}

/// The permission strings policies grant, sorted and de-duplicated: `domain:entity:action`
/// per action, `domain:entity:*` for an action set that holds `*`, and `*` for the policy
/// that allows everything. The inverse of [`policies_of`] on what it returns; used to compare
/// a live role with desired state and to show a role's permissions.
#[must_use]
pub fn permissions_of<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for p in policies {
        let wild = p.actions.iter().any(|a| a == "*");
        let actions: Vec<&str> = if wild {
            vec!["*"]
        } else {
            p.actions.iter().map(String::as_str).collect()
        };
        for action in actions {
            let permission = Permission {
                segments: [p.domain.clone(), p.entity.clone(), action.to_owned()],
            };
            out.insert(permission.to_string());
        }
    }
    out.into_iter().collect()
}

/// The effective permission strings of role `role` (its own and everything it inherits,
/// transitively), as [`permissions_of`] spells them; `None` when the role is unknown.
#[must_use]
pub fn flattened_permissions(index: &RoleIndex<'_>, role: &str) -> Option<Vec<String>> {
    let grants = effective_permissions(index, role)?;
    Some(permissions_of(&policies_of(
        grants.iter().map(|g| g.permission.as_str()),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Spanned;

    fn role(name: &str, permissions: &[&str], inherits: &[&str]) -> Role {
        Role {
            name: Spanned::unspanned(name.into()),
            description: None,
            permissions: Some(
                permissions
                    .iter()
                    .map(|p| Spanned::unspanned((*p).into()))
                    .collect(),
            ),
            inherits: inherits
                .iter()
                .map(|p| Spanned::unspanned((*p).into()))
                .collect(),
            allow_denied_permissions: None,
        }
    }

    // Parsing accepts the documented shapes and names the bad segment otherwise.
    #[test]
    fn parse_shapes() {
        assert!(Permission::parse("directory:user:edit").is_ok());
        assert!(Permission::parse("routing:*:view").is_ok());
        assert_eq!(Permission::parse("*").unwrap().to_string(), "*");
        assert_eq!(
            Permission::parse("directory:user").unwrap_err(),
            PermissionError::Shape { segments: 2 }
        );
        assert!(matches!(
            Permission::parse("a::b"),
            Err(PermissionError::Segment { index: 2, .. })
        ));
        assert!(matches!(
            Permission::parse("a:b c:d"),
            Err(PermissionError::Segment { index: 2, .. })
        ));
    }

    // Wildcards on either side overlap; distinct names do not.
    #[test]
    fn overlap_rules() {
        let p = |s| Permission::parse(s).unwrap();
        assert!(p("*").overlaps(&p("authorization:role:edit")));
        assert!(p("authorization:*:*").overlaps(&p("authorization:role:edit")));
        assert!(p("authorization:role:edit").overlaps(&p("authorization:*:edit")));
        assert!(!p("routing:queue:view").overlaps(&p("authorization:*:*")));
        assert!(!p("directory:user:view").overlaps(&p("directory:user:delete")));
    }

    // Inheritance is followed transitively, deduplicated, and each grant names its chain.
    #[test]
    fn effective_through_inheritance() {
        let roles = [
            role(
                "Agent",
                &["routing:queue:view", "conversation:call:accept"],
                &[],
            ),
            role(
                "Supervisor",
                &["routing:queue:view", "analytics:report:view"],
                &["Agent"],
            ),
            role("Manager", &["directory:user:view"], &["supervisor"]),
        ];
        let index = RoleIndex::new(&roles);
        let grants = effective_permissions(&index, "Manager").unwrap();
        let names: Vec<&str> = grants.iter().map(|g| g.permission.as_str()).collect();
        assert_eq!(
            names,
            [
                "analytics:report:view",
                "conversation:call:accept",
                "directory:user:view",
                "routing:queue:view"
            ]
        );
        let accept = grants
            .iter()
            .find(|g| g.permission == "conversation:call:accept")
            .unwrap();
        assert_eq!(accept.via, ["Manager", "Supervisor", "Agent"]);
        // routing:queue:view is reached first through Supervisor (shorter chain than Agent's).
        let view = grants
            .iter()
            .find(|g| g.permission == "routing:queue:view")
            .unwrap();
        assert_eq!(view.via, ["Manager", "Supervisor"]);
        assert!(effective_permissions(&index, "Nobody").is_none());
    }

    // A cycle terminates and still yields every permission on it.
    #[test]
    fn effective_is_cycle_safe() {
        let roles = [
            role("A", &["a:a:a"], &["B"]),
            role("B", &["b:b:b"], &["C"]),
            role("C", &["c:c:c"], &["A"]),
        ];
        let index = RoleIndex::new(&roles);
        let grants = effective_permissions(&index, "B").unwrap();
        assert_eq!(grants.len(), 3);
    }

    // Permissions group by (domain, entity); `*` actions absorb the rest; `*` alone is the
    // all-wildcard policy; strings that do not parse are skipped.
    #[test]
    fn policies_group_and_normalise() {
        let policies = policies_of([
            "directory:user:view",
            "directory:user:edit",
            "directory:user:view",
            "routing:queue:*",
            "routing:queue:join",
            "bad",
            "*",
        ]);
        let shape: Vec<(&str, &str, Vec<&str>)> = policies
            .iter()
            .map(|p| {
                (
                    p.domain.as_str(),
                    p.entity.as_str(),
                    p.actions.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("*", "*", vec!["*"]),
                ("directory", "user", vec!["edit", "view"]),
                ("routing", "queue", vec!["*"]),
            ]
        );
        assert_eq!(
            permissions_of(&policies),
            [
                "*",
                "directory:user:edit",
                "directory:user:view",
                "routing:queue:*"
            ]
        );
    }

    // Flattening follows inheritance transitively into one canonical permission list.
    #[test]
    fn flattened_through_inheritance() {
        let roles = [
            role("Agent", &["routing:queue:view", "directory:user:view"], &[]),
            role("Lead", &["routing:queue:*"], &["Agent"]),
            role("Head", &[], &["Lead"]),
        ];
        let index = RoleIndex::new(&roles);
        assert_eq!(
            flattened_permissions(&index, "head").unwrap(),
            ["directory:user:view", "routing:queue:*"]
        );
        assert!(flattened_permissions(&index, "nobody").is_none());
    }

    // Compared after the server's expansion: a wildcard is granted by what its expansion
    // leaves, literal wildcards still count, extras are listed, and a known permission the
    // role lacks makes the wildcard missing again.
    #[test]
    fn compare_after_expansion() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let want = s(&["routing:queue:*", "directory:user:view"]);
        let have = s(&[
            "directory:user:view",
            "routing:queue:join",
            "routing:queue:view",
            "routing:queueMember:view",
        ]);
        let c = compare(&want, &have, &have);
        assert!(c.missing.is_empty(), "{c:?}");
        assert_eq!(c.extra, ["routing:queueMember:view"]);
        let mut known = have.clone();
        known.push("routing:queue:edit".into());
        assert_eq!(compare(&want, &have, &known).missing, ["routing:queue:*"]);
        let literal = compare(&s(&["routing:queue:view"]), &s(&["routing:*:*"]), &[]);
        assert!(literal.missing.is_empty() && literal.extra == ["routing:*:*"]);
        let none = compare(&s(&["wfm:*:*"]), &have, &have);
        assert_eq!(none.missing, ["wfm:*:*"], "nothing of it is held");
    }

    fn segment() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof![
            2 => proptest::strategy::Just("*".to_owned()),
            5 => proptest::sample::select(vec!["a", "b", "B", "c.d", "e_f"]).prop_map(str::to_owned),
        ]
    }

    fn permission_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::prop_oneof![
            1 => proptest::strategy::Just("*".to_owned()),
            12 => (segment(), segment(), segment()).prop_map(|(d, e, a)| format!("{d}:{e}:{a}")),
        ]
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        // permissions → policies → permissions → policies is stable: the strings are a
        // canonical form, and the policies they give are the ones they came from.
        #[test]
        fn round_trip_is_stable(perms in proptest::collection::vec(permission_text(), 0..12)) {
            let policies = policies_of(perms.iter().map(String::as_str));
            let text = permissions_of(&policies);
            let again = policies_of(text.iter().map(String::as_str));
            proptest::prop_assert_eq!(&again, &policies);
            proptest::prop_assert_eq!(permissions_of(&again), text.clone());
            let mut sorted = text.clone();
            sorted.sort();
            sorted.dedup();
            proptest::prop_assert_eq!(sorted, text);
            for p in &policies {
                proptest::prop_assert!(!p.actions.is_empty());
                proptest::prop_assert!(
                    p.actions.windows(2).all(|w| w[0] < w[1]),
                    "sorted, unique: {:?}", p.actions
                );
                proptest::prop_assert!(
                    !p.actions.iter().any(|a| a == "*") || p.actions.len() == 1
                );
            }
        }
    }
}
