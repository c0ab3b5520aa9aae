//! The order of an apply: a plan's changes as steps with dependencies (docs/contract.md §4: create
//! groups and roles, then create and patch users, then memberships, then deactivate and
//! delete).
//!
//! Role definitions (Genesys Cloud) come in phases of their own: role creates and updates
//! before any user or group step, since users' SCIM `roles` name roles that must exist, and
//! role deletes after everything else. A phase only orders; it never skips. A user step that
//! grants a role the run creates also depends on that create, so only it is skipped when the
//! create fails.
//!
//! A create carries every attribute it can at once. A group whose members are users the same
//! run creates waits for those creates and names them in its own (one write per group); a
//! member whose create fails is left out and the group reported failed, naming it, instead of
//! holding back the group and its other members. What a create cannot carry, a member that is
//! a group the run creates (groups may nest in cycles), goes into a *link* step that patches
//! the new object once both exist. A user whose manager is also new waits for the manager's
//! create instead, so the reference rides in the create body; only managers that form a
//! cycle fall back to a link.
//! Steps that depend on nothing run as soon as the executor has room; deactivations and
//! deletes wait until every other step has finished. Pure: no I/O.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::plan::{Action, Change, Edit, Kind, Multi, Plan, Ref};

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepKind {
    /// Create the object with [`Step::edits`].
    Create,
    /// Restore a deleted user (Genesys Cloud), then bring it in line with what YAML
    /// describes; [`Step::edits`] are its create's, for the order only (the step re-plans the
    /// restored user).
    Restore,
    /// Patch an object created earlier in the run with references that needed its id or
    /// another new object's id.
    Link,
    /// Patch (or deactivate) a live object.
    Update,
    /// Grant and revoke a user's roles in divisions (Genesys Cloud Platform API), once the
    /// user exists and the roles it names do.
    Grants,
    /// Delete a live object.
    Delete,
    /// Set a user's password again from its source (issue 19): a PATCH of its own, after the
    /// user's other edits, carrying a value the plan never holds.
    Password,
    /// Give and take a user's Genesys Cloud licenses: sent with every other license step of
    /// the run in batches (`POST /api/v2/license/organization`), once the users exist.
    Licenses,
}

/// One unit of work.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Step<'p> {
    /// The change it belongs to (index into the plan's changes).
    pub(crate) change: usize,
    /// What it does.
    pub(crate) kind: StepKind,
    /// The edits it sends: the change's own, borrowed from the plan, when the step sends all
    /// of them (most do: at 100,000 creates a copy would double the plan's edits in memory),
    /// or the part of them it sends.
    pub(crate) edits: Cow<'p, [Edit]>,
    /// Steps that must succeed first.
    pub(crate) deps: Vec<usize>,
    /// Steps that must have finished first, whatever their outcome: the creates of new
    /// users a group's members name. A member whose create failed is left out of the write
    /// (and the operation reported failed, naming it) rather than holding back the group
    /// and every other member.
    pub(crate) after: Vec<usize>,
    /// When it may start: only once every step of the earlier phases has finished.
    pub(crate) phase: Phase,
}

/// The phases of a run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Role creates and updates.
    Roles,
    /// User and group creates, links and patches.
    Main,
    /// License assignments, batched over the run's users once they all exist.
    Licenses,
    /// User and group deactivations and deletes.
    Prune,
    /// Role deletes.
    RoleDeletes,
}

impl Phase {
    /// Every phase, in order.
    pub(crate) const ALL: [Phase; 5] = [
        Phase::Roles,
        Phase::Main,
        Phase::Licenses,
        Phase::Prune,
        Phase::RoleDeletes,
    ];

    /// Its position in [`Phase::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The role names a user change grants (`roles` values it adds or sets), lower-cased.
fn granted_roles(edits: &[Edit]) -> impl Iterator<Item = String> + '_ {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Add {
                attr: Multi::Roles,
                values,
            }
            | Edit::ReplaceAll {
                attr: Multi::Roles,
                values,
            } => Some(values),
            _ => None,
        })
        .flatten()
        .filter_map(|v| v.get("value").and_then(serde_json::Value::as_str))
        .map(str::to_lowercase)
}

