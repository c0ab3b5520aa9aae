//! The planner's per-object comparisons, case by case.

use serde_json::json;

use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
use crate::plan::{
    Action, Attr, AttributeSupport, Complex, Edit, Kind, Multi, PlanOptions, Ref, ResourceSchema,
    TargetCapabilities, ValueKey,
};

const THREE: &str = "users:
  - userName: a@x.example
    title: Lead
    department: Ops
    displayName: A
  - userName: b@x.example
    title: Agent
    department: Ops
  - userName: c@x.example
    title: Agent
";

fn names_of(edits: &[Edit]) -> Vec<&'static str> {
    edits.iter().map(Edit::attribute).collect()
}

fn supporting(support: AttributeSupport) -> PlanOptions {
    PlanOptions {
        target: TargetCapabilities::storing(support),
        ..PlanOptions::default()
    }
}

// An attribute the target cannot store gives one warning for all objects that set it
// (pointing at the first), and no edit, neither in creates nor in patches.
// Skill names differing only in case are two skills, as validation and Genesys Cloud
// have them: a tenant holding both plans to nothing, and renaming `billing` to `Billing`
// replaces the one with the other, and the simulated server ends where desired.
#[test]
fn routing_skill_names_are_case_sensitive() {
    let yaml = |skills: &str| {
        format!("users:\n  - userName: a@x.example\n    routingSkills: [{skills}]\n")
    };
    let ext = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example", ext: {"routingSkills": [
                {"name": "Billing", "proficiency": 3}, {"name": "billing", "proficiency": 4}
            ]}}),
        ],
        &[],
    );
    let both = desired_with(
        "",
        &yaml("{name: Billing, proficiency: 3}, {name: billing, proficiency: 4}"),
    );
    assert!(plan_ok(&both, &live, &PlanOptions::default()).is_empty());

    let one = desired_with("", &yaml("{name: Billing, proficiency: 3}"));
    let plan = plan_ok(&one, &live, &PlanOptions::default());
    let c = change(&plan, Kind::User, "a@x.example").expect("a patch of a");
    let skills = c
        .diff
        .iter()
        .find(|d| d.attribute == "routingSkills")
        .unwrap_or_else(|| panic!("{c:#?}"));
    assert_eq!(skills.removed, ["billing (4)"], "{c:#?}");
    assert!(skills.added.is_empty(), "{c:#?}");
    let after = crate::plan::tests::simulate(&plan, &live);
    assert!(plan_ok(&one, &after, &PlanOptions::default()).is_empty());
}

#[test]
fn unsupported_attributes_warn_once_and_are_not_written() {
    let desired = desired_with("", THREE);
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example", "title": "Agent", "displayName": "Old"}),
            json!({"id": "b", "userName": "b@x.example"}),
        ],
        &[],
    );
    let support = AttributeSupport::only([
        (ResourceSchema::User, "userName"),
        (ResourceSchema::User, "displayName"),
    ]);
    let plan = plan_ok(&desired, &live, &supporting(support));
    let messages: Vec<(&str, String)> = plan
        .warnings
        .iter()
        .map(|w| {
            (
                w.message.as_str(),
                w.source
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                "`department` is set on 2 object(s) but the target's schemas have no such writable attribute: not managed on this target",
                "org.yaml:4".to_owned()
            ),
            (
                "`title` is set on 3 object(s) but the target's schemas have no such writable attribute: not managed on this target",
                "org.yaml:3".to_owned()
            ),
        ]
    );
    let a = change(&plan, Kind::User, "a@x.example").expect("displayName differs");
    assert_eq!(names_of(&a.edits), vec!["displayName"]);
    assert!(
        change(&plan, Kind::User, "b@x.example").is_none(),
        "{plan:#?}"
    );
    let c = change(&plan, Kind::User, "c@x.example").expect("created");
    assert_eq!(c.action, Action::Create);
    assert_eq!(names_of(&c.edits), vec!["userName"]);
}

// The same with what a target's `/Schemas` give (`scim::wire::attribute_support` reads
// them): `title` read-only, so unsupported; names matched case-insensitively.
#[test]
fn support_from_schemas() {
    let support = AttributeSupport::only([
        (ResourceSchema::User, "userName"),
        (ResourceSchema::Group, "displayName"),
        (ResourceSchema::User, "displayName"),
        (ResourceSchema::Enterprise, "Department"),
    ]);

    let desired = desired_with("", THREE);
    let plan = plan_ok(&desired, &snapshot(&[], &[]), &supporting(support));
    assert_eq!(plan.warnings.len(), 1, "{:#?}", plan.warnings);
    assert!(
        plan.warnings[0]
            .message
            .starts_with("`title` is set on 3 object(s)")
    );
    let a = change(&plan, Kind::User, "a@x.example").expect("created");
    assert_eq!(
        names_of(&a.edits),
        vec!["userName", "displayName", "department"]
    );
}

