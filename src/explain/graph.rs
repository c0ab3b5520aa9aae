//! The membership and inheritance graphs `explain` walks: which group holds which user or
//! group (from groups' `members` and users' `groups`, each edge with the YAML entry that
//! writes it), and which role inherits which. Built once per question from a valid
//! [`DesiredState`]; pure, breadth-first, cycle-safe.

use std::collections::{HashSet, VecDeque};

use crate::desired::DesiredState;
use crate::model::Span;

/// A user or a group, by position in [`DesiredState::users`] or [`DesiredState::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Node {
    /// A user.
    User(usize),
    /// A group.
    Group(usize),
}

/// One step of a walk: the node reached, and where the edge that reached it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Step<T> {
    pub(super) to: T,
    pub(super) span: Span,
}

/// A node reached by a walk, with the shortest path from where the walk started (the start
/// is not in the path).
#[derive(Clone, Debug)]
pub(super) struct Reached<T> {
    pub(super) node: T,
    pub(super) path: Vec<Step<T>>,
}

/// Group membership as desired state writes it.
#[derive(Debug)]
pub(super) struct Memberships {
    /// Per group: its direct members, in the order written (a group's `members` first, then
    /// users naming it in `groups`), each once.
    members: Vec<Vec<Step<Node>>>,
    /// Per user: the groups holding it directly.
    user_parents: Vec<Vec<Step<usize>>>,
    /// Per group: the groups holding it directly.
    group_parents: Vec<Vec<Step<usize>>>,
    /// Per group: whether its membership is written anywhere (and so managed).
    managed: Vec<bool>,
    /// Every (group, member) edge recorded, so that a member written twice (in the group's
    /// `members` and in the user's `groups`) is one edge, in constant time per entry even
    /// for a group of 100,000 users.
    edges: HashSet<(usize, Node)>,
}

impl Memberships {
    /// Reads every membership edge of `state`. Names that resolve to nothing (impossible in a
    /// validated state) are skipped.
    pub(super) fn new(state: &DesiredState) -> Memberships {
        let mut graph = Memberships {
            members: vec![Vec::new(); state.groups.len()],
            user_parents: vec![Vec::new(); state.users.len()],
            group_parents: vec![Vec::new(); state.groups.len()],
            managed: vec![false; state.groups.len()],
            edges: HashSet::new(),
        };
        for (g, group) in state.groups.iter().enumerate() {
            let Some(members) = &group.members else {
                continue;
            };
            graph.managed[g] = true;
            for member in members {
                if let Some(u) = state.user_index(member) {
                    graph.add(g, Node::User(u), member.span);
                } else if let Some(child) = state.group_index(member) {
                    graph.add(g, Node::Group(child), member.span);
                }
            }
        }
        for (u, user) in state.users.iter().enumerate() {
            for name in user.groups.iter().flatten() {
                if let Some(g) = state.group_index(name) {
                    graph.managed[g] = true;
                    graph.add(g, Node::User(u), name.span);
                }
            }
        }
        graph
    }

    /// Records that `group` holds `member`, unless an earlier entry already says so.
    fn add(&mut self, group: usize, member: Node, span: Span) {
        if !self.edges.insert((group, member)) {
            return;
        }
        self.members[group].push(Step { to: member, span });
        let step = Step { to: group, span };
        match member {
            Node::User(u) => self.user_parents[u].push(step),
            Node::Group(child) => self.group_parents[child].push(step),
        }
    }

    /// Whether the group's membership is written anywhere in desired state.
    pub(super) fn is_managed(&self, group: usize) -> bool {
        self.managed.get(group).copied().unwrap_or(false)
    }

    /// The direct members of a group.
    pub(super) fn members_of(&self, group: usize) -> &[Step<Node>] {
        self.members.get(group).map_or(&[], Vec::as_slice)
    }

    /// The groups holding `node` directly.
    pub(super) fn parents_of(&self, node: Node) -> &[Step<usize>] {
        let parents = match node {
            Node::User(u) => self.user_parents.get(u),
            Node::Group(g) => self.group_parents.get(g),
        };
        parents.map_or(&[], Vec::as_slice)
    }