/// The steps of a plan, blocked changes left out.
#[derive(Debug, Default)]
pub(crate) struct Graph<'p> {
    /// Steps; dependencies point to earlier or later indices alike.
    pub(crate) steps: Vec<Step<'p>>,
    /// Per step, the steps that depend on it.
    pub(crate) dependants: Vec<Vec<usize>>,
    /// Per step, the steps that wait for it to finish ([`Step::after`]).
    pub(crate) followers: Vec<Vec<usize>>,
}

fn name_key(kind: Kind, name: &str) -> (Kind, String) {
    (kind, name.to_lowercase())
}

/// Splits `edits` of a create into what the create can carry (references to live objects,
/// users the run creates first, and managers whose create comes first) and what must wait
/// for a link step (members that are groups the run creates, which may form cycles).
fn split_create<'p>(
    edits: &'p [Edit],
    carry_manager: bool,
    carry_member: &dyn Fn(&Ref) -> bool,
) -> (Cow<'p, [Edit]>, Vec<Edit>) {
    let carried_whole = edits.iter().all(|edit| match edit {
        Edit::AddMembers { members } => {
            !members.is_empty() && members.iter().all(|m| m.id.is_some() || carry_member(m))
        }
        Edit::SetManager { to } => to.id.is_some() || carry_manager,
        Edit::Grants { .. } | Edit::Licenses { .. } | Edit::Password => false,
        _ => true,
    });
    if carried_whole {
        return (Cow::Borrowed(edits), Vec::new());
    }
    let mut now = Vec::new();
    let mut later = Vec::new();
    for edit in edits {
        match edit {
            Edit::AddMembers { members } => {
                let (known, new): (Vec<Ref>, Vec<Ref>) = members
                    .iter()
                    .cloned()
                    .partition(|m| m.id.is_some() || carry_member(m));
                if !known.is_empty() {
                    now.push(Edit::AddMembers { members: known });
                }
                if !new.is_empty() {
                    later.push(Edit::AddMembers { members: new });
                }
            }
            Edit::SetManager { to } if to.id.is_none() && !carry_manager => {
                later.push(edit.clone());
            }
            // A grants step of its own, once the user exists; a password is set by the
            // create itself (a rotation is only planned for a live user).
            Edit::Grants { .. } | Edit::Licenses { .. } | Edit::Password => {}
            _ => now.push(edit.clone()),
        }
    }
    (Cow::Owned(now), later)
}

/// Adds the steps of `plan`'s unblocked role changes to `graph`; returns the role create
/// steps by lower-cased name, for the user steps that grant those roles.
fn role_steps<'p>(plan: &'p Plan, graph: &mut Graph<'p>) -> HashMap<String, usize> {
    let mut role_creates: HashMap<String, usize> = HashMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.blocked.is_some() || c.kind != Kind::Role {
            continue;
        }
        let (kind, phase) = match c.action {
            Action::Create => {
                role_creates.insert(c.key.to_lowercase(), graph.steps.len());
                (StepKind::Create, Phase::Roles)
            }
            Action::Delete | Action::Deactivate => (StepKind::Delete, Phase::RoleDeletes),
            // Only users are restored; a role row never says so.
            Action::Patch | Action::Restore => (StepKind::Update, Phase::Roles),
        };
        graph.steps.push(Step {
            change: i,
            kind,
            edits: Cow::Borrowed(&c.edits),
            after: Vec::new(),
            deps: Vec::new(),
            phase,
        });
    }
    role_creates
}