// Genesys Cloud offboards deactivate-first even under `prune: {users: delete}`: an active
// user absent from YAML is deactivated, and only an inactive one deleted.
#[test]
fn genesys_deletes_only_inactive_users() {
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example", "active": true}),
            json!({"id": "b", "userName": "b@x.example", "active": false}),
            json!({"id": "c", "userName": "c@x.example"}),
        ],
        &[],
    );
    let config =
        "ownership: {users: all}\nprune: {users: delete}\nsafety: {maxDeletePercent: 100}\n";
    let genesys = desired_with(
        &format!(
            "{config}target: {{kind: genesys, region: mypurecloud.com, clientId: {{fromEnv: A}}, clientSecret: {{fromEnv: B}}}}\n"
        ),
        "users: []\n",
    );
    let actions = |plan: &crate::plan::Plan| -> Vec<(String, Action)> {
        plan.changes
            .iter()
            .map(|c| (c.key.to_string(), c.action))
            .collect()
    };
    let options = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    let plan = plan_ok(&genesys, &live, &options);
    assert_eq!(
        actions(&plan),
        vec![
            ("a@x.example".to_owned(), Action::Deactivate),
            ("c@x.example".to_owned(), Action::Deactivate),
            ("b@x.example".to_owned(), Action::Delete),
        ],
        "{plan:#?}"
    );
    let scim = desired_with(config, "users: []\n");
    let plan = plan_ok(&scim, &live, &PlanOptions::default());
    assert!(
        plan.changes.iter().all(|c| c.action == Action::Delete),
        "{plan:#?}"
    );
}

// Protected principals are never changed: not patched though they differ (a warning says
// so), not pruned, not removed from a group whose members are authoritative.
#[test]
fn protected_objects_are_never_changed() {
    let desired = desired_with(
        "ownership: {users: all, groups: all}\nprune: {users: delete}\nsafety: {maxDeletePercent: 100}\nprotected: {users: [Root@x.example, keep@x.example], groups: [Admins]}\n",
        "users:\n  - userName: root@x.example\n    title: Boss\n  - userName: a@x.example\ngroups:\n  - displayName: Ops\n    members: [a@x.example]\n  - displayName: Admins\n    members: [a@x.example]\n",
    );
    let live = snapshot(
        &[
            json!({"id": "r", "userName": "root@x.example", "title": "Root"}),
            json!({"id": "k", "userName": "keep@x.example"}),
            json!({"id": "a", "userName": "a@x.example"}),
            json!({"id": "x", "userName": "x@x.example"}),
        ],
        &[
            json!({"id": "ops", "displayName": "Ops", "members": [
                    {"value": "k"}, {"value": "x"}, {"value": "r"}]}),
            json!({"id": "adm", "displayName": "Admins", "members": [{"value": "r"}]}),
        ],
    );
    let plan = plan_ok(&desired, &live, &PlanOptions::default());
    let touched: Vec<(&str, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.key.as_str(), c.action))
        .collect();
    assert_eq!(
        touched,
        vec![("Ops", Action::Patch), ("x@x.example", Action::Delete)],
        "{plan:#?}"
    );
    let ops = change(&plan, Kind::Group, "Ops").expect("patched");
    assert_eq!(
        ops.edits,
        vec![
            Edit::AddMembers {
                members: vec![Ref {
                    kind: Kind::User,
                    name: "a@x.example".into(),
                    id: Some("a".into())
                }]
            },
            Edit::RemoveMembers {
                members: vec![Ref {
                    kind: Kind::User,
                    name: "x@x.example".into(),
                    id: Some("x".into())
                }]
            },
        ],
        "keep and root stay members"
    );
    let warnings: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warnings,
        vec![
            r#"group "Admins" is protected: not changed, though live differs"#,
            r#"user "root@x.example" is protected: not changed, though live differs in title"#,
        ]
    );
}

// A protected group stays untouched when desired state reaches it under another name
// (`previously`, or its externalId): protection follows the live object, as for users.
#[test]
fn protected_group_matched_under_another_name() {
    let desired = desired_with(
        "protected: {groups: [Old Ops, Legacy]}\n",
        "groups:\n  - displayName: Ops\n    previously: [old ops]\n  - displayName: Sales\n    externalId: crm-1\n",
    );
    let live = snapshot(
        &[],
        &[
            json!({"id": "o", "displayName": "Old Ops"}),
            json!({"id": "l", "displayName": "Legacy", "externalId": "crm-1"}),
        ],
    );
    let plan = plan_ok(&desired, &live, &PlanOptions::default());
    assert!(plan.changes.is_empty(), "{plan:#?}");
    let warnings: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warnings,
        vec![
            r#"group "Legacy" is protected: not changed, though live differs"#,
            r#"group "Old Ops" is protected: not changed, though live differs"#,
        ]
    );
}

