//! Unit tests of `explain` on a small desired state: chains and their sources, deduplication,
//! nesting, inheritance both ways, license fit, unknown names, the JSON shape, the live
//! comparison and the text form.

use serde_json::{Value, json};

use super::*;
use crate::scim::{Live, Snapshot};

/// Line numbers below refer to this file.
const ORG: &str = "\
roles:
  - name: Agent
    permissions: [\"routing:queue:view\", \"conversation:call:accept\"]
  - name: Queue Member
    permissions: [\"routing:queue:view\", \"routing:queue:join\"]
    inherits: [Agent]
  - name: Supervisor
    permissions: [\"quality:evaluation:view\"]
    inherits: [queue member]
licenses:
  - name: Standard
    allowedRoles: [Agent, Queue Member]
groups:
  - displayName: All Agents
    members: [Support Team]
  - displayName: Support Team
    members: [ana@x.example]
  - displayName: Lonely
users:
  - userName: ana@x.example
    active: true
    roles: [Queue Member, agent]
    license: Standard
    previously: [ana.old@x.example]
  - userName: bo@x.example
    roles: [Supervisor]
    groups: [support team]
  - userName: cy@x.example
";

fn state() -> DesiredState {
    match crate::desired::load_texts(&[("org.yaml", ORG)]) {
        Ok(loaded) => loaded.state,
        Err(crate::desired::LoadError::Invalid(report)) => {
            let mut text = Vec::new();
            report.write_text(&mut text).expect("report renders");
            panic!("fixture is invalid:\n{}", String::from_utf8_lossy(&text));
        }
        Err(e) => panic!("fixture is invalid: {e}"),
    }
}

fn ask(state: &DesiredState, kind: Kind, name: &str, live: Option<LiveInput<'_>>) -> Explanation {
    let subject = find(state, kind, name).expect("found");
    explain(state, subject, live).expect("explained")
}

fn user(state: &DesiredState, name: &str) -> UserExplanation {
    match ask(state, Kind::User, name, None) {
        Explanation::User(u) => u,
        other => panic!("{other:?}"),
    }
}

/// A chain as `kind name @line` strings, for compact assertions.
fn links(chain: &[Link]) -> Vec<String> {
    chain
        .iter()
        .map(|l| {
            let kind = serde_json::to_value(l.kind).unwrap();
            let line = l.source.as_ref().map_or(0, |s| s.line);
            format!("{} {} @{line}", kind.as_str().unwrap(), l.name)
        })
        .collect()
}

// A user's permissions are deduplicated; each keeps the shortest chain (a tie goes to the
// role written first) and names the user's other roles granting it; every link says where
// it is written.
#[test]
fn user_permissions_shortest_chain_and_also_via() {
    let ana = user(&state(), "ANA@x.example");
    assert_eq!(ana.name, "ana@x.example");
    let names: Vec<&str> = ana
        .permissions
        .iter()
        .map(|p| p.permission.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "conversation:call:accept",
            "routing:queue:join",
            "routing:queue:view"
        ]
    );
    let view = &ana.permissions[2];
    assert_eq!(
        links(&view.chain),
        [
            "user ana@x.example @20",
            "role Queue Member @22",
            "permission routing:queue:view @5"
        ]
    );
    assert_eq!(view.also_via, ["Agent"]);
    // Through Queue Member it takes an inherits hop; the direct Agent grant is shorter.
    let accept = &ana.permissions[0];
    assert_eq!(
        links(&accept.chain),
        [
            "user ana@x.example @20",
            "role Agent @22",
            "permission conversation:call:accept @3"
        ]
    );
    assert_eq!(accept.also_via, ["Queue Member"]);
    assert_eq!(
        accept.chain[0].source.as_ref().unwrap().to_string(),
        "org.yaml:20"
    );
    // Roles are named as defined, whatever case the user writes.
    let roles: Vec<&str> = ana.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, ["Queue Member", "Agent"]);
}

// Inherited permissions carry the inherits hops, each at its `inherits` entry.
#[test]
fn inherited_permission_chain() {
    let bo = user(&state(), "bo@x.example");
    let accept = bo
        .permissions
        .iter()
        .find(|p| p.permission == "conversation:call:accept")
        .unwrap();
    assert_eq!(
        links(&accept.chain),
        [
            "user bo@x.example @25",
            "role Supervisor @26",
            "role Queue Member @9",
            "role Agent @6",
            "permission conversation:call:accept @3"
        ]
    );
    assert!(accept.also_via.is_empty());
    assert_eq!(bo.permissions.len(), 4);
}

// Membership through nested groups: a user in Support Team is in All Agents, with the chain
// of `members`/`groups` entries; direct memberships come first.
#[test]
fn nested_group_membership() {
    let state = state();
    let ana = user(&state, "ana@x.example");
    let groups: Vec<(&str, bool)> = ana
        .groups
        .iter()
        .map(|m| (m.group.as_str(), m.direct))
        .collect();
    assert_eq!(groups, [("Support Team", true), ("All Agents", false)]);
    assert_eq!(
        links(&ana.groups[1].chain),
        [
            "user ana@x.example @20",
            "group Support Team @17",
            "group All Agents @15"
        ]
    );
    // A user's own `groups` entry is an edge too.
    let bo = user(&state, "bo@x.example");
    assert_eq!(
        links(&bo.groups[0].chain),
        ["user bo@x.example @25", "group Support Team @27"]
    );
    assert_eq!(bo.groups.len(), 2);
}

// The license lists what it allows and whether the user's roles fit; no license, no section.
#[test]
fn license_fit() {
    let state = state();
    let ana = user(&state, "ana@x.example");
    let license = ana.license.unwrap();
    assert_eq!(license.name, "Standard");
    assert_eq!(license.allowed_roles, ["Agent", "Queue Member"]);
    assert!(license.fits);
    assert!(license.not_allowed.is_empty());
    assert_eq!(license.assigned.unwrap().line, 23);
    assert_eq!(license.source.unwrap().line, 11);
    assert!(ana.roles.iter().all(|r| r.allowed_by_license == Some(true)));
    let bo = user(&state, "bo@x.example");
    assert!(bo.license.is_none());
    assert!(bo.roles[0].allowed_by_license.is_none());
    let cy = user(&state, "cy@x.example");
    assert!(!cy.roles_managed && cy.roles.is_empty() && cy.permissions.is_empty());
}

// A role: what it inherits and who inherits it (transitively), its permissions, who holds
// it directly or through an heir (shortest chain per user), and the licenses allowing it.
#[test]
fn role_inheritance_holders_and_licenses() {
    let state = state();
    let Explanation::Role(agent) = ask(&state, Kind::Role, "agent", None) else {
        panic!()
    };
    assert!(agent.inherits.is_empty());
    let heirs: Vec<(&str, bool)> = agent
        .inherited_by
        .iter()
        .map(|r| (r.role.as_str(), r.direct))
        .collect();
    assert_eq!(heirs, [("Queue Member", true), ("Supervisor", false)]);
    assert_eq!(
        links(&agent.inherited_by[1].chain),
        [
            "role Supervisor @7",
            "role Queue Member @9",
            "role Agent @6"
        ]
    );
    let holders: Vec<(&str, bool)> = agent
        .holders
        .iter()
        .map(|h| (h.user.as_str(), h.direct))
        .collect();
    assert_eq!(holders, [("ana@x.example", true), ("bo@x.example", false)]);
    assert_eq!(
        links(&agent.holders[0].chain),
        ["user ana@x.example @20", "role Agent @22"]
    );
    assert_eq!(
        links(&agent.holders[1].chain),
        [
            "user bo@x.example @25",
            "role Supervisor @26",
            "role Queue Member @9",
            "role Agent @6"
        ]
    );
    let licenses: Vec<&str> = agent.licenses.iter().map(|l| l.license.as_str()).collect();
    assert_eq!(licenses, ["Standard"]);

    let Explanation::Role(supervisor) = ask(&state, Kind::Role, "Supervisor", None) else {
        panic!()
    };
    let up: Vec<(&str, bool)> = supervisor
        .inherits
        .iter()
        .map(|r| (r.role.as_str(), r.direct))
        .collect();
    assert_eq!(up, [("Queue Member", true), ("Agent", false)]);
    assert_eq!(supervisor.permissions.len(), 4);
    assert!(supervisor.licenses.is_empty());
}

// A group: members direct and nested (users and groups), the groups holding it, and whether
// its membership is managed at all.
#[test]
fn group_members_and_parents() {
    let state = state();
    let Explanation::Group(all) = ask(&state, Kind::Group, "all agents", None) else {
        panic!()
    };
    let members: Vec<(&str, bool)> = all
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.direct))
        .collect();
    assert_eq!(
        members,
        [
            ("Support Team", true),
            ("ana@x.example", false),
            ("bo@x.example", false)
        ]
    );
    assert_eq!(
        links(&all.members[2].chain),
        [
            "group All Agents @14",
            "group Support Team @15",
            "user bo@x.example @27"
        ]
    );
    assert!(all.membership_managed && all.parents.is_empty());
    let Explanation::Group(team) = ask(&state, Kind::Group, "Support Team", None) else {
        panic!()
    };
    assert_eq!(team.parents.len(), 1);
    assert_eq!(team.parents[0].group, "All Agents");
    let Explanation::Group(lonely) = ask(&state, Kind::Group, "Lonely", None) else {
        panic!()
    };
    assert!(!lonely.membership_managed && lonely.members.is_empty());
}