impl<'p> Graph<'p> {
    /// Builds the steps of `plan`'s unblocked changes.
    pub(crate) fn new(plan: &'p Plan) -> Graph<'p> {
        let mut graph = Graph::default();
        let role_creates = role_steps(plan, &mut graph);
        let changes: Vec<(usize, &Change)> = plan
            .changes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.blocked.is_none() && c.kind != Kind::Role)
            .collect();
        // The change that creates each new object.
        let created: HashMap<(Kind, String), usize> = changes
            .iter()
            .filter(|(_, c)| c.action.brings_in())
            .map(|(i, c)| (name_key(c.kind, &c.key), *i))
            .collect();
        let new_manager = |c: &Change| {
            c.edits.iter().find_map(|e| match e {
                Edit::SetManager { to } if to.id.is_none() => {
                    created.get(&name_key(Kind::User, &to.name)).copied()
                }
                _ => None,
            })
        };
        let acyclic = acyclic_managers(&changes, new_manager);
        // A user never waits for a group, so a group's create can always wait for the
        // creates of its new user members and name them at once: one write per group
        // instead of a create and a link (issue 21).
        let carry_member =
            |m: &Ref| m.kind == Kind::User && created.contains_key(&name_key(m.kind, &m.name));

        let mut create_step: HashMap<usize, usize> = HashMap::new();
        // Creates first, so their step numbers are known to everything that refers to them.
        for &(i, c) in changes.iter().filter(|(_, c)| c.action.brings_in()) {
            let carry = acyclic.get(&i).copied().unwrap_or(true);
            let (now, later) = split_create(&c.edits, carry, &carry_member);
            create_step.insert(i, graph.steps.len());
            graph.steps.push(Step {
                change: i,
                kind: if c.action == Action::Restore {
                    StepKind::Restore
                } else {
                    StepKind::Create
                },
                edits: now,
                after: Vec::new(),
                deps: Vec::new(),
                phase: Phase::Main,
            });
            if !later.is_empty() {
                graph.steps.push(Step {
                    change: i,
                    kind: StepKind::Link,
                    edits: Cow::Owned(later),
                    after: Vec::new(),
                    deps: Vec::new(),
                    phase: Phase::Main,
                });
            }
        }
        let step_of = |r: &Ref| {
            if r.id.is_some() {
                return None;
            }
            created
                .get(&name_key(r.kind, &r.name))
                .and_then(|c| create_step.get(c))
                .copied()
        };
        let role_of = |name: String| role_creates.get(&name).copied();
        for s in 0..graph.steps.len() {
            let step = &graph.steps[s];
            if step.phase == Phase::Roles {
                continue;
            }
            let link = step.kind == StepKind::Link;
            let (hard, soft) = references(&step.edits, link);
            let mut deps: Vec<usize> = hard
                .into_iter()
                .filter_map(step_of)
                .chain(granted_roles(&step.edits).filter_map(role_of))
                .filter(|&d| d != s)
                .collect();
            if link {
                deps.push(create_step[&step.change]);
            }
            let after = sorted(soft.into_iter().filter_map(step_of).collect());
            graph.steps[s].deps = sorted(deps);
            graph.steps[s].after = after;
        }
        update_steps(&changes, &step_of, &role_of, &mut graph);
        grant_steps(&changes, &create_step, &role_creates, &mut graph);
        password_steps(&changes, &mut graph);
        license_steps(&changes, &create_step, &mut graph);
        graph.link_dependants();
        graph
    }

    /// Fills [`Graph::dependants`] and [`Graph::followers`] from every step's dependencies.
    fn link_dependants(&mut self) {
        self.dependants = vec![Vec::new(); self.steps.len()];
        self.followers = vec![Vec::new(); self.steps.len()];
        for (s, step) in self.steps.iter().enumerate() {
            for &d in &step.deps {
                self.dependants[d].push(s);
            }
            for &d in &step.after {
                self.followers[d].push(s);
            }
        }
    }
}