// Group members: authoritative adds and removes, additive only adds.
#[test]
fn members_authoritative_or_additive() {
    let resources = "users:\n  - userName: a@x.example\n  - userName: b@x.example\n    groups: [Ops]\ngroups:\n  - displayName: Ops\n    members: [a@x.example, Sub]\n  - displayName: Sub\n";
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example"}),
            json!({"id": "x", "userName": "x@x.example"}),
        ],
        &[json!({"id": "ops", "displayName": "Ops", "members": [
                {"value": "a", "type": "User"}, {"value": "x", "type": "User"}, {"value": "gone"}]})],
    );
    // Members are added in name order (the union of `members` and users' `groups`).
    let added = vec![
        Ref {
            kind: Kind::Group,
            name: "Sub".into(),
            id: None,
        },
        Ref {
            kind: Kind::User,
            name: "b@x.example".into(),
            id: None,
        },
    ];
    let plan = plan_ok(&desired_with("", resources), &live, &PlanOptions::default());
    let ops = change(&plan, Kind::Group, "Ops").expect("patched");
    assert_eq!(
        ops.edits,
        vec![
            Edit::AddMembers {
                members: added.clone()
            },
            Edit::RemoveMembers {
                members: vec![
                    Ref {
                        kind: Kind::User,
                        name: "x@x.example".into(),
                        id: Some("x".into())
                    },
                    Ref {
                        kind: Kind::User,
                        name: "gone".into(),
                        id: Some("gone".into())
                    },
                ]
            },
        ]
    );
    assert_eq!(ops.diff[0].added, vec!["Sub", "b@x.example"]);
    assert_eq!(ops.diff[0].removed, vec!["x@x.example", "gone"]);

    let additive = desired_with("collections: {groupMembers: additive}\n", resources);
    let plan = plan_ok(&additive, &live, &PlanOptions::default());
    let ops = change(&plan, Kind::Group, "Ops").expect("patched");
    assert_eq!(ops.edits, vec![Edit::AddMembers { members: added }]);
    assert!(ops.diff[0].removed.is_empty());
}

/// Plans `desired` against `live`, applies the plan with the simulated server and checks
/// that a second plan finds nothing; returns the first plan's edits of `key`.
fn settles(
    desired: &crate::desired::DesiredState,
    live: &crate::model::tenant::Snapshot,
    key: &str,
) -> Vec<Edit> {
    let plan = plan_ok(desired, live, &PlanOptions::default());
    let after = crate::plan::tests::simulate(&plan, live);
    let again = plan_ok(desired, &after, &PlanOptions::default());
    assert!(again.is_empty(), "first: {plan:#?}\nagain: {again:#?}");
    change(&plan, Kind::User, key)
        .map(|c| c.edits.clone())
        .unwrap_or_default()
}

// Desired contacts that share a key (a number listed twice, two work addresses) each get
// their own key, so they do not fight over one live value from plan to plan.
#[test]
fn repeated_desired_contacts_settle() {
    let desired = desired_with(
        "",
        "users:\n  - userName: a@x.example\n    phoneNumbers: [{value: '+14155550100'}, {value: '+14155550100', type: work}]\n    emails:\n      - {value: one@x.example, type: work}\n      - {value: two@x.example, type: work}\n      - {value: ONE@x.example}\n",
    );
    let live = snapshot(&[json!({"id": "a", "userName": "a@x.example"})], &[]);
    assert_eq!(
        settles(&desired, &live, "a@x.example"),
        vec![
            Edit::Add {
                attr: Multi::Emails,
                values: vec![
                    Complex::of(json!({"value": "one@x.example", "type": "work"})),
                    Complex::of(json!({"value": "two@x.example", "type": "work"})),
                ]
            },
            Edit::Add {
                attr: Multi::PhoneNumbers,
                values: vec![Complex::of(json!({"value": "+14155550100"}))]
            },
        ]
    );
    // Live as desired, in another case and order: nothing to do.
    let live = snapshot(
        &[json!({"id": "a", "userName": "a@x.example",
                     "emails": [{"value": "TWO@x.example", "type": "Work"}, {"value": "one@x.example", "type": "work"}],
                     "phoneNumbers": [{"value": "+14155550100", "type": "mobile"}]})],
        &[],
    );
    assert!(plan_ok(&desired, &live, &PlanOptions::default()).is_empty());
}