// Unknown names: a former name points at the current one, a typo gets "did you mean", and
// anything else gets no hint.
#[test]
fn unknown_names() {
    let state = state();
    let message = |kind, name| find(&state, kind, name).unwrap_err().to_string();
    assert_eq!(
        message(Kind::User, "ana.old@x.example"),
        "no user named `ana.old@x.example` in the desired state (it was renamed to `ana@x.example`)"
    );
    assert_eq!(
        message(Kind::Role, "Supervisr"),
        "no role named `Supervisr` in the desired state (did you mean `Supervisor`?)"
    );
    assert_eq!(
        message(Kind::Group, "Marketing"),
        "no group named `Marketing` in the desired state"
    );
}

// The JSON document: version, kind tag and camelCase field names that tools can rely on.
#[test]
fn json_shape() {
    let state = state();
    let doc =
        serde_json::to_value(ask(&state, Kind::User, "ana@x.example", None).document()).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["kind"], "user");
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "name",
        "source",
        "rolesManaged",
        "roles",
        "license",
        "permissions",
        "groups",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(doc.get("live").is_none());
    assert_eq!(
        doc["permissions"][2]["chain"][1],
        json!({"kind": "role", "name": "Queue Member", "source": {"file": "org.yaml", "line": 22}})
    );
    assert_eq!(doc["permissions"][2]["alsoVia"], json!(["Agent"]));
    assert_eq!(
        doc["license"]["allowedRoles"],
        json!(["Agent", "Queue Member"])
    );
    let role = serde_json::to_value(ask(&state, Kind::Role, "Agent", None).document()).unwrap();
    assert_eq!(role["kind"], "role");
    assert_eq!(role["holders"][1]["direct"], false);
    assert!(role["inheritedBy"].is_array() && role["licenses"].is_array());
}