/// The references of a step's edits: those it needs (`hard`: a manager, and anything a link
/// step sends, which exists only to set them) and those it only waits for (`soft`: members
/// a create or patch adds, left out of the write if their create fails).
fn references(edits: &[Edit], link: bool) -> (Vec<&Ref>, Vec<&Ref>) {
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    for edit in edits {
        let members = matches!(edit, Edit::AddMembers { .. }) && !link;
        if members { &mut soft } else { &mut hard }.extend(edit.refs());
    }
    (hard, soft)
}

fn sorted(mut steps: Vec<usize>) -> Vec<usize> {
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Adds the steps of the changes to live objects (patches, deactivations, deletes), after
/// the creates they refer to; grants have steps of their own.
fn update_steps<'p>(
    changes: &[(usize, &'p Change)],
    step_of: &dyn Fn(&Ref) -> Option<usize>,
    role_of: &dyn Fn(String) -> Option<usize>,
    graph: &mut Graph<'p>,
) {
    for &(i, c) in changes.iter().filter(|(_, c)| !c.action.brings_in()) {
        let own_step = |e: &Edit| {
            !matches!(
                e,
                Edit::Grants { .. } | Edit::Licenses { .. } | Edit::Password
            )
        };
        let edits: Cow<'p, [Edit]> = if c.edits.iter().all(own_step) {
            Cow::Borrowed(&c.edits)
        } else {
            Cow::Owned(c.edits.iter().filter(|e| own_step(e)).cloned().collect())
        };
        if edits.is_empty() && !c.edits.is_empty() {
            continue; // grants or password only: their own steps below
        }
        let (hard, soft) = references(&edits, false);
        let deps: Vec<usize> = hard
            .into_iter()
            .filter_map(step_of)
            .chain(granted_roles(&edits).filter_map(role_of))
            .collect();
        let after = sorted(soft.into_iter().filter_map(step_of).collect());
        let deps = sorted(deps);
        let (kind, phase) = match c.action {
            Action::Delete => (StepKind::Delete, Phase::Prune),
            Action::Deactivate => (StepKind::Update, Phase::Prune),
            Action::Create | Action::Restore | Action::Patch => (StepKind::Update, Phase::Main),
        };
        graph.steps.push(Step {
            change: i,
            kind,
            edits,
            after,
            deps,
            phase,
        });
    }
}

/// Adds a grants step per change that grants or revokes roles in divisions: after the
/// user's or group's create (a new one), a group's update (its settings), and after the
/// creates of the roles it grants that the run creates.
fn grant_steps<'p>(
    changes: &[(usize, &'p Change)],
    create_step: &HashMap<usize, usize>,
    role_creates: &HashMap<String, usize>,
    graph: &mut Graph<'p>,
) {
    for &(i, c) in changes {
        let Some(grants) = c.edits.iter().find(|e| matches!(e, Edit::Grants { .. })) else {
            continue;
        };
        let Edit::Grants { add, remove } = grants else {
            continue;
        };
        let mut deps: Vec<usize> = add
            .iter()
            .chain(remove)
            .filter(|g| g.role_id.is_none())
            .filter_map(|g| role_creates.get(&g.role.to_lowercase()).copied())
            .chain(create_step.get(&i).copied())
            // A group's own update first: it switches `rolesEnabled` on, which the grants
            // need (Genesys grants roles only to such groups).
            .chain(
                graph
                    .steps
                    .iter()
                    .position(|s| s.change == i && s.kind == StepKind::Update)
                    .filter(|_| c.kind == Kind::Group),
            )
            .collect();
        deps.sort_unstable();
        deps.dedup();
        graph.steps.push(Step {
            change: i,
            kind: StepKind::Grants,
            edits: Cow::Borrowed(std::slice::from_ref(grants)),
            after: Vec::new(),
            deps,
            phase: Phase::Main,
        });
    }
}

/// Adds a license step per change that gives or takes licenses: in a phase of its own, so
/// that every license change of the run is known (and every user exists) when the first is
/// sent, and after the user's create (a new user).
fn license_steps<'p>(
    changes: &[(usize, &'p Change)],
    create_step: &HashMap<usize, usize>,
    graph: &mut Graph<'p>,
) {
    for &(i, c) in changes {
        let Some(licenses) = c.edits.iter().find(|e| matches!(e, Edit::Licenses { .. })) else {
            continue;
        };
        graph.steps.push(Step {
            change: i,
            kind: StepKind::Licenses,
            edits: Cow::Borrowed(std::slice::from_ref(licenses)),
            after: Vec::new(),
            deps: create_step.get(&i).copied().into_iter().collect(),
            phase: Phase::Licenses,
        });
    }
}

/// Adds a password step per change that rotates a password: after the change's update step,
/// if it has one (the update carries `If-Match`, which a password write first would make
/// stale).
fn password_steps<'p>(changes: &[(usize, &'p Change)], graph: &mut Graph<'p>) {
    for &(i, c) in changes {
        if c.action.brings_in() || !c.edits.contains(&Edit::Password) {
            continue;
        }
        let deps: Vec<usize> = graph
            .steps
            .iter()
            .position(|s| s.change == i && s.kind == StepKind::Update)
            .into_iter()
            .collect();
        graph.steps.push(Step {
            change: i,
            kind: StepKind::Password,
            edits: Cow::Owned(vec![Edit::Password]),
            after: Vec::new(),
            deps,
            phase: Phase::Main,
        });
    }
}