// Live values that share a key (a role held twice, two work addresses) are settled in one
// plan: all as desired is no change; otherwise the key's values are removed and the desired
// one added, rather than all of them replaced by the same value.
#[test]
fn repeated_live_values_settle() {
    let desired = desired_with(
        "",
        "roles:\n  - name: Agent\nusers:\n  - userName: a@x.example\n    roles: [Agent]\n    emails: [{value: a@x.example, type: work}]\n",
    );
    let live = snapshot(
        &[json!({"id": "a", "userName": "a@x.example",
                     "roles": [{"value": "Agent"}, {"value": "agent"}],
                     "emails": [{"value": "a@x.example", "type": "work"}, {"value": "b@x.example", "type": "work"}]})],
        &[],
    );
    assert_eq!(
        settles(&desired, &live, "a@x.example"),
        vec![
            Edit::Remove {
                attr: Multi::Emails,
                key: Box::new(ValueKey::new("type", "work"))
            },
            Edit::Add {
                attr: Multi::Emails,
                values: vec![Complex::of(json!({"value": "a@x.example", "type": "work"}))]
            },
        ]
    );
}

// A removal or replacement targets exactly the values meant: by type where that is
// exact, else by address, and when neither is (the same type and the same address both
// held twice) the whole attribute is replaced, keeping the values that stay as they are.
#[test]
fn edits_target_exactly_the_values_meant() {
    // Dropping `b (home)` by type would also drop `a (home)`, which stays: by address.
    let desired = desired_with(
        "",
        "users:\n  - userName: u@x.example\n    emails: [{value: a@x.example}]\n",
    );
    let live = snapshot(
        &[json!({"id": "u", "userName": "u@x.example",
                     "emails": [{"value": "b@x.example", "type": "home"}, {"value": "a@x.example", "type": "home"}]})],
        &[],
    );
    assert_eq!(
        settles(&desired, &live, "u@x.example"),
        vec![Edit::Remove {
            attr: Multi::Emails,
            key: Box::new(ValueKey::new("value", "b@x.example"))
        }]
    );
    // `v (work)` becomes `w (work)`; neither `type eq work` (z too) nor `value eq v`
    // (v (home), which stays, too) picks it out alone.
    let desired = desired_with(
        "",
        "users:\n  - userName: u@x.example\n    emails: [{value: z@x.example}, {value: w@x.example, type: work}, {value: v@x.example, type: home}]\n",
    );
    let live = snapshot(
        &[json!({"id": "u", "userName": "u@x.example",
                     "emails": [{"value": "v@x.example", "type": "work"},
                                {"value": "z@x.example", "type": "work", "primary": true},
                                {"value": "v@x.example", "type": "home"}]})],
        &[],
    );
    assert_eq!(
        settles(&desired, &live, "u@x.example"),
        vec![Edit::ReplaceAll {
            attr: Multi::Emails,
            values: vec![
                Complex::of(json!({"value": "w@x.example", "type": "work"})),
                Complex::of(json!({"value": "z@x.example", "type": "work", "primary": true})),
                Complex::of(json!({"value": "v@x.example", "type": "home"})),
            ]
        }]
    );
}

// User roles: additive (the default) only adds, authoritative also removes; names
// compare case-insensitively.
#[test]
fn roles_additive_or_authoritative() {
    let resources = "roles:\n  - name: Agent\n  - name: Supervisor\n  - name: Admin\nusers:\n  - userName: a@x.example\n    roles: [agent, Supervisor]\n";
    let live = snapshot(
        &[json!({"id": "a", "userName": "a@x.example",
                     "roles": [{"value": "Agent"}, {"value": "Admin"}]})],
        &[],
    );
    let add = Edit::Add {
        attr: Multi::Roles,
        values: vec![Complex::of(json!({"value": "Supervisor"}))],
    };
    let plan = plan_ok(&desired_with("", resources), &live, &PlanOptions::default());
    let a = change(&plan, Kind::User, "a@x.example").expect("patched");
    assert_eq!(a.edits, vec![add.clone()]);
    assert_eq!(a.diff[0].added, vec!["Supervisor"]);

    let authoritative = desired_with("collections: {userRoles: authoritative}\n", resources);
    let plan = plan_ok(&authoritative, &live, &PlanOptions::default());
    let a = change(&plan, Kind::User, "a@x.example").expect("patched");
    assert_eq!(
        a.edits,
        vec![
            Edit::Remove {
                attr: Multi::Roles,
                key: Box::new(ValueKey::new("value", "Admin"))
            },
            add
        ]
    );
    assert_eq!(a.diff[0].removed, vec!["Admin"]);
    assert_eq!(Attr::Title.name(), "title");
}