fn live_of<R: crate::scim::Resource>(json: &Value) -> Live<R> {
    Live::from_raw(serde_json::value::to_raw_value(json).unwrap()).unwrap()
}

/// The tenant: ana renamed-back case aside, deactivated, with an extra role, in All Agents
/// instead of Support Team, and in a group desired state does not know; bo missing.
fn snapshot() -> Snapshot {
    Snapshot {
        roles: None,
        users: vec![
            live_of(
                &json!({"id": "u-ana", "userName": "Ana@X.example", "active": false,
                "roles": [{"value": "queue member"}, {"value": "Admin"}]}),
            ),
            live_of(&json!({"id": "u-zed", "userName": "zed@x.example",
                "roles": [{"value": "Agent"}]})),
        ],
        groups: vec![
            live_of(&json!({"id": "g-all", "displayName": "All Agents",
                "members": [{"value": "u-ana"}]})),
            live_of(&json!({"id": "g-team", "displayName": "support team", "members": []})),
            live_of(&json!({"id": "g-x", "displayName": "Book Club",
                "members": [{"value": "u-ana"}]})),
        ],
        ..Snapshot::default()
    }
}

// With the tenant read, the user's differences are reported for attributes both sides have
// (active, roles, direct groups); a live group desired state does not manage is a note.
#[test]
fn live_user_differences() {
    let state = state();
    let snapshot = snapshot();
    let input = LiveInput {
        snapshot: &snapshot,
        target: "sandbox",
    };
    let Explanation::User(ana) = ask(&state, Kind::User, "ana@x.example", Some(input)) else {
        panic!()
    };
    let live = ana.live.unwrap();
    assert!(live.found);
    assert_eq!(live.id.as_deref(), Some("u-ana"));
    assert_eq!(live.compared, ["userName", "active", "roles", "groups"]);
    let diff = |attr: &str| {
        live.differences
            .iter()
            .find(|d| d.attribute == attr)
            .unwrap_or_else(|| panic!("{attr}: {:?}", live.differences))
    };
    assert!(live.differences.iter().all(|d| d.attribute != "userName"));
    assert_eq!(
        (diff("active").desired.clone(), diff("active").live.clone()),
        (Some(json!(true)), Some(json!(false)))
    );
    assert_eq!(diff("roles").only_desired, ["Agent"]);
    assert_eq!(diff("roles").only_live, ["Admin"]);
    assert_eq!(diff("groups").only_desired, ["Support Team"]);
    assert_eq!(diff("groups").only_live, ["All Agents"]);
    assert_eq!(
        live.notes,
        [
            "also a member, live, of groups whose membership desired state does not manage: Book Club"
        ]
    );

    let Explanation::User(bo) = ask(&state, Kind::User, "bo@x.example", Some(input)) else {
        panic!()
    };
    let live = bo.live.unwrap();
    assert!(!live.found && live.differences.is_empty());
    assert_eq!(
        live.notes,
        ["not on the target: `scimctl apply` would create it"]
    );
}