/// Per user create with a new manager: whether the manager's create can simply come first
/// (`true`), or the two are on a cycle of new managers and the reference waits for a link
/// (`false`). Kahn's algorithm over "is managed by" edges between creates.
fn acyclic_managers(
    changes: &[(usize, &Change)],
    new_manager: impl Fn(&Change) -> Option<usize>,
) -> HashMap<usize, bool> {
    let by_index: HashMap<usize, &Change> = changes.iter().map(|&(i, c)| (i, c)).collect();
    let mut edge: HashMap<usize, usize> = HashMap::new();
    let mut indegree: HashMap<usize, usize> = HashMap::new();
    for &(i, c) in changes {
        if !c.action.brings_in() || c.kind != Kind::User {
            continue;
        }
        if let Some(m) = new_manager(c).filter(|m| by_index.contains_key(m)) {
            edge.insert(i, m);
            *indegree.entry(m).or_default() += 1;
            indegree.entry(i).or_default();
        }
    }
    // Remove nodes nobody waits on, repeatedly; what remains lies on (or leads only into)
    // cycles: a node on a chain into a cycle is still freed once the cycle is broken, so
    // only the nodes left with indegree > 0 are on cycles.
    let mut queue: Vec<usize> = indegree
        .iter()
        .filter(|&(_, &d)| d == 0)
        .map(|(&n, _)| n)
        .collect();
    while let Some(n) = queue.pop() {
        if let Some(&m) = edge.get(&n)
            && let Some(d) = indegree.get_mut(&m)
        {
            *d -= 1;
            if *d == 0 {
                queue.push(m);
            }
        }
    }
    edge.keys()
        .map(|&n| (n, indegree.get(&n).copied().unwrap_or(0) == 0))
        .collect()
}

#[cfg(test)]
mod tests {

    use super::{Graph, StepKind};
    use crate::plan::{Action, Change, Edit, Kind, Plan, Ref, Source};

    fn r(kind: Kind, name: &str, id: Option<&str>) -> Ref {
        Ref {
            kind,
            name: name.into(),
            id: id.map(str::to_owned),
        }
    }

    fn change(action: Action, kind: Kind, key: &str, edits: Vec<Edit>) -> Change {
        Change {
            action,
            kind,
            key: key.into(),
            id: (action != Action::Create).then(|| format!("id-{key}")),
            version: None,
            source: Source::Absent,
            diff: Vec::new(),
            edits,
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        }
    }

    fn manager(name: &str) -> Edit {
        Edit::SetManager {
            to: r(Kind::User, name, None),
        }
    }