// Authoritative roles never take the org's default role away from a user whose `roles:`
// simply does not mention it (every Genesys user gets `employee`); `roles: []` does, and
// says so; an org that configures no default roles gets plain authoritative removal.
#[test]
fn authoritative_roles_keep_the_default_role() {
    let roles = "roles:\n  - name: Agent\n  - name: Admin\n";
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example",
                   "roles": [{"value": "Employee"}, {"value": "Admin"}]}),
            json!({"id": "b", "userName": "b@x.example",
                   "roles": [{"value": "employee"}, {"value": "Agent"}]}),
        ],
        &[],
    );
    let users = "users:\n  - userName: a@x.example\n    roles: [Agent]\n  - userName: b@x.example\n    roles: []\n";
    let resources = format!("{roles}{users}");
    let authoritative = "collections: {userRoles: authoritative}\n";
    let plan = plan_ok(
        &desired_with(authoritative, &resources),
        &live,
        &PlanOptions::default(),
    );
    let a = change(&plan, Kind::User, "a@x.example").expect("patched");
    assert_eq!(a.diff[0].removed, vec!["Admin"], "{a:#?}");
    assert_eq!(a.diff[0].added, vec!["Agent"], "{a:#?}");
    let b = change(&plan, Kind::User, "b@x.example").expect("patched");
    assert_eq!(b.diff[0].removed, vec!["employee", "Agent"], "{b:#?}");
    let warnings: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warnings,
        [
            r#"roles: [] takes the default role "employee" away (policy.defaultRoles); list it to keep it"#
        ],
    );
    assert!(plan.warnings[0].source.is_some());

    let none = format!("{authoritative}policy: {{defaultRoles: []}}\n");
    let plan = plan_ok(
        &desired_with(&none, &resources),
        &live,
        &PlanOptions::default(),
    );
    let a = change(&plan, Kind::User, "a@x.example").expect("patched");
    assert_eq!(a.diff[0].removed, vec!["Employee", "Admin"], "{a:#?}");
    assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);

    let listed =
        "  - name: employee\nusers:\n  - userName: a@x.example\n    roles: [Agent, EMPLOYEE]\n";
    let plan = plan_ok(
        &desired_with(authoritative, &format!("{roles}{listed}")),
        &live,
        &PlanOptions::default(),
    );
    let a = change(&plan, Kind::User, "a@x.example").expect("patched");
    assert_eq!(a.diff[0].removed, vec!["Admin"], "{a:#?}");
}