    /// Every group holding `node`, directly or through nested groups, nearest first, each
    /// with a shortest path of groups from `node` up to it.
    pub(super) fn groups_holding(&self, node: Node) -> Vec<Reached<usize>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue: VecDeque<Reached<usize>> = self
            .parents_of(node)
            .iter()
            .map(|step| Reached {
                node: step.to,
                path: vec![*step],
            })
            .collect();
        while let Some(reached) = queue.pop_front() {
            if !seen.insert(reached.node) {
                continue;
            }
            for step in self.parents_of(Node::Group(reached.node)) {
                if !seen.contains(&step.to) {
                    let mut path = reached.path.clone();
                    path.push(*step);
                    queue.push_back(Reached {
                        node: step.to,
                        path,
                    });
                }
            }
            out.push(reached);
        }
        out
    }

    /// Every member of `group`, directly or through nested groups, nearest first, each with
    /// a shortest path down from `group` to it.
    pub(super) fn all_members(&self, group: usize) -> Vec<Reached<Node>> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([Node::Group(group)]);
        let mut queue: VecDeque<Reached<Node>> = self
            .members_of(group)
            .iter()
            .map(|step| Reached {
                node: step.to,
                path: vec![*step],
            })
            .collect();
        while let Some(reached) = queue.pop_front() {
            if !seen.insert(reached.node) {
                continue;
            }
            if let Node::Group(g) = reached.node {
                for step in self.members_of(g) {
                    if !seen.contains(&step.to) {
                        let mut path = reached.path.clone();
                        path.push(*step);
                        queue.push_back(Reached {
                            node: step.to,
                            path,
                        });
                    }
                }
            }
            out.push(reached);
        }
        out
    }
}

/// Role inheritance as desired state writes it, by position in [`DesiredState::roles`].
#[derive(Debug)]
pub(super) struct Inheritance {
    /// Per role: the roles it inherits, with the `inherits` entry.
    parents: Vec<Vec<Step<usize>>>,
    /// Per role: the roles inheriting it, with their `inherits` entry.
    children: Vec<Vec<Step<usize>>>,
}

impl Inheritance {
    /// Reads every `inherits` edge of `state`; unknown names are skipped.
    pub(super) fn new(state: &DesiredState) -> Inheritance {
        let mut parents = vec![Vec::new(); state.roles.len()];
        let mut children = vec![Vec::new(); state.roles.len()];
        for (r, role) in state.roles.iter().enumerate() {
            for name in &role.inherits {
                if let Some(p) = role_index(state, name) {
                    parents[r].push(Step {
                        to: p,
                        span: name.span,
                    });
                    children[p].push(Step {
                        to: r,
                        span: name.span,
                    });
                }
            }
        }
        Inheritance { parents, children }
    }

    /// The roles `role` inherits, transitively, nearest first, with a shortest path each.
    pub(super) fn ancestors(&self, role: usize) -> Vec<Reached<usize>> {
        walk(role, &self.parents)
    }

    /// The roles inheriting `role`, transitively, nearest first, with a shortest path each
    /// (from `role` outwards: reversed, it is the chain from the heir down to `role`).
    pub(super) fn heirs(&self, role: usize) -> Vec<Reached<usize>> {
        walk(role, &self.children)
    }

    /// Where `from` writes that it inherits `to`.
    pub(super) fn edge(&self, from: usize, to: usize) -> Option<Span> {
        self.parents
            .get(from)?
            .iter()
            .find(|s| s.to == to)
            .map(|s| s.span)
    }
}

/// Breadth-first over `edges` from `start`, which is not reported.
fn walk(start: usize, edges: &[Vec<Step<usize>>]) -> Vec<Reached<usize>> {
    let mut out = Vec::new();
    let mut seen = HashSet::from([start]);
    let mut queue: VecDeque<Reached<usize>> = VecDeque::from([Reached {
        node: start,
        path: Vec::new(),
    }]);
    while let Some(reached) = queue.pop_front() {
        for step in edges.get(reached.node).map_or(&[][..], Vec::as_slice) {
            if seen.insert(step.to) {
                let mut path = reached.path.clone();
                path.push(*step);
                let next = Reached {
                    node: step.to,
                    path,
                };
                out.push(next.clone());
                queue.push_back(next);
            }
        }
    }
    out
}

/// Position in [`DesiredState::roles`] of the role called `name` (case-insensitive).
pub(super) fn role_index(state: &DesiredState, name: &str) -> Option<usize> {
    let role = state.role(name)?;
    state.roles.iter().position(|r| std::ptr::eq(r, role))
}
