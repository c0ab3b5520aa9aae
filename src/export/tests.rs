//! Unit tests of the pure export: determinism, quoting, sorting, reference resolution, what
//! is left out, the file layout, and the round trip through the loader and the planner.

use serde_json::{Value, json};

use super::*;
use crate::desired::load_texts;
use crate::model::{SecretSource, Text};
use crate::plan::{PlanOptions, ResourceSchema, TargetCapabilities, plan};
use crate::scim::{LiveGroup, LiveUser};

mod properties;

pub(super) fn snapshot(users: &[Value], groups: &[Value]) -> Snapshot {
    Snapshot {
        roles: None,
        users: users
            .iter()
            .map(|u| serde_json::from_value::<LiveUser>(u.clone()).expect("user"))
            .collect(),
        groups: groups
            .iter()
            .map(|g| serde_json::from_value::<LiveGroup>(g.clone()).expect("group"))
            .collect(),
        ..Snapshot::default()
    }
}

/// Loads the files of an export and plans them against `live`; returns the plan's changes as
/// text (empty when the round trip holds) and the loaded state's users, groups and roles.
pub(super) fn round_trip(export: &Export, live: &Snapshot, support: &AttributeSupport) -> String {
    let files: Vec<(&str, &str)> = export
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let loaded = match load_texts(&files) {
        Ok(l) => l,
        Err(crate::desired::LoadError::Invalid(report)) => {
            let mut text = Vec::new();
            report.write_text(&mut text).unwrap();
            panic!(
                "the export does not load:\n{}\n{:#?}",
                String::from_utf8_lossy(&text),
                export.files
            );
        }
        Err(e) => panic!("{e}"),
    };
    let options = PlanOptions {
        target: TargetCapabilities::storing(support.clone()),
        ..PlanOptions::default()
    };
    let plan = plan(&loaded.state, live, &options).expect("plans");
    plan.changes
        .iter()
        .map(|c| format!("{:?} {} {:?}", c.action, c.key, c.rows()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn user(id: &str, name: &str, extra: &Value) -> Value {
    let mut u = json!({"id": id, "userName": name});
    if let (Some(u), Some(extra)) = (u.as_object_mut(), extra.as_object()) {
        u.extend(extra.clone());
    }
    u
}

fn group(id: &str, name: &str, members: &[(&str, &str)]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|(v, t)| json!({"value": v, "type": t}))
        .collect();
    json!({"id": id, "displayName": name, "members": members})
}

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn sample() -> Snapshot {
    snapshot(
        &[
            user(
                "u1",
                "zoe@x.example",
                &json!({"displayName": "Zoë", "active": true, "title": "yes",
                    "emails": [{"value": "zoe@x.example", "type": "Work", "primary": true},
                               {"value": "z@home.example", "type": "internal"}],
                    "phoneNumbers": [{"value": "+14155550100", "type": "mobile"}],
                    ENT: {"department": "Support & Care", "employeeNumber": "00123",
                          "dateHire": "2023-04-17", "manager": {"value": "u2"}},
                    "roles": [{"value": "Agent"}, {"value": "agent"}, {"value": "Lead"}]}),
            ),
            user(
                "u2",
                "Amy@x.example",
                &json!({"externalId": "hr-2", "active": false, ENT: {"department": "Support & Care"}}),
            ),
            user(
                "u3",
                "bob@x.example",
                &json!({ENT: {"manager": {"value": "gone"}}}),
            ),
        ],
        &[
            group(
                "g1",
                "Team B",
                &[("u3", "User"), ("u1", "User"), ("g2", "Group")],
            ),
            group("g2", "team a", &[("u2", "User")]),
        ],
    )
}

// Two exports of one tenant are identical, whatever order the server lists things in.
#[test]
fn deterministic_across_listing_orders() {
    let live = sample();
    let options = ExportOptions::default();
    let first = export(&live, &options);
    assert_eq!(export(&live, &options), first);
    let mut reversed = live.clone();
    reversed.users.reverse();
    reversed.groups.reverse();
    assert_eq!(export(&reversed, &options), first);
}

// Users and groups are sorted case-insensitively, members too; ids became names.
#[test]
fn sorted_and_resolved() {
    let e = desired_of(&sample(), &ExportOptions::default());
    let names: Vec<&str> = e.users.iter().map(|u| u.user_name.as_str()).collect();
    assert_eq!(names, ["Amy@x.example", "bob@x.example", "zoe@x.example"]);
    let groups: Vec<&str> = e.groups.iter().map(|g| g.display_name.as_str()).collect();
    assert_eq!(groups, ["team a", "Team B"]);
    let members: Vec<&str> = e.groups[1]
        .members
        .iter()
        .flatten()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(members, ["bob@x.example", "team a", "zoe@x.example"]);
    let zoe = &e.users[2];
    assert_eq!(
        zoe.manager.as_deref().map(Text::as_str),
        Some("Amy@x.example")
    );
    // Roles deduplicated case-insensitively and sorted; the role list has one of each.
    let roles: Vec<&str> = zoe
        .roles
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(roles, ["Agent", "Lead"]);
    let stubs: Vec<&str> = e.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(stubs, ["Agent", "Lead"]);
    // bob's manager is not in the tenant: left out, with a warning; nothing else dropped.
    assert!(e.users[1].manager.is_none());
    assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    assert!(
        e.warnings[0].contains("manager id gone"),
        "{:?}",
        e.warnings
    );
    assert!(e.additive_members.is_none() && e.max_group_depth.is_none());
}

// Values YAML would mis-type are quoted, and the loader reads every value back as it was
// exported; the plan against the same tenant is empty.
#[test]
fn quoted_values_read_back_and_plan_empty() {
    let live = sample();
    let options = ExportOptions::default();
    let out = export(&live, &options);
    let support = out
        .files
        .get("users/support-care.yaml")
        .expect("file by department");
    for quoted in [
        "employeeNumber: \"00123\"",
        "title: \"yes\"",
        "dateHire: \"2023-04-17\"",
        "{value: \"+14155550100\", type: mobile}",
        "active: false",
    ] {
        assert!(support.contains(quoted), "{quoted} in\n{support}");
    }
    // An email type desired state has no name for is written without a type.
    assert!(support.contains("- {value: z@home.example}\n"), "{support}");
    assert_eq!(round_trip(&out, &live, &AttributeSupport::all()), "");

    let files: Vec<(&str, &str)> = out
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let loaded = load_texts(&files).unwrap().state;
    let exported = desired_of(&live, &options);
    let users: Vec<User> = loaded.users.into_iter().map(|u| u.value).collect();
    assert_eq!(users.len(), exported.users.len());
    // The loader keeps file order; the export's order is by name, so compare as sets.
    for u in &exported.users {
        assert!(users.contains(u), "{u:?} not read back as exported");
    }
    let groups: Vec<Group> = loaded.groups.into_iter().map(|g| g.value).collect();
    assert_eq!(groups, exported.groups);
}

// Filters leave objects out; members and managers that are then unnamed are dropped with a
// warning, group members become additive, and the plan is still empty.
#[test]
fn filters_and_dangling_references() {
    let mut live = sample();
    live.groups.push(
        serde_json::from_value(group("g3", "Ghosts", &[("nobody", "User"), ("u2", "User")]))
            .unwrap(),
    );
    let options = ExportOptions {
        filters: Filters {
            include: vec![],
            exclude: vec!["userName=amy@*".parse().unwrap()],
        },
        ..ExportOptions::default()
    };
    let e = desired_of(&live, &options);
    assert_eq!(e.users.len(), 2);
    assert!(e.users.iter().all(|u| u.manager.is_none()));
    let ghosts = e
        .groups
        .iter()
        .find(|g| *g.display_name == "Ghosts")
        .unwrap();
    assert_eq!(ghosts.members.as_ref().map(Vec::len), Some(0));
    let all = e.warnings.join("\n");
    assert!(
        all.contains("not in the tenant (a dangling reference): id nobody in Ghosts"),
        "{all}"
    );
    // A member that exists but is not exported is named, not numbered.
    assert!(
        all.contains("the member is not exported (filtered out, or skipped as above) (2 times; first: Amy@x.example in Ghosts)"),
        "{all}"
    );
    assert!(e.additive_members.is_some());
    let out = render(&e, &options);
    assert!(
        out.files["scimctl.yaml"]
            .contains("collections: {groupMembers: additive, userRoles: additive}"),
        "{}",
        out.files["scimctl.yaml"]
    );
    assert_eq!(round_trip(&out, &live, &AttributeSupport::all()), "");
    // Group filters choose groups; the users stay.
    let options = ExportOptions {
        filters: Filters {
            include: vec!["group.displayName=team a".parse().unwrap()],
            exclude: vec![],
        },
        ..ExportOptions::default()
    };
    let e = desired_of(&live, &options);
    assert_eq!((e.users.len(), e.groups.len()), (3, 1));
}

// What desired state cannot hold is left out, never written broken: invalid emails, two
// primaries, an impossible date, routing entries out of range, duplicate names and
// externalIds, nesting cycles; deep nesting raises maxGroupDepth. The rest still plans empty.
#[test]
fn unholdable_values_are_left_out() {
    let gen_ext = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
    let live = snapshot(
        &[
            user(
                "u1",
                "a@x.example",
                &json!({"emails": [{"value": "not an email"}]}),
            ),
            user(
                "u2",
                "b@x.example",
                &json!({"emails": [{"value": "b@x.example", "primary": true},
                                   {"value": "b2@x.example", "primary": true}],
                        ENT: {"dateHire": "2023-02-30"},
                        gen_ext: {"routingSkills": [{"name": "S", "proficiency": 9}]}}),
            ),
            user("u3", "dup@x.example", &json!({"externalId": "same"})),
            user("u4", "DUP@x.example", &json!({})),
            user("u5", "c@x.example", &json!({"externalId": "same"})),
            user("u6", " padded@x.example", &json!({})),
        ],
        &[
            group("g1", "One", &[("g2", "Group")]),
            group("g2", "Two", &[("g3", "Group")]),
            group("g3", "Three", &[("g1", "Group"), ("g4", "Group")]),
            group("g4", "Four", &[("g5", "Group")]),
            group("g5", "Five", &[("g6", "Group")]),
            group("g6", "Six", &[("g7", "Group")]),
            group("g7", "Seven", &[("u1", "User")]),
        ],
    );
    let options = ExportOptions::default();
    let e = desired_of(&live, &options);
    let names: Vec<&str> = e.users.iter().map(|u| u.user_name.as_str()).collect();
    assert_eq!(names, ["a@x.example", "b@x.example", "c@x.example"]);
    assert!(
        e.users
            .iter()
            .all(|u| u.emails.is_none() && u.external_id.is_none())
    );
    assert!(e.users[1].date_hire.is_none() && e.users[1].routing_skills.is_none());
    let all = e.warnings.join("\n");
    for expected in [
        "missing `@`",
        "does not exist in that month",
        "proficiency 9",
        "held by another live user too",
        "held by more than one live user",
        "leading or trailing spaces",
        "closes a nesting cycle",
    ] {
        assert!(all.contains(expected), "{expected}:\n{all}");
    }
    // One → Two → Three → Four → Five → Six → Seven once the cycle edge is cut.
    assert_eq!(e.max_group_depth, Some(7));
    assert!(
        e.additive_members.is_some(),
        "a cut cycle edge is a member left out"
    );
    let out = render(&e, &options);
    assert!(out.files["scimctl.yaml"].contains("policy: {maxGroupDepth: 7}"));
    assert_eq!(round_trip(&out, &live, &AttributeSupport::all()), "");
}

// Attributes the target's schemas lack are not written.
#[test]
fn unsupported_attributes_are_not_written() {
    let live = sample();
    let support = AttributeSupport::only([(ResourceSchema::User, "title")]);
    let options = ExportOptions {
        support: support.clone(),
        ..ExportOptions::default()
    };
    let e = desired_of(&live, &options);
    let zoe = &e.users[2];
    assert!(zoe.title.is_some());
    assert!(zoe.emails.is_none() && zoe.department.is_none() && zoe.manager.is_none());
    assert_eq!(round_trip(&render(&e, &options), &live, &support), "");
}

// Department files are slugged, users without one share a file, and large departments are
// split into numbered parts of at most 1,000 users.
#[test]
fn layout() {
    assert_eq!(slug("Sales & Billing"), "sales-billing");
    assert_eq!(slug("  Vertrieb Süd "), "vertrieb-süd");
    assert_eq!(slug("../etc"), "etc");
    assert_eq!(slug("---"), "");
    let users: Vec<Value> = (0..1_001)
        .map(|i| {
            user(
                &format!("u{i}"),
                &format!("u{i:04}@x.example"),
                &json!({ENT: {"department": "Big"}}),
            )
        })
        .chain([
            user("n1", "none@x.example", &json!({})),
            user("n2", "dash@x.example", &json!({ENT: {"department": "--"}})),
        ])
        .collect();
    let out = export(&snapshot(&users, &[]), &ExportOptions::default());
    let names: Vec<&str> = out.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "scimctl.yaml",
            "users/big-01.yaml",
            "users/big-02.yaml",
            "users/no-department.yaml"
        ]
    );
    assert_eq!((out.users, out.user_files), (1_003, 3));
    assert!(out.files["users/big-02.yaml"].starts_with(
        "# Users of department \"Big\" (1 users, part 2 of 2), exported by scimctl export.\nusers:\n  - userName: u1000@x.example\n"
    ));
    assert!(
        out.files["users/no-department.yaml"]
            .contains("# Users of department \"--\" and without one (2 users)")
    );
}