// Genesys Cloud gives a new user `employee` only when its create names no roles: a create
// that names roles names the default roles too (labelled as such), in additive and
// authoritative mode alike. Not when YAML lists no roles (the server grants them then), not
// a default role the org does not define, and never on a plain SCIM target.
#[test]
fn a_create_that_names_roles_names_the_default_roles_on_genesys() {
    let roles = "roles:\n  - name: Agent\n";
    let users = "users:\n  - userName: a@x.example\n    roles: [Agent]\n  - userName: b@x.example\n    roles: []\n";
    let resources = format!("{roles}{users}");
    let mut live = snapshot(&[], &[]);
    live.roles = Some(
        ["employee", "Agent"]
            .iter()
            .map(|name| crate::model::tenant::PlatformRole {
                id: format!("r-{name}"),
                name: (*name).to_owned(),
                ..crate::model::tenant::PlatformRole::default()
            })
            .collect(),
    );
    let genesys = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    let added = |plan: &crate::plan::Plan, key: &str| -> Vec<Complex> {
        let change = change(plan, Kind::User, key).expect("created");
        assert_eq!(change.action, Action::Create);
        change
            .edits
            .iter()
            .filter_map(|e| match e {
                Edit::Add {
                    attr: Multi::Roles,
                    values,
                } => Some(values.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    for mode in ["additive", "authoritative"] {
        let config = format!("collections: {{userRoles: {mode}}}\n");
        let plan = plan_ok(&desired_with(&config, &resources), &live, &genesys);
        assert_eq!(
            added(&plan, "a@x.example"),
            vec![
                Complex::of(json!({"value": "Agent"})),
                Complex::of(json!({"value": "employee"}))
            ],
            "{mode}"
        );
        let a = change(&plan, Kind::User, "a@x.example").unwrap();
        let roles = a.diff.iter().find(|d| d.attribute == "roles").unwrap();
        assert!(
            roles
                .added
                .contains(&"employee (policy.defaultRoles)".to_owned()),
            "{roles:#?}"
        );
        assert!(added(&plan, "b@x.example").is_empty(), "{mode}");

        let on_scim = plan_ok(
            &desired_with(&config, &resources),
            &live,
            &PlanOptions::default(),
        );
        assert_eq!(
            added(&on_scim, "a@x.example"),
            vec![Complex::of(json!({"value": "Agent"}))]
        );
    }
    let undefined = "policy: {defaultRoles: [Basic]}\n";
    let plan = plan_ok(&desired_with(undefined, &resources), &live, &genesys);
    assert_eq!(
        added(&plan, "a@x.example"),
        vec![Complex::of(json!({"value": "Agent"}))]
    );
}

// On a target that takes only `type` filters on emails and phone numbers (Genesys Cloud,
// docs/genesys.md §6), a contact picked out by type is edited through its type; one that only
// its address picks out, and a routing skill (no filter on extension attributes is
// documented), is written by replacing the whole attribute. A plain SCIM target keeps the
// narrow filters.
#[test]
fn value_filters_are_the_forms_the_target_takes() {
    let desired = desired_with(
        "ownership: {users: all}\n",
        "users:\n  - userName: a@x.example\n    emails: [{value: new@x.example, type: work}]\n    phoneNumbers:\n      - {value: '+15550101', type: work}\n      - {value: '+15550199', type: work}\n    routingSkills: [{name: Sales, proficiency: 4}]\n",
    );
    let live = snapshot(
        &[json!({"id": "a", "userName": "a@x.example",
            "emails": [{"value": "old@x.example", "type": "work"}],
            "phoneNumbers": [{"value": "+15550101", "type": "work"},
                             {"value": "+15550102", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User":
                {"routingSkills": [{"name": "Sales", "proficiency": 2},
                                   {"name": "Billing", "proficiency": 1}]}})],
        &[],
    );
    let edits = |options: &PlanOptions| -> Vec<Edit> {
        let plan = plan_ok(&desired, &live, options);
        assert_eq!(plan.changes.len(), 1, "{plan:#?}");
        plan.changes[0].edits.clone()
    };
    let genesys = edits(&PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    });
    assert!(
        genesys.contains(&Edit::Replace {
            attr: Multi::Emails,
            key: Box::new(ValueKey::new("type", "work")),
            value: Complex::of(json!({"value": "new@x.example", "type": "work"})),
        }),
        "{genesys:#?}"
    );
    for attr in [Multi::PhoneNumbers, Multi::RoutingSkills] {
        let of_attr: Vec<&Edit> = genesys
            .iter()
            .filter(|e| e.attribute() == attr.name())
            .collect();
        assert!(
            matches!(of_attr.as_slice(), [Edit::ReplaceAll { .. }]),
            "{attr:?}: {genesys:#?}"
        );
    }
    let plain = edits(&PlanOptions::default());
    assert!(
        plain.contains(&Edit::Remove {
            attr: Multi::PhoneNumbers,
            key: Box::new(ValueKey::new("value", "+15550102")),
        }),
        "{plain:#?}"
    );
    assert!(
        plain.iter().any(|e| matches!(
            e,
            Edit::Replace {
                attr: Multi::RoutingSkills,
                ..
            }
        )),
        "{plain:#?}"
    );
}

#[test]
fn the_view_folds_case_with_and_without_a_copy() {
    use std::borrow::Cow;
    assert!(matches!(
        super::folded("ana@northwind.example"),
        Cow::Borrowed(_)
    ));
    assert_eq!(
        super::folded("Ana@Northwind.example"),
        "ana@northwind.example"
    );
    assert_eq!(
        super::folded("ÉMILE@northwind.example"),
        "émile@northwind.example"
    );
    let desired = desired_with("", "users:\n  - userName: Émile@Northwind.example\n");
    let view = super::View::new(&desired);
    for live in ["émile@northwind.example", "ÉMILE@NORTHWIND.EXAMPLE"] {
        assert!(view.contains(Kind::User, live, None), "{live}");
    }
    assert!(!view.contains(Kind::User, "emile@northwind.example", None));
}

/// A matched user in `rotate_passwords` gets one value-less `password` row and edit (no value
/// anywhere in the plan's JSON); a user the plan creates, or one not in the set, gets none;
/// a target without `changePassword` gets a warning instead of the row.
#[test]
fn changed_password_source_is_a_value_less_row() {
    // Which users' sources changed is decided outside the planner (apply::rotation); the
    // fixture needs no password source for the planner to act on the set.
    let desired = desired_with(
        "",
        "users:\n  - userName: a@x.example\n  - userName: b@x.example\n  - userName: c@x.example\n",
    );
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example"}),
            json!({"id": "b", "userName": "b@x.example"}),
        ],
        &[],
    );
    let mut options = PlanOptions {
        rotate_passwords: ["a@x.example", "c@x.example"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        ..PlanOptions::default()
    };
    let plan = plan_ok(&desired, &live, &options);
    let rotated: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.edits.contains(&Edit::Password))
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(rotated, ["a@x.example"]);
    let a = plan
        .changes
        .iter()
        .find(|c| c.key == "a@x.example")
        .expect("a row");
    assert_eq!(a.action, Action::Patch);
    assert_eq!(
        serde_json::to_value(&a.diff).expect("json"),
        json!([{"attribute": "password", "note": "changed at source"}])
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    options.target.change_password = false;
    let plan = plan_ok(&desired, &live, &options);
    assert!(
        plan.changes.iter().all(|c| c.key != "a@x.example"),
        "{:?}",
        plan.changes
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("a@x.example") && w.message.contains("changePassword")),
        "{:?}",
        plan.warnings
    );
}

// A desired user with no live match whose userName belongs to a user in the `deleted` state
// (Genesys Cloud) is restored, not created: the create would be refused. The restore keeps
// the deleted user's id and version, carries the create's edits (roles included: deletion
// took them), is counted and shown as its own action in every format, and the simulated
// server ends where desired. A user with no deleted twin is still created; a protected one
// is restored all the same, as a protected user YAML names and the tenant lacks is created.
#[test]
fn a_deleted_user_is_restored_not_created() {
    let yaml = "roles:\n  - name: Agent\nusers:\n  - userName: Ana@x.example\n    title: Lead\n    roles: [Agent]\n  \
                - userName: bo@x.example\n";
    let desired = desired_with("", yaml);
    let mut live = snapshot(&[], &[]);
    live.deleted_users = vec![crate::model::tenant::DeletedUser {
        id: "d-1".into(),
        email: "ana@x.example".into(),
        version: 4,
    }];
    let plan = plan_ok(&desired, &live, &PlanOptions::default());
    let ana = change(&plan, Kind::User, "ana@x.example").expect("ana");
    assert_eq!(ana.action, Action::Restore, "{ana:#?}");
    assert_eq!(ana.id.as_deref(), Some("d-1"));
    assert_eq!(ana.version.as_deref(), Some("4"));
    assert!(names_of(&ana.edits).contains(&"roles"), "{ana:#?}");
    let bo = change(&plan, Kind::User, "bo@x.example").expect("bo");
    assert_eq!(bo.action, Action::Create);
    let summary = plan.summary();
    assert_eq!((summary.create, summary.restore), (1, 1));
    assert_eq!(summary.changes(), 2);

    let summary_text = crate::plan::render::summary_line(&plan);
    assert!(
        summary_text.contains("1 to create, 1 to restore,"),
        "{summary_text}"
    );
    let mut text = Vec::new();
    crate::plan::render::text(&plan, &mut text, false).expect("renders");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(text.contains("+ restore user Ana@x.example"), "{text}");
    let mut md = Vec::new();
    crate::plan::render::markdown(&plan, &mut md).expect("renders");
    let md = String::from_utf8(md).expect("utf-8");
    assert!(md.contains("| create | restore | patch"), "{md}");
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(json["changes"][1]["action"], "restore", "{json}");
    assert_eq!(
        serde_json::to_value(summary).expect("json")["restore"],
        1,
        "{json}"
    );

    let after = crate::plan::tests::simulate(&plan, &live);
    assert!(after.deleted_users.is_empty());
    assert!(plan_ok(&desired, &after, &PlanOptions::default()).is_empty());

    let protected = desired_with("protected:\n  users: [ana@x.example]\n", yaml);
    let plan = plan_ok(&protected, &live, &PlanOptions::default());
    let ana = change(&plan, Kind::User, "ana@x.example").expect("ana");
    assert_eq!(ana.action, Action::Restore);
    assert!(ana.blocked.is_none(), "{ana:#?}");
}

// A group's type is fixed when it is created (Genesys has no `type` in `GroupUpdate`): a
// create sends the written type, while a live group of another type gets a warning naming
// the file and line, and no edit that every run would send again.
#[test]
fn a_live_groups_type_is_warned_about_not_patched() {
    let genesys = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    let live = snapshot(
        &[],
        &[json!({"id": "g", "displayName": "G", "type": "official", "visibility": "public"})],
    );
    let desired = desired_with(
        "",
        "groups:\n  - displayName: G\n    type: social\n  - displayName: New\n    type: social\n",
    );
    let plan = plan_ok(&desired, &live, &genesys);
    assert!(change(&plan, Kind::Group, "G").is_none(), "{plan:#?}");
    let new = change(&plan, Kind::Group, "New").expect("a create");
    assert!(names_of(&new.edits).contains(&"type"), "{new:#?}");
    assert_eq!(plan.warnings.len(), 1, "{:#?}", plan.warnings);
    let w = &plan.warnings[0];
    assert!(
        w.message.contains("cannot be changed once it exists")
            && w.message.contains("\"official\""),
        "{w:#?}"
    );
    assert!(w.source.is_some(), "{w:#?}");
}

// Two users in the `deleted` state that share the email of a user YAML names (a hostile or
// odd tenant): which one to restore cannot be told, so the match is ambiguous. A full plan
// refuses it, naming both ids; a partial plan (apply --plan) holds that user alone and still
// creates the others; the user stays among those a later read of deleted users asks for.
#[test]
fn two_deleted_users_of_one_email_are_ambiguous() {
    let yaml = "users:\n  - userName: Ana@x.example\n  - userName: bo@x.example\n";
    let desired = desired_with("", yaml);
    let mut live = snapshot(&[], &[]);
    let deleted = |id: &str, email: &str| crate::model::tenant::DeletedUser {
        id: id.into(),
        email: email.into(),
        version: 1,
    };
    live.deleted_users = vec![
        deleted("d-1", "ana@x.example"),
        deleted("d-2", "ANA@x.example"),
        deleted("d-3", "cy@x.example"),
    ];
    let err = crate::plan::plan(&desired, &live, &PlanOptions::default()).expect_err("ambiguous");
    let crate::plan::PlanError::Ambiguous(problems) = &err else {
        panic!("{err}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("Ana@x.example")
            && problems[0].contains("d-1")
            && problems[0].contains("d-2"),
        "{problems:?}"
    );

    let partial =
        crate::plan::plan_partial(&desired, &live, &PlanOptions::default()).expect("partial");
    assert_eq!(partial.held.len(), 1, "{:?}", partial.held);
    assert_eq!(partial.held[0].key, "Ana@x.example");
    assert!(change(&partial.plan, Kind::User, "ana@x.example").is_none());
    let bo = change(&partial.plan, Kind::User, "bo@x.example").expect("bo");
    assert_eq!(bo.action, Action::Create);
    assert_eq!(
        crate::plan::unmatched_users(&desired, &live),
        ["Ana@x.example", "bo@x.example"]
    );

    // One deleted user of that email is restored, as before.
    live.deleted_users.remove(1);
    let plan = plan_ok(&desired, &live, &PlanOptions::default());
    let ana = change(&plan, Kind::User, "ana@x.example").expect("ana");
    assert_eq!(
        (ana.action, ana.id.as_deref()),
        (Action::Restore, Some("d-1"))
    );
}

// Genesys Cloud group settings: only what YAML writes is compared (a setting it leaves out
// is never a row, whatever its live value), owners compare as sets of user ids (order and
// case of names do not matter) and are one row naming who comes and who goes; a simulated
// server that applies the plan ends where YAML says. On a plain SCIM target the same YAML
// is one warning and no edit.
#[test]
fn group_settings_compare_only_what_yaml_writes() {
    let live_groups = [json!({"id": "g", "displayName": "G", "type": "official",
        "visibility": "public", "rulesVisible": true, "rolesEnabled": false,
        "callsEnabled": true, "includeOwners": false, "ownerIds": ["a", "b"]})];
    let live = snapshot(
        &[
            json!({"id": "a", "userName": "a@x.example"}),
            json!({"id": "b", "userName": "b@x.example"}),
            json!({"id": "c", "userName": "c@x.example"}),
        ],
        &live_groups,
    );
    let users =
        "users:\n  - userName: a@x.example\n  - userName: b@x.example\n  - userName: c@x.example\n";
    let genesys = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    let same = desired_with(
        "",
        &format!(
            "{users}groups:\n  - displayName: G\n    rolesEnabled: false\n    owners: [B@x.example, a@x.example]\n"
        ),
    );
    assert!(plan_ok(&same, &live, &genesys).is_empty());
    let unwritten = desired_with("", &format!("{users}groups:\n  - displayName: G\n"));
    assert!(plan_ok(&unwritten, &live, &genesys).is_empty());

    let changed = desired_with(
        "",
        &format!(
            "{users}groups:\n  - displayName: G\n    visibility: members\n    type: official\n    callsEnabled: false\n    owners: [c@x.example, a@x.example]\n"
        ),
    );
    let plan = plan_ok(&changed, &live, &genesys);
    let c = change(&plan, Kind::Group, "G").expect("a patch");
    assert_eq!(c.action, Action::Patch);
    let rows: Vec<serde_json::Value> = c
        .diff
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            json!({"attribute": "visibility", "before": "public", "after": "members"}),
            json!({"attribute": "callsEnabled", "before": true, "after": false}),
            json!({"attribute": "owners", "added": ["c@x.example"], "removed": ["b@x.example"]}),
        ]
    );
    assert_eq!(names_of(&c.edits), ["visibility", "callsEnabled", "owners"]);
    let after = crate::plan::tests::simulate(&plan, &live);
    assert!(plan_ok(&changed, &after, &genesys).is_empty());

    let on_scim = plan_ok(&changed, &live, &PlanOptions::default());
    assert!(on_scim.changes.is_empty(), "{on_scim:#?}");
    assert_eq!(on_scim.warnings.len(), 1, "{on_scim:#?}");
    assert!(
        on_scim.warnings[0]
            .message
            .contains("Genesys Cloud group settings")
            && on_scim.warnings[0].message.starts_with("`type`"),
        "{on_scim:#?}"
    );
}