// Groups compare direct members by name; a group whose membership is unmanaged is not
// compared. Roles compare holders among users whose roles both sides have.
#[test]
fn live_group_and_role_differences() {
    let state = state();
    let snapshot = snapshot();
    let input = LiveInput {
        snapshot: &snapshot,
        target: "sandbox",
    };
    let Explanation::Group(team) = ask(&state, Kind::Group, "Support Team", Some(input)) else {
        panic!()
    };
    let live = team.live.unwrap();
    assert_eq!(live.compared, ["displayName", "members"]);
    assert_eq!(live.differences.len(), 1, "{:?}", live.differences);
    assert_eq!(
        live.differences[0].only_desired,
        ["ana@x.example", "bo@x.example"]
    );
    let Explanation::Group(all) = ask(&state, Kind::Group, "All Agents", Some(input)) else {
        panic!()
    };
    let members = &all.live.unwrap().differences[0];
    assert_eq!(members.only_desired, ["Support Team"]);
    assert_eq!(members.only_live, ["ana@x.example"]);
    let Explanation::Group(lonely) = ask(&state, Kind::Group, "Lonely", Some(input)) else {
        panic!()
    };
    let live = lonely.live.unwrap();
    assert!(!live.found);

    let Explanation::Role(agent) = ask(&state, Kind::Role, "Agent", Some(input)) else {
        panic!()
    };
    let live = agent.live.unwrap();
    assert_eq!(live.compared, ["holders"]);
    assert_eq!(live.differences[0].only_desired, ["ana@x.example"]);
    assert!(live.differences[0].only_live.is_empty());
    assert_eq!(
        live.notes,
        ["also held live by users whose roles desired state does not manage: zed@x.example"]
    );
}