// The generated scimctl.yaml names a --target URL and the token's variable, never a token.
#[test]
fn config_names_the_target_without_secrets() {
    let options = ExportOptions {
        target: Some(Target::Scim {
            url: "https://idp.example/scim/v2".into(),
            token: Some(SecretSource::FromEnv("SCIMCTL_TOKEN".into())),
            oauth: None,
            requests_per_minute: Some(300),
        }),
        description: "https://idp.example/scim/v2".into(),
        ..ExportOptions::default()
    };
    let out = export(&Snapshot::default(), &options);
    let config = &out.files["scimctl.yaml"];
    assert!(
        config.contains(
            "target: {kind: scim, url: \"https://idp.example/scim/v2\", token: {fromEnv: SCIMCTL_TOKEN}, requestsPerMinute: 300}\n"
        ),
        "{config}"
    );
    assert!(config.contains("ownership: {users: listed, groups: listed, roles: listed}"));
    let files: Vec<(&str, &str)> = out
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The loader reads it (the token variable is not set here, so validation says so).
    let err = load_texts(&files)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.is_empty() || err.contains("1 problem"), "{err}");
}

/// What [`export_into`] hands out, gathered, with the rest of its answer; the users kept in
/// memory and in a spill file give the same.
fn streamed(live: &Snapshot, options: &ExportOptions) -> Export {
    fn run<S: ItemStore>(live: &Snapshot, options: &ExportOptions, store: S) -> Export
    where
        S::Error: std::error::Error + 'static,
    {
        let mut files = std::collections::BTreeMap::new();
        let mut put = |name: String, text: String| -> Result<(), Box<dyn std::error::Error>> {
            assert!(files.insert(name.clone(), text).is_none(), "{name} twice");
            Ok(())
        };
        let out = export_into(&mut live.clone(), options, store, &mut put).expect("nothing fails");
        assert!(out.files.is_empty(), "handed out, not kept");
        Export { files, ..out }
    }
    let in_memory = run(live, options, String::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let spill = write::Spill::new(dir.path()).expect("spill");
    assert_eq!(run(live, options, spill), in_memory);
    in_memory
}

// The streaming export `scimctl export` runs writes what `export` lays out, byte for byte:
// managers and members named across the parts the users are parsed in (later users manage
// earlier ones), users left out by a filter or a shared name, roles, departments split.
#[test]
fn streamed_export_is_the_same() {
    assert_eq!(
        streamed(&sample(), &ExportOptions::default()),
        export(&sample(), &ExportOptions::default())
    );
    let users: Vec<Value> = (0..700)
        .map(|i| {
            let mut ent = json!({"department": format!("Dept {}", i % 3), "manager": {"value": format!("u{}", (i * 7 + 300) % 700)}});
            if i % 50 == 0 {
                ent = json!({});
            }
            let mut u = user(
                &format!("u{i}"),
                &format!("p{:04}@x.example", (i * 37) % 700),
                &json!({ENT: ent, "roles": [{"value": format!("Role {}", i % 4)}]}),
            );
            if i % 97 == 5 {
                u["userName"] = json!(format!("P{:04}@x.example", (i * 37 + 37) % 700));
            }
            u
        })
        .collect();
    let groups: Vec<Value> = (0..30)
        .map(|g| {
            let members: Vec<(String, &str)> = (0..10)
                .map(|k| (format!("u{}", (g * 23 + k * 61) % 700), "User"))
                .collect();
            let members: Vec<(&str, &str)> =
                members.iter().map(|(m, t)| (m.as_str(), *t)).collect();
            group(&format!("g{g}"), &format!("Team {g}"), &members)
        })
        .collect();
    let live = snapshot(&users, &groups);
    let mut options = ExportOptions::default();
    let all = export(&live, &options);
    assert!(
        all.users > 600 && all.files.len() > 4,
        "{:?}",
        all.files.keys()
    );
    assert!(!all.warnings.is_empty(), "names held twice are left out");
    assert_eq!(streamed(&live, &options), all);
    options.filters = Filters {
        include: vec![],
        exclude: vec!["department=Dept 1".parse().expect("filter")],
    };
    assert_eq!(streamed(&live, &options), export(&live, &options));
}

// A Genesys Cloud group's settings: those that differ from what a create gives an unwritten
// setting are written (owners by userName), the rest left out, and the export plans to
// nothing on a target with group settings. An owner the export leaves out drops the whole
// owners list with a note, since a partial list would remove the others.
#[test]
fn genesys_group_settings_round_trip() {
    let settings = |owners: &[&str]| {
        json!({"type": "social", "visibility": "public", "rulesVisible": false,
            "rolesEnabled": true, "callsEnabled": false, "includeOwners": false,
            "ownerIds": owners})
    };
    let mut g = group("g1", "Leads", &[("u1", "User")]);
    if let (Some(g), Some(s)) = (g.as_object_mut(), settings(&["u1"]).as_object()) {
        g.extend(s.clone());
    }
    let live = snapshot(&[user("u1", "ana@x.example", &json!({}))], &[g.clone()]);
    let e = export(&live, &ExportOptions::default());
    let groups = &e.files["groups.yaml"];
    assert!(
        groups.contains(
            "type: social\n    rulesVisible: false\n    rolesEnabled: true\n    owners:\n      - ana@x.example\n"
        ),
        "{groups}"
    );
    assert!(
        !groups.contains("visibility") && !groups.contains("callsEnabled"),
        "{groups}"
    );
    let files: Vec<(&str, &str)> = e
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let loaded = load_texts(&files).expect("loads");
    let options = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    let plan = plan(&loaded.state, &live, &options).expect("plans");
    assert!(plan.changes.is_empty(), "{plan:#?}");

    let mut dangling = g;
    dangling["ownerIds"] = json!(["u1", "gone"]);
    let live = snapshot(&[user("u1", "ana@x.example", &json!({}))], &[dangling]);
    let e = export(&live, &ExportOptions::default());
    assert!(!e.files["groups.yaml"].contains("owners"), "{:?}", e.files);
    assert!(
        e.warnings
            .iter()
            .any(|w| w.starts_with("group owners left out")),
        "{:?}",
        e.warnings
    );
}

// Roles granted to a group (Genesys Cloud `PC_GROUP` grants) are exported on the group: a
// role held in the home division alone by name, others with their divisions (`*` as is),
// and the export plans to nothing on a Genesys target.
#[test]
fn group_role_grants_round_trip() {
    use crate::model::tenant::{Division, Grant, PlatformRole};
    let mut g = group("g1", "Leads", &[("u1", "User")]);
    g["rolesEnabled"] = json!(true);
    let mut live = snapshot(&[user("u1", "ana@x.example", &json!({}))], &[g]);
    live.roles = Some(
        serde_json::from_value::<Vec<PlatformRole>>(json!([
            {"id": "r-agent", "name": "Agent"},
            {"id": "r-wrap", "name": "Wrap Up"}
        ]))
        .expect("roles"),
    );
    let division = |id: &str, name: &str, home: bool| Division {
        id: id.into(),
        name: name.into(),
        home,
    };
    live.divisions = Some(vec![
        division("d-home", "Home", true),
        division("d-field", "Field Sales", false),
    ]);
    let grant = |role: &str, division: &str| Grant {
        role_id: role.into(),
        role_name: String::new(),
        division_id: division.into(),
        division_name: String::new(),
    };
    live.group_grants = Some(
        [(
            "g1".to_owned(),
            vec![
                grant("r-agent", "d-home"),
                grant("r-wrap", "d-field"),
                grant("r-wrap", "*"),
            ],
        )]
        .into(),
    );
    let e = export(&live, &ExportOptions::default());
    let groups = &e.files["groups.yaml"];
    assert!(groups.contains("rolesEnabled: true"), "{groups}");
    assert!(groups.contains("- Agent"), "{groups}");
    assert!(groups.contains("Wrap Up"), "{groups}");
    let files: Vec<(&str, &str)> = e
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let loaded = load_texts(&files).expect("loads");
    let leads = loaded.state.group("Leads").expect("exported");
    let roles: Vec<String> = leads
        .value
        .roles
        .iter()
        .flatten()
        .map(|r| format!("{}:{:?}", r.value.name, r.value.divisions))
        .collect();
    assert_eq!(
        roles,
        [
            "Agent:None".to_owned(),
            "Wrap Up:Some([\"*\", \"Field Sales\"])".to_owned()
        ]
    );
    let options = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    let plan = plan(&loaded.state, &live, &options).expect("plans");
    assert!(plan.changes.is_empty(), "{plan:#?}");
}

// Genesys Cloud licenses: one YAML license per definition an exported user holds (named by
// id, with the definition's description), allowedRoles covering the roles its holders hold
// directly and through groups; a user holding one definition has it as `license`, a user
// holding several has none (and a warning says so), a definition the org does not list is
// left out. The export loads and plans empty under `listed` and under `all`.
#[test]
#[allow(clippy::too_many_lines)] // one tenant, its export, and both ownership modes
fn licenses_round_trip() {
    use crate::model::tenant::{Grant, LicenseDefinition, LiveLicenses, PlatformRole};
    let roles = |names: &[&str]| json!({"roles": names.iter().map(|n| json!({"value": n})).collect::<Vec<_>>()});
    let mut g = group("g1", "Leads", &[("u2", "User")]);
    g["rolesEnabled"] = json!(true);
    let mut live = snapshot(
        &[
            user("u1", "ana@x.example", &roles(&["Agent"])),
            user("u2", "bo@x.example", &roles(&["Agent"])),
            user("u3", "cy@x.example", &roles(&["Supervisor"])),
            user("u4", "di@x.example", &json!({})),
            user("u5", "ed@x.example", &json!({})),
        ],
        &[g],
    );
    live.roles = Some(
        serde_json::from_value::<Vec<PlatformRole>>(json!([
            {"id": "r-agent", "name": "Agent"},
            {"id": "r-sup", "name": "Supervisor"},
            {"id": "r-lead", "name": "Lead"}
        ]))
        .expect("roles"),
    );
    live.group_grants = Some(
        [(
            "g1".to_owned(),
            vec![Grant {
                role_id: "r-lead".into(),
                role_name: String::new(),
                division_id: "d-home".into(),
                division_name: String::new(),
            }],
        )]
        .into(),
    );
    live.divisions = Some(vec![crate::model::tenant::Division {
        id: "d-home".into(),
        name: "Home".into(),
        home: true,
    }]);
    let definition = |id: &str, description: Option<&str>| LicenseDefinition {
        id: id.into(),
        description: description.map(str::to_owned),
    };
    let held = |list: &[(&str, &[&str])]| {
        list.iter()
            .map(|(u, l)| ((*u).to_owned(), l.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    };
    live.licenses = Some(LiveLicenses {
        definitions: vec![
            definition("cloudCX1", Some("Genesys Cloud CX 1")),
            definition("cloudCX2", None),
            definition("unused", None),
        ],
        held: held(&[
            ("u1", &["cloudCX1"]),
            ("u2", &["cloudCX1"]),
            ("u3", &["cloudCX1", "cloudCX2"]),
            ("u4", &["retired"]),
        ]),
    });
    let e = export(&live, &ExportOptions::default());
    assert_eq!(e.licenses, 2, "{:#?}", e.files);
    let licenses = &e.files["licenses.yaml"];
    assert!(
        licenses.contains(
            "  - name: cloudCX1\n    description: Genesys Cloud CX 1\n    genesysLicense: cloudCX1\n    allowedRoles: [Agent, Lead, Supervisor]\n"
        ),
        "{licenses}"
    );
    assert!(
        licenses.contains(
            "  - name: cloudCX2\n    genesysLicense: cloudCX2\n    allowedRoles: [Supervisor]\n"
        ),
        "{licenses}"
    );
    assert!(
        !licenses.contains("unused") && !licenses.contains("retired"),
        "{licenses}"
    );
    let users: String = e
        .files
        .iter()
        .filter(|(k, _)| k.starts_with("users/"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(users.matches("license: cloudCX1").count(), 2, "{users}");
    assert!(
        !users.contains("license: cloudCX2") && !users.contains("retired"),
        "{users}"
    );
    assert!(
        e.warnings
            .iter()
            .any(|w| w.contains("several license definitions") && w.contains("cy@x.example")),
        "{:?}",
        e.warnings
    );
    assert!(
        e.warnings
            .iter()
            .any(|w| w.contains("retired of di@x.example")),
        "{:?}",
        e.warnings
    );
    assert!(
        e.files["scimctl.yaml"].contains("licenses.yaml maps"),
        "{}",
        e.files["scimctl.yaml"]
    );

    let options = PlanOptions {
        target: crate::plan::tests::genesys_target(),
        ..PlanOptions::default()
    };
    for ownership in ["", "ownership: {licenses: all}\n"] {
        let mut files: Vec<(&str, String)> = e
            .files
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        if !ownership.is_empty() {
            for (name, text) in &mut files {
                if *name == "scimctl.yaml" {
                    *text = text.replace(
                        "ownership: {users: listed, groups: listed, roles: listed}\n",
                        ownership,
                    );
                    assert!(text.contains("licenses: all"), "{text}");
                }
            }
        }
        let files: Vec<(&str, &str)> = files.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let loaded = match load_texts(&files) {
            Ok(l) => l,
            Err(crate::desired::LoadError::Invalid(report)) => {
                let mut text = Vec::new();
                report.write_text(&mut text).unwrap();
                panic!("does not load:\n{}", String::from_utf8_lossy(&text));
            }
            Err(err) => panic!("{err}"),
        };
        let plan = plan(&loaded.state, &live, &options).expect("plans");
        assert!(plan.changes.is_empty(), "{ownership}: {plan:#?}");
    }
}

// Genesys Cloud lists every user's userName as a read-only `other` email, primary beside a
// primary work email: on such a target the export leaves it out (desired state may not write
// it, plans never compare it), so the work email is kept and a user with no other address
// has none. Elsewhere an `other` email is an email like any.
#[test]
fn the_username_email_of_genesys_is_not_exported() {
    let live = snapshot(
        &[
            user(
                "u1",
                "a@x.example",
                &json!({"emails": [{"value": "a@x.example", "type": "other", "primary": true},
                                   {"value": "a.work@x.example", "type": "work", "primary": true}]}),
            ),
            user(
                "u2",
                "b@x.example",
                &json!({"emails": [{"value": "b@x.example", "type": "other", "primary": true}]}),
            ),
        ],
        &[],
    );
    let genesys = ExportOptions {
        username_email: true,
        ..ExportOptions::default()
    };
    let e = desired_of(&live, &genesys);
    let emails: Vec<Vec<(String, Option<&str>)>> = e
        .users
        .iter()
        .map(|u| {
            u.emails
                .iter()
                .flatten()
                .map(|m| {
                    (
                        m.value.value.to_string(),
                        m.value.kind.map(crate::model::EmailType::name),
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        emails,
        [vec![("a.work@x.example".to_owned(), Some("work"))], vec![]],
        "{e:#?}"
    );
    assert!(e.users[1].emails.is_none());
    let plain = desired_of(&live, &ExportOptions::default());
    let kinds: Vec<Option<&str>> = plain.users[1]
        .emails
        .iter()
        .flatten()
        .map(|m| m.value.kind.map(crate::model::EmailType::name))
        .collect();
    assert_eq!(kinds, [Some("other")], "{plain:#?}");
}