    // A new group waits for the creates of its new user members (whatever their outcome)
    // and carries them with its live members; a new group as a member waits for a link;
    // managers that are new come first; a cycle of managers falls back to links; patches
    // wait for the creates of the members they add; deletes are last; blocked changes are
    // left out.
    #[test]
    fn orders_by_dependency() {
        let mut blocked = change(Action::Delete, Kind::User, "held", Vec::new());
        blocked.blocked = Some("brake".into());
        blocked.held_by = Some(crate::plan::Rule::Threshold);
        let plan = Plan {
            changes: vec![
                change(
                    Action::Create,
                    Kind::Group,
                    "ops",
                    vec![
                        Edit::Set {
                            attr: crate::plan::Attr::DisplayName,
                            value: crate::plan::Scalar::from("ops"),
                        },
                        Edit::AddMembers {
                            members: vec![
                                r(Kind::User, "old", Some("u-old")),
                                r(Kind::User, "ana", None),
                                r(Kind::Group, "sub", None),
                            ],
                        },
                    ],
                ),
                change(Action::Create, Kind::User, "boss", Vec::new()),
                change(Action::Create, Kind::User, "ana", vec![manager("boss")]),
                change(Action::Create, Kind::User, "x", vec![manager("y")]),
                change(Action::Create, Kind::User, "y", vec![manager("x")]),
                change(
                    Action::Patch,
                    Kind::Group,
                    "sales",
                    vec![Edit::AddMembers {
                        members: vec![r(Kind::User, "boss", None)],
                    }],
                ),
                change(Action::Delete, Kind::Group, "old", Vec::new()),
                blocked,
                change(Action::Create, Kind::Group, "sub", Vec::new()),
            ],
            ..Plan::default()
        };
        let g = Graph::new(&plan);
        let find = |change: usize, kind: StepKind| {
            g.steps
                .iter()
                .position(|s| s.change == change && s.kind == kind)
                .unwrap_or_else(|| panic!("step {kind:?} of change {change}"))
        };
        let ops = find(0, StepKind::Create);
        assert_eq!(g.steps[ops].deps, Vec::<usize>::new());
        assert_eq!(g.steps[ops].after, vec![find(2, StepKind::Create)]);
        assert!(
            matches!(&g.steps[ops].edits[1], Edit::AddMembers { members }
                if members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>() == ["old", "ana"]),
            "{:?}",
            g.steps[ops].edits
        );
        let link = find(0, StepKind::Link);
        let mut want = vec![ops, find(8, StepKind::Create)];
        want.sort_unstable();
        assert_eq!(g.steps[link].deps, want);
        assert!(g.steps[link].after.is_empty());
        assert!(
            matches!(&g.steps[link].edits[..], [Edit::AddMembers { members }] if members.len() == 1 && members[0].name == "sub")
        );
        assert_eq!(
            g.steps[find(2, StepKind::Create)].deps,
            vec![find(1, StepKind::Create)],
            "ana waits for her new manager"
        );
        for c in [3, 4] {
            let create = find(c, StepKind::Create);
            assert!(g.steps[create].deps.is_empty(), "a manager cycle is broken");
            assert_eq!(g.steps[find(c, StepKind::Link)].deps.len(), 2);
        }
        let sales = find(5, StepKind::Update);
        assert!(g.steps[sales].deps.is_empty());
        assert_eq!(g.steps[sales].after, vec![find(1, StepKind::Create)]);
        assert!(g.followers[find(1, StepKind::Create)].contains(&sales));
        let delete = find(6, StepKind::Delete);
        assert_eq!(g.steps[delete].phase, super::Phase::Prune);
        assert!(g.steps.iter().all(|s| s.change != 7), "blocked: not a step");
        assert!(
            g.dependants[find(2, StepKind::Create)].is_empty(),
            "nothing needs ana"
        );
        assert_eq!(g.followers[find(2, StepKind::Create)], vec![ops]);
    }
}