// The text form: sections, one link per line with its `path:line`, and the live block.
#[test]
fn text_rendering() {
    let state = state();
    let snapshot = snapshot();
    let input = LiveInput {
        snapshot: &snapshot,
        target: "sandbox",
    };
    let mut out = Vec::new();
    render::text(&ask(&state, Kind::User, "bo@x.example", None), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for expected in [
        "user bo@x.example\n  defined at org.yaml:25\n",
        "\nRoles (1)\n  Supervisor  org.yaml:26\n",
        "\nLicense: none\n",
        "\nGroups (2)\n  Support Team (direct)\n      user bo@x.example\n    → member of group Support Team  org.yaml:27\n",
        "  conversation:call:accept\n      user bo@x.example\n    → holds role Supervisor            org.yaml:26\n    → inherits role Queue Member       org.yaml:9\n    → inherits role Agent              org.yaml:6\n    → grants conversation:call:accept  org.yaml:3\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let mut out = Vec::new();
    render::text(
        &ask(&state, Kind::User, "ana@x.example", Some(input)),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    for expected in [
        "    also via: Agent\n",
        "\nLive on sandbox (id u-ana)\n  compared: userName, active, roles, groups\n",
        "  ~ active: desired true, live false\n",
        "  ~ roles: desired only: Agent; live only: Admin\n",
        "  note: also a member, live, of groups",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
}

// A group's Genesys Cloud settings: those written, each with its line, in a fixed order; none
// written is no section and no JSON key.
#[test]
fn group_settings_with_their_lines() {
    let yaml = "users:\n  - userName: ana@x.example\ngroups:\n  - displayName: Leads\n    owners: [ana@x.example]\n    visibility: members\n    rolesEnabled: true\n  - displayName: Plain\n";
    let state = match crate::desired::load_texts(&[("org.yaml", yaml)]) {
        Ok(loaded) => loaded.state,
        Err(e) => panic!("fixture is invalid: {e}"),
    };
    let Explanation::Group(leads) = ask(&state, Kind::Group, "Leads", None) else {
        panic!()
    };
    let settings: Vec<(&str, &str, u32)> = leads
        .settings
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.value.as_str(),
                s.source.as_ref().map_or(0, |o| o.line),
            )
        })
        .collect();
    assert_eq!(
        settings,
        [
            ("visibility", "members", 6),
            ("rolesEnabled", "true", 7),
            ("owners", "ana@x.example", 5)
        ]
    );
    let mut out = Vec::new();
    render::text(&Explanation::Group(leads), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("Settings (3)\n  visibility: members (org.yaml:6)\n"),
        "{out}"
    );
    let Explanation::Group(plain) = ask(&state, Kind::Group, "Plain", None) else {
        panic!()
    };
    assert!(plain.settings.is_empty());
    let json = serde_json::to_value(&plain).unwrap();
    assert!(json.get("settings").is_none(), "{json}");
}

// A role granted to a group (Genesys Cloud) is held by its members: explain of the member
// shows it "via group" with the group's `roles` entry as the source, its permissions count,
// and the license check counts it; explain of the group lists its roles.
#[test]
fn roles_through_groups() {
    let org = "\
roles:
  - name: Agent
    permissions: [\"routing:queue:view\"]
  - name: Coach
    permissions: [\"quality:evaluation:view\"]
groups:
  - displayName: Coaches
    members: [ana@x.example]
    roles: [Coach]
users:
  - userName: ana@x.example
    roles: [Agent]
";
    let state = crate::desired::load_texts(&[("org.yaml", org)])
        .map_or_else(|_| panic!("fixture loads"), |l| l.state);
    let ana = user(&state, "ana@x.example");
    let via: Vec<(&str, Option<&str>)> = ana
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.via_group.as_deref()))
        .collect();
    assert_eq!(via, [("Agent", None), ("Coach", Some("Coaches"))]);
    let coach = &ana.roles[1];
    assert_eq!(
        coach.chain.len(),
        3,
        "user → group → role: {:#?}",
        coach.chain
    );
    assert_eq!(coach.chain[2].source.as_ref().map(|o| o.line), Some(9));
    assert!(
        ana.permissions
            .iter()
            .any(|p| p.permission == "quality:evaluation:view"),
        "{:#?}",
        ana.permissions
    );
    let mut text = Vec::new();
    render::text(&ask(&state, Kind::User, "ana@x.example", None), &mut text).expect("renders");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(text.contains("Coach via group Coaches"), "{text}");
    assert!(text.contains("org.yaml:9"), "{text}");
    let Explanation::Group(group) = ask(&state, Kind::Group, "Coaches", None) else {
        panic!("a group");
    };
    assert_eq!(group.roles.len(), 1);
    assert_eq!(group.roles[0].role, "Coach");
}

/// Licenses mapped to Genesys Cloud definitions (issue 18, item 1), with the default
/// `ownership.licenses: listed`.
const LICENSED: &str = "\
roles:
  - name: Agent
licenses:
  - name: Standard
    genesysLicense: cloudCX1
    allowedRoles: [Agent]
  - name: Pro
    genesysLicense: cloudCX2
    allowedRoles: [Agent]
users:
  - userName: ana@x.example
    license: Standard
  - userName: bo@x.example
    license: Pro
  - userName: cy@x.example
  - userName: di@x.example
    license: Standard
";

fn licensed_state(yaml: &str) -> DesiredState {
    licensed_state_with(yaml, "")
}

fn licensed_state_with(yaml: &str, config: &str) -> DesiredState {
    let mut files = vec![("org.yaml", yaml)];
    if !config.is_empty() {
        files.push(("scimctl.yaml", config));
    }
    match crate::desired::load_texts(&files) {
        Ok(loaded) => loaded.state,
        Err(crate::desired::LoadError::Invalid(report)) => {
            let mut text = Vec::new();
            report.write_text(&mut text).expect("report renders");
            panic!("fixture is invalid:\n{}", String::from_utf8_lossy(&text));
        }
        Err(e) => panic!("fixture is invalid: {e}"),
    }
}

/// ana holds Pro's definition and one no YAML license maps, bo holds Pro's, cy (no
/// `license`) Standard's; di is not on the target.
fn licensed_snapshot() -> Snapshot {
    let users = ["ana", "bo", "cy"]
        .iter()
        .map(|n| live_of(&json!({"id": format!("u-{n}"), "userName": format!("{n}@x.example")})))
        .collect();
    let held = [
        ("u-ana", vec!["cloudCX2", "cloudCX3"]),
        ("u-bo", vec!["cloudCX2"]),
        ("u-cy", vec!["cloudCX1"]),
    ]
    .into_iter()
    .map(|(id, l)| (id.to_owned(), l.into_iter().map(str::to_owned).collect()))
    .collect();
    Snapshot {
        users,
        licenses: Some(crate::model::tenant::LiveLicenses {
            definitions: ["cloudCX1", "cloudCX2", "cloudCX3"]
                .iter()
                .map(|id| crate::model::tenant::LicenseDefinition {
                    id: (*id).to_owned(),
                    description: None,
                })
                .collect(),
            held,
        }),
        ..Snapshot::default()
    }
}

fn live_licenses(state: &DesiredState, snapshot: &Snapshot, name: &str) -> LiveDiff {
    let input = LiveInput {
        snapshot,
        target: "genesys",
    };
    let Explanation::User(user) = ask(state, Kind::User, name, Some(input)) else {
        panic!()
    };
    user.live.expect("live")
}

// What the tenant holds, whether the mapped definition is held, and what a plan would do:
// the same additions and removals as the planner's own rows, for every user.
#[test]
fn live_licenses_agree_with_the_plan() {
    let state = licensed_state(LICENSED);
    let snapshot = licensed_snapshot();
    let ana = live_licenses(&state, &snapshot, "ana@x.example");
    let l = ana.licenses.clone().expect("licenses read");
    let labels = |list: &[crate::plan::licenses::LicenseRef]| {
        list.iter()
            .map(crate::plan::licenses::LicenseRef::label)
            .collect::<Vec<_>>()
    };
    assert_eq!(labels(&l.held), ["Pro (cloudCX2)", "cloudCX3"]);
    assert_eq!(
        l.mapped
            .as_ref()
            .map(crate::plan::licenses::LicenseRef::label)
            .as_deref(),
        Some("Standard (cloudCX1)")
    );
    assert_eq!(l.mapped_held, Some(false));
    assert!(l.managed);
    // listed: cloudCX3 is no YAML license's, so it stays.
    assert_eq!(labels(&l.add), ["Standard (cloudCX1)"]);
    assert_eq!(labels(&l.remove), ["Pro (cloudCX2)"]);
    assert!(ana.compared.contains(&"license".to_owned()));
    let diff = ana
        .differences
        .iter()
        .find(|d| d.attribute == "license")
        .unwrap();
    assert_eq!(
        (diff.only_desired.clone(), diff.only_live.clone()),
        (
            vec!["Standard (cloudCX1)".to_owned()],
            vec!["Pro (cloudCX2)".to_owned()]
        )
    );

    let bo = live_licenses(&state, &snapshot, "bo@x.example");
    let l = bo.licenses.expect("licenses read");
    assert_eq!(
        (l.mapped_held, l.add.len(), l.remove.len()),
        (Some(true), 0, 0)
    );
    assert!(bo.differences.iter().all(|d| d.attribute != "license"));

    let cy = live_licenses(&state, &snapshot, "cy@x.example");
    let l = cy.licenses.expect("licenses read");
    assert!(!l.managed && l.mapped.is_none() && l.add.is_empty() && l.remove.is_empty());
    assert_eq!(labels(&l.held), ["Standard (cloudCX1)"]);
    assert!(!cy.compared.contains(&"license".to_owned()));
    assert!(
        cy.notes.iter().any(|n| n.contains("no `license`")),
        "{:?}",
        cy.notes
    );

    let di = live_licenses(&state, &snapshot, "di@x.example");
    let l = di.licenses.expect("licenses read");
    assert!(l.held.is_empty());
    assert_eq!(labels(&l.add), ["Standard (cloudCX1)"]);

    // The planner's rows say the same, user by user.
    let plan =
        crate::plan::plan(&state, &snapshot, &crate::plan::PlanOptions::default()).expect("plans");
    for name in [
        "ana@x.example",
        "bo@x.example",
        "cy@x.example",
        "di@x.example",
    ] {
        let explained = live_licenses(&state, &snapshot, name).licenses.unwrap();
        let planned = plan
            .changes
            .iter()
            .filter(|c| c.key.eq_ignore_ascii_case(name))
            .flat_map(|c| &c.edits)
            .find_map(|e| match e {
                crate::plan::Edit::Licenses { add, remove } => {
                    Some((add.to_vec(), remove.to_vec()))
                }
                _ => None,
            })
            .unwrap_or_default();
        assert_eq!((explained.add, explained.remove), planned, "{name}");
    }

    // Under `ownership.licenses: all` the unmapped definition goes too, as the plan says.
    let all = licensed_state_with(LICENSED, "ownership: {licenses: all}\n");
    let l = live_licenses(&all, &snapshot, "ana@x.example")
        .licenses
        .unwrap();
    assert_eq!(labels(&l.remove), ["Pro (cloudCX2)", "cloudCX3"]);
}

// The text form of the licenses, and the JSON keys.
#[test]
fn live_licenses_text_and_json() {
    let state = licensed_state(LICENSED);
    let snapshot = licensed_snapshot();
    let input = LiveInput {
        snapshot: &snapshot,
        target: "genesys",
    };
    let explanation = ask(&state, Kind::User, "ana@x.example", Some(input));
    let mut out = Vec::new();
    render::text(&explanation, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for expected in [
        "  compared: userName, groups, license\n",
        "  ~ license: desired only: Standard (cloudCX1); live only: Pro (cloudCX2)\n",
        "  licenses held: Pro (cloudCX2), cloudCX3\n",
        "  its license maps Standard (cloudCX1): not held\n",
        "  a plan would assign Standard (cloudCX1) and remove Pro (cloudCX2)\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let doc = serde_json::to_value(explanation.document()).unwrap();
    let l = &doc["live"]["licenses"];
    assert_eq!(l["held"][0], json!({"name": "Pro", "id": "cloudCX2"}));
    assert_eq!(l["mapped"]["id"], "cloudCX1");
    assert_eq!(l["mappedHeld"], false);
    assert_eq!(l["managed"], true);
    assert_eq!(l["add"][0]["id"], "cloudCX1");
    assert_eq!(l["remove"][0]["id"], "cloudCX2");

    let bo = ask(&state, Kind::User, "bo@x.example", Some(input));
    let mut out = Vec::new();
    render::text(&bo, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("  its license maps Pro (cloudCX2): held\n  a plan changes no license\n"),
        "{text}"
    );
}

// A target whose licenses were not read (plain SCIM): no licenses, and a note for a user
// whose license maps a definition; none for a user without one.
#[test]
fn live_licenses_on_a_target_without_them() {
    let state = licensed_state(LICENSED);
    let mut snapshot = licensed_snapshot();
    snapshot.licenses = None;
    let ana = live_licenses(&state, &snapshot, "ana@x.example");
    assert!(ana.licenses.is_none());
    assert!(!ana.compared.contains(&"license".to_owned()));
    assert!(
        ana.notes
            .iter()
            .any(|n| n.contains("Standard (cloudCX1)") && n.contains("cannot assign licenses")),
        "{:?}",
        ana.notes
    );
    let cy = live_licenses(&state, &snapshot, "cy@x.example");
    assert!(
        cy.licenses.is_none() && cy.notes.is_empty(),
        "{:?}",
        cy.notes
    );
}
