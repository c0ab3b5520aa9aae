//! Re-planning one object mid-apply, with the same rules as [`plan`](super::plan).
//!
//! When a write meets a live object that moved since the plan (a version mismatch, a create
//! answered "already exists", an outcome lost in transit), the applier re-reads that one
//! object and asks a [`Replanner`] what it needs now. The replanner holds what a whole plan
//! computes once (matching, ids, memberships) so each answer costs one object's diff, and it
//! learns the ids of objects the run creates, so a live group that already lists a new user
//! by id is not told to lose it. Pure like the planner: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::DesiredState;
use crate::model::tenant::{LiveGroup, LiveUser, Resource as _, Snapshot};

use super::diff::{self, Context};
use super::{Change, Holds, Kind, PlanError, PlanOptions, matching};

/// Answers "what does this one live object need now?" during an apply.
pub struct Replanner<'a> {
    desired: &'a DesiredState,
    ctx: Context<'a>,
    memberships: BTreeMap<String, BTreeSet<String>>,
    /// Objects whose match is ambiguous (and their live candidates): a re-plan that involves
    /// one fails, and only that one.
    holds: Holds,
}

impl std::fmt::Debug for Replanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replanner").finish_non_exhaustive()
    }
}

impl<'a> Replanner<'a> {
    /// A replanner for `desired` against `live` (the snapshot the plan was made from, or a
    /// newer one).
    pub fn new(
        desired: &'a DesiredState,
        live: &'a Snapshot,
        options: &'a PlanOptions,
    ) -> Result<Replanner<'a>, PlanError> {
        let matched = match matching::match_all(desired, live) {
            Ok(matched) => matched,
            Err(PlanError::Ambiguous(_)) => matching::match_partial(desired, live)?,
            Err(e) => return Err(e),
        };
        let (holds, _) = Holds::new(desired, live, &matched.held);
        Ok(Replanner {
            desired,
            ctx: Context::new(desired, live, &matched, options),
            memberships: super::diff::memberships(desired, &options.target, &mut Vec::new()),
            holds,
        })
    }

    /// Records that the run created `kind` `name` with this id.
    pub fn note_created(&mut self, kind: Kind, name: &str, id: &str) {
        self.ctx.note_created(kind, name, id);
    }

    /// The change that brings `fresh` in line with the desired user named `key`; `None`
    /// when it already is (or the user is protected), or `key` is not a desired user.
    pub fn user(&mut self, key: &str, fresh: &LiveUser) -> Result<Option<Change>, PlanError> {
        let Some(user) = self.desired.user(key) else {
            return Ok(None);
        };
        self.refuse_held(Kind::User, key, fresh.id())?;
        let mut warnings = Vec::new();
        let change = diff::user_change(&mut self.ctx, user, Some(fresh), &mut warnings)?;
        self.check(change)
    }

    /// An error when the object is held (its match is ambiguous, or it is a candidate of
    /// an ambiguous match).
    fn refuse_held(&self, kind: Kind, key: &str, id: Option<&str>) -> Result<(), PlanError> {
        match self.holds.object(kind, key, id) {
            Some(why) => Err(PlanError::Ambiguous(vec![format!("{kind} {key:?}: {why}")])),
            None => Ok(()),
        }
    }

    /// `change`, unless it refers to a held object.
    fn check(&self, change: Option<Change>) -> Result<Option<Change>, PlanError> {
        match change {
            Some(c) => match self.holds.change(&c) {
                Some(why) => Err(PlanError::Ambiguous(vec![format!(
                    "{} {:?}: {why}",
                    c.kind, c.key
                )])),
                None => Ok(Some(c)),
            },
            None => Ok(None),
        }
    }

    /// The change that brings `fresh` in line with the desired group named `key`.
    pub fn group(&mut self, key: &str, fresh: &LiveGroup) -> Result<Option<Change>, PlanError> {
        let Some(group) = self.desired.group(key) else {
            return Ok(None);
        };
        let members = self.memberships.get(group.display_name.value.as_str());
        self.refuse_held(Kind::Group, key, fresh.id())?;
        let mut warnings = Vec::new();
        let change = diff::group_change(&mut self.ctx, group, Some(fresh), members, &mut warnings)?;
        self.check(change)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Replanner;
    use crate::plan::tests::{desired_with, live_group, live_user, plan_ok, snapshot};
    use crate::plan::{Action, Edit, Kind, PlanOptions};

    // A re-plan of one object agrees with a whole plan, sees only the fresh copy, and knows
    // the ids the run has created.
    #[test]
    fn replans_one_object() {
        let desired = desired_with(
            "collections: {groupMembers: authoritative}\n",
            "users:\n  - userName: a@x.example\n    title: Lead\n  - userName: new@x.example\n\
             groups:\n  - displayName: Ops\n    members: [a@x.example, new@x.example]\n",
        );
        let live = snapshot(
            &[json!({"id": "ua", "userName": "a@x.example", "title": "Agent"})],
            &[json!({"id": "g", "displayName": "Ops", "members": [{"value": "ua"}]})],
        );
        let options = PlanOptions::default();
        let whole = plan_ok(&desired, &live, &options);
        let mut replanner = Replanner::new(&desired, &live, &options).expect("matches");
        let fresh = live_user(
            &json!({"id": "ua", "userName": "a@x.example", "title": "Agent",
                                      "nickName": "theirs", "meta": {"version": "W/\"9\""}}),
        );
        let change = replanner
            .user("A@x.example", &fresh)
            .expect("plans")
            .expect("title differs");
        let planned = whole
            .changes
            .iter()
            .find(|c| c.key == "a@x.example")
            .expect("planned");
        assert_eq!(change.edits, planned.edits);
        assert_eq!(change.version.as_deref(), Some("W/\"9\""), "fresh version");

        // Already as desired: nothing.
        let done = live_user(&json!({"id": "ua", "userName": "a@x.example", "title": "Lead"}));
        assert_eq!(replanner.user("a@x.example", &done).expect("plans"), None);

        // The group already holds the new user (added by this run): not removed, not re-added.
        replanner.note_created(Kind::User, "NEW@x.example", "un");
        let group = live_group(&json!({"id": "g", "displayName": "Ops",
            "members": [{"value": "ua"}, {"value": "un"}, {"value": "stranger"}]}));
        let change = replanner
            .group("ops", &group)
            .expect("plans")
            .expect("stranger goes");
        assert_eq!(change.action, Action::Patch);
        let [Edit::RemoveMembers { members }] = change.edits.as_slice() else {
            panic!("one removal: {:?}", change.edits);
        };
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].id.as_deref(), Some("stranger"));
        assert_eq!(
            replanner.user("nobody@x.example", &done).expect("plans"),
            None
        );
    }

    // One ambiguous object fails only the re-plans that involve it: its own, a group that
    // lists it, and a re-plan of its live candidate; everything else re-plans as usual.
    // `plan_partial` holds the same objects and leaves the candidate unpruned.
    #[test]
    fn an_ambiguity_fails_only_what_involves_it() {
        let desired = desired_with(
            "ownership: {users: all, groups: all}\nsafety: {maxDeletePercent: 100, maxDeleteCount: 100}\n",
            "users:\n  - userName: a@x.example\n    title: Lead\n\
             \x20 - userName: b@x.example\n    externalId: hr-b\n\
             groups:\n  - displayName: Ops\n    members: [a@x.example]\n\
             \x20 - displayName: Pair\n    members: [a@x.example, b@x.example]\n",
        );
        let live = snapshot(
            &[
                json!({"id": "ua", "userName": "a@x.example", "title": "Agent"}),
                json!({"id": "twin", "userName": "b@x.example", "externalId": "other"}),
            ],
            &[json!({"id": "g", "displayName": "Ops"})],
        );
        let options = PlanOptions::default();
        assert!(crate::plan::plan(&desired, &live, &options).is_err());
        let mut replanner = Replanner::new(&desired, &live, &options).expect("partial");
        let a = live_user(&json!({"id": "ua", "userName": "a@x.example", "title": "Agent"}));
        assert!(replanner.user("a@x.example", &a).expect("plans").is_some());
        let ops = live_group(&json!({"id": "g", "displayName": "Ops"}));
        assert!(replanner.group("Ops", &ops).expect("plans").is_some());
        let twin =
            live_user(&json!({"id": "twin", "userName": "b@x.example", "externalId": "other"}));
        let err = replanner.user("b@x.example", &twin).expect_err("held");
        assert!(err.to_string().contains("externalId differs"), "{err}");
        let pair =
            live_group(&json!({"id": "p", "displayName": "Pair", "members": [{"value": "ua"}]}));
        let err = replanner.group("Pair", &pair).expect_err("lists b");
        assert!(err.to_string().contains("refers to user"), "{err}");

        let partial = crate::plan::plan_partial(&desired, &live, &options).expect("partial");
        let keys: Vec<(&str, Action)> = partial
            .plan
            .changes
            .iter()
            .map(|c| (c.key.as_str(), c.action))
            .collect();
        assert_eq!(
            keys,
            [("Ops", Action::Patch), ("a@x.example", Action::Patch)],
            "no create of b or Pair, no prune of the twin: {partial:#?}"
        );
        let held: Vec<&str> = partial.held.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(held, ["b@x.example", "Pair"]);
    }
}
