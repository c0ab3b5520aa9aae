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
use crate::scim::{LiveGroup, LiveUser, Snapshot};

use super::diff::{self, Context};
use super::{Change, Kind, PlanError, PlanOptions, matching};

/// Answers "what does this one live object need now?" during an apply.
pub struct Replanner<'a> {
    desired: &'a DesiredState,
    ctx: Context<'a>,
    memberships: BTreeMap<String, BTreeSet<String>>,
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
        let matched = matching::match_all(desired, live)?;
        Ok(Replanner {
            desired,
            ctx: Context::new(desired, live, &matched, options),
            memberships: super::diff::memberships(desired, &mut Vec::new()),
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
        let mut warnings = Vec::new();
        diff::user_change(&mut self.ctx, user, Some(fresh), &mut warnings)
    }

    /// The change that brings `fresh` in line with the desired group named `key`.
    pub fn group(&mut self, key: &str, fresh: &LiveGroup) -> Result<Option<Change>, PlanError> {
        let Some(group) = self.desired.group(key) else {
            return Ok(None);
        };
        let members = self.memberships.get(group.display_name.value.as_str());
        let mut warnings = Vec::new();
        diff::group_change(&mut self.ctx, group, Some(fresh), members, &mut warnings)
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
}
