//! Layout: which file holds what and how it is named (users by department, split at
//! [`MAX_ENTRIES_PER_FILE`] entries or [`MAX_BYTES_PER_FILE`] bytes, then groups, roles and a
//! `scimctl.yaml`), written through the one YAML writer. Takes [`Exported`] values; knows
//! nothing of SCIM.

use std::collections::{BTreeMap, BTreeSet};

use super::{Export, ExportOptions, Exported, MAX_BYTES_PER_FILE, MAX_ENTRIES_PER_FILE};
use crate::desired::yaml::{self, Emit, Writer};
use crate::model::{
    EmailType, Group, License, OAuthClient, PhoneType, SecretSource, Spanned, Target, Text, User,
    ValueSource,
};

/// The file name part for a department: lower case, letters and digits kept, runs of
/// anything else as one `-`, at most 60 characters.
#[must_use]
pub fn slug(department: &str) -> String {
    let mut out = String::new();
    for c in department.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.chars().count() >= 60 {
            break;
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// The file of users without a department (or whose department has no letter or digit).
pub const NO_DEPARTMENT: &str = "no-department";

fn text_emit(t: &Spanned<Text>) -> Emit<'_> {
    Emit::str(t.value.as_str())
}

fn push_opt<'a>(m: &mut Vec<(&'a str, Emit<'a>)>, key: &'a str, v: Option<&'a Spanned<Text>>) {
    if let Some(v) = v {
        m.push((key, text_emit(v)));
    }
}

fn user_emit(u: &User) -> Emit<'_> {
    let mut m: Vec<(&str, Emit<'_>)> = vec![("userName", text_emit(&u.user_name))];
    push_opt(&mut m, "displayName", u.display_name.as_ref());
    push_opt(&mut m, "externalId", u.external_id.as_ref());
    if let Some(a) = &u.active {
        m.push(("active", Emit::Bool(a.value)));
    }
    push_opt(&mut m, "title", u.title.as_ref());
    if let Some(emails) = &u.emails {
        m.push((
            "emails",
            Emit::List(
                emails
                    .iter()
                    .map(|e| contact_emit(&e.value.value, e.kind.map(EmailType::name), e.primary))
                    .collect(),
            ),
        ));
    }
    if let Some(phones) = &u.phone_numbers {
        m.push((
            "phoneNumbers",
            Emit::List(
                phones
                    .iter()
                    .map(|p| contact_emit(&p.value.value, p.kind.map(PhoneType::name), p.primary))
                    .collect(),
            ),
        ));
    }
    push_opt(&mut m, "department", u.department.as_ref());
    push_opt(&mut m, "division", u.division.as_ref());
    push_opt(&mut m, "employeeNumber", u.employee_number.as_ref());
    push_opt(&mut m, "dateHire", u.date_hire.as_ref());
    push_opt(&mut m, "manager", u.manager.as_ref());
    for (key, list) in [
        ("routingSkills", &u.routing_skills),
        ("routingLanguages", &u.routing_languages),
    ] {
        if let Some(list) = list {
            m.push((
                key,
                Emit::List(
                    list.iter()
                        .map(|p| {
                            Emit::FlowMap(vec![
                                ("name", Emit::str(p.value.name.as_str())),
                                ("proficiency", Emit::Number(p.value.proficiency)),
                            ])
                        })
                        .collect(),
                ),
            ));
        }
    }
    if let Some(roles) = &u.roles {
        m.push((
            "roles",
            Emit::FlowList(
                roles
                    .iter()
                    .map(|r| Emit::str(r.value.name.as_str()))
                    .collect(),
            ),
        ));
    }
    push_opt(&mut m, "license", u.license.as_ref());
    Emit::Map(m)
}

fn contact_emit<'a>(value: &'a str, kind: Option<&'static str>, primary: Option<bool>) -> Emit<'a> {
    let mut m = vec![("value", Emit::str(value))];
    if let Some(k) = kind {
        m.push(("type", Emit::str(k)));
    }
    if let Some(p) = primary {
        m.push(("primary", Emit::Bool(p)));
    }
    Emit::FlowMap(m)
}

fn group_emit(g: &Group) -> Emit<'_> {
    let mut m: Vec<(&str, Emit<'_>)> = vec![("displayName", text_emit(&g.display_name))];
    push_opt(&mut m, "description", g.description.as_ref());
    push_opt(&mut m, "externalId", g.external_id.as_ref());
    if let Some(k) = &g.kind {
        m.push(("type", Emit::str(k.value.as_str())));
    }
    if let Some(v) = &g.visibility {
        m.push(("visibility", Emit::str(v.value.as_str())));
    }
    for (key, flag) in [
        ("rulesVisible", &g.rules_visible),
        ("rolesEnabled", &g.roles_enabled),
        ("callsEnabled", &g.calls_enabled),
        ("includeOwners", &g.include_owners),
    ] {
        if let Some(f) = flag {
            m.push((key, Emit::Bool(f.value)));
        }
    }
    if let Some(owners) = &g.owners {
        m.push(("owners", Emit::List(owners.iter().map(text_emit).collect())));
    }
    if let Some(roles) = &g.roles {
        // A name, or `{name, divisions}` when the grant is not the home division alone.
        fn role(r: &crate::model::RoleGrant) -> Emit<'_> {
            match &r.divisions {
                None => Emit::str(r.name.as_str()),
                Some(divisions) => Emit::FlowMap(vec![
                    ("name", Emit::str(r.name.as_str())),
                    (
                        "divisions",
                        Emit::FlowList(divisions.iter().map(|d| Emit::str(d.as_str())).collect()),
                    ),
                ]),
            }
        }
        m.push((
            "roles",
            Emit::List(roles.iter().map(|r| role(&r.value)).collect()),
        ));
    }
    if let Some(members) = &g.members {
        m.push((
            "members",
            Emit::List(members.iter().map(text_emit).collect()),
        ));
    }
    Emit::Map(m)
}

/// Rendered items laid into parts of at most [`MAX_ENTRIES_PER_FILE`] items and
/// [`MAX_BYTES_PER_FILE`] bytes (a single larger item gets a part of its own): (body, items).
fn chunks<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for item in items {
        let item = item.as_ref();
        let full = out.last().is_none_or(|(body, n)| {
            *n >= MAX_ENTRIES_PER_FILE || body.len() + item.len() > MAX_BYTES_PER_FILE
        });
        if full {
            out.push((String::new(), 0));
        }
        if let Some((body, n)) = out.last_mut() {
            body.push_str(item);
            *n += 1;
        }
    }
    out
}

/// Names the parts of one logical file: `base.yaml`, or `base-01.yaml`, `base-02.yaml`, ...
fn part_names(base: &str, parts: usize) -> Vec<String> {
    if parts <= 1 {
        return vec![format!("{base}.yaml")];
    }
    let width = parts.to_string().len().max(2);
    (1..=parts)
        .map(|i| format!("{base}-{i:0width$}.yaml"))
        .collect()
}

fn list_file(header: &str, key: &str, body: &str) -> String {
    let mut w = Writer::new();
    w.comment(header);
    w.list_key(key);
    w.items(body);
    w.finish()
}

/// Where the users' rendered list items wait until their files are laid out: appended one
/// after another, read back by byte range. A `String` keeps them in memory; `scimctl export`
/// keeps them in a temporary file ([`super::write::Spill`]), so that 100,000 users' YAML is
/// not held in memory.
pub trait ItemStore {
    /// Why an item could not be kept or read back.
    type Error;
    /// Appends `text`.
    fn append(&mut self, text: &str) -> Result<(), Self::Error>;
    /// Bytes appended so far.
    fn len(&self) -> u64;
    /// Whether nothing was appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The text appended between `start` and `end`.
    fn read(&mut self, start: u64, end: u64) -> Result<String, Self::Error>;
}

impl ItemStore for String {
    type Error = std::convert::Infallible;

    fn append(&mut self, text: &str) -> Result<(), Self::Error> {
        self.push_str(text);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.as_str().len() as u64
    }

    fn read(&mut self, start: u64, end: u64) -> Result<String, Self::Error> {
        let at = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(self[at(start)..at(end)].to_owned())
    }
}

/// The users of an export, each rendered as its YAML list item as it comes, by department
/// file: what the user files are made of, without keeping the users themselves.
#[derive(Debug)]
pub(super) struct UserFiles<S: ItemStore> {
    buckets: BTreeMap<String, Bucket>,
    users: usize,
    store: S,
    /// The first item that could not be kept.
    failed: Option<S::Error>,
    /// The item being rendered (reused).
    item: String,
}

/// The users of one department file.
#[derive(Debug, Default)]
struct Bucket {
    departments: BTreeSet<String>,
    without: bool,
    /// Where each user's list item is in the store: (start, end).
    items: Vec<(u64, u64)>,
}

impl<S: ItemStore> UserFiles<S> {
    /// No users yet; their items go to `store`.
    pub(super) fn new(store: S) -> UserFiles<S> {
        UserFiles {
            buckets: BTreeMap::new(),
            users: 0,
            store,
            failed: None,
            item: String::new(),
        }
    }

    /// Adds the next user (users come sorted, so each bucket is too).
    pub(super) fn add(&mut self, u: &User) {
        let slug = u
            .department
            .as_ref()
            .map(|d| slug(d))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| NO_DEPARTMENT.to_owned());
        let bucket = self.buckets.entry(slug).or_default();
        match &u.department {
            Some(d) if !bucket.departments.contains(d.value.as_str()) => {
                bucket.departments.insert(d.value.as_str().to_owned());
            }
            Some(_) => {}
            None => bucket.without = true,
        }
        self.item.clear();
        yaml::push_item(&mut self.item, &user_emit(u));
        let start = self.store.len();
        match self.store.append(&self.item) {
            Ok(()) => bucket.items.push((start, self.store.len())),
            Err(e) => {
                self.failed.get_or_insert(e);
            }
        }
        self.users += 1;
    }

    /// Users added.
    pub(super) fn users(&self) -> usize {
        self.users
    }

    /// Lays the users out as files, handing each (relative path, text) to `put` as soon as it
    /// is laid out; returns how many files there were.
    pub(super) fn into_files<E: From<S::Error>>(
        mut self,
        put: &mut dyn FnMut(String, String) -> Result<(), E>,
    ) -> Result<usize, E> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        let mut user_files = 0;
        for (slug, bucket) in self.buckets {
            let mut who = String::new();
            if !bucket.departments.is_empty() {
                let list: Vec<String> = bucket
                    .departments
                    .iter()
                    .map(|d| format!("{d:?}"))
                    .collect();
                who = format!("of department {}", list.join(", "));
            }
            if bucket.without {
                who.push_str(if who.is_empty() {
                    "without a department"
                } else {
                    " and without one"
                });
            }
            let mut failed = None;
            let store = &mut self.store;
            let items =
                bucket
                    .items
                    .iter()
                    .map_while(|&(start, end)| match store.read(start, end) {
                        Ok(item) => Some(item),
                        Err(e) => {
                            failed = Some(e);
                            None
                        }
                    });
            let parts = chunks(items);
            if let Some(e) = failed {
                return Err(e.into());
            }
            let count = parts.len();
            let names = part_names(&format!("users/{slug}"), count);
            for (i, (name, (body, n))) in names.into_iter().zip(parts).enumerate() {
                let part = if count > 1 {
                    format!(", part {} of {count}", i + 1)
                } else {
                    String::new()
                };
                let header = format!("Users {who} ({n} users{part}), exported by scimctl export.");
                put(name, list_file(&header, "users", &body))?;
                user_files += 1;
            }
        }
        Ok(user_files)
    }
}

/// Lays desired-state values out as files (see the module docs). Deterministic.
#[must_use]
pub fn render(exported: &Exported, options: &ExportOptions) -> Export {
    let mut files = BTreeMap::new();
    let mut users = UserFiles::new(String::new());
    for u in &exported.users {
        users.add(u);
    }
    let mut put = |name: String, text: String| -> Result<(), std::convert::Infallible> {
        files.insert(name, text);
        Ok(())
    };
    let Ok(user_files) = users.into_files(&mut put);
    let Ok(()) = render_rest(exported, options, &mut put);
    Export {
        files,
        users: exported.users.len(),
        user_files,
        groups: exported.groups.len(),
        roles: exported.roles.len(),
        licenses: exported.licenses.len(),
        warnings: exported.warnings.clone(),
    }
}

/// The files of an export besides the users': groups, role names and `scimctl.yaml`, each
/// handed to `put` as soon as it is laid out.
pub(super) fn render_rest<E>(
    exported: &Exported,
    options: &ExportOptions,
    put: &mut dyn FnMut(String, String) -> Result<(), E>,
) -> Result<(), E> {
    if !exported.groups.is_empty() {
        let parts = chunks(exported.groups.iter().map(|g| yaml::item(&group_emit(g))));
        for (name, (body, n)) in part_names("groups", parts.len()).into_iter().zip(parts) {
            let header = format!(
                "Groups ({n}), exported by scimctl export. Members are users by userName and\n\
                 nested groups by displayName."
            );
            put(name, list_file(&header, "groups", &body))?;
        }
    }
    if !exported.roles.is_empty() {
        let items: String = exported
            .roles
            .iter()
            .map(|r| yaml::item(&Emit::Map(vec![("name", Emit::str(r.name.value.as_str()))])))
            .collect();
        let header = "The role names users hold, exported by scimctl export. A plain SCIM 2.0 target\n\
                      exposes no role definitions, so no permissions are written: a role without\n\
                      `permissions` leaves them unmanaged.";
        put("roles.yaml".to_owned(), list_file(header, "roles", &items))?;
    }
    if !exported.licenses.is_empty() {
        let items: String = exported
            .licenses
            .iter()
            .map(|l| yaml::item(&license_emit(l)))
            .collect();
        let header = "The Genesys Cloud license definitions the exported users hold, exported by scimctl\n\
                      export: each named by its id (a definition has no name), `allowedRoles` the\n\
                      roles its holders hold. A user holding several definitions has no `license`\n\
                      (YAML gives one per user), and plans leave its licenses alone.";
        put(
            "licenses.yaml".to_owned(),
            list_file(header, "licenses", &items),
        )?;
    }
    put("scimctl.yaml".to_owned(), config_file(exported, options))
}

fn license_emit(l: &License) -> Emit<'_> {
    let mut m: Vec<(&str, Emit<'_>)> = vec![("name", text_emit(&l.name))];
    push_opt(&mut m, "description", l.description.as_ref());
    push_opt(&mut m, "genesysLicense", l.genesys_license.as_ref());
    m.push((
        "allowedRoles",
        Emit::FlowList(l.allowed_roles.iter().map(text_emit).collect()),
    ));
    Emit::Map(m)
}

fn secret_emit(s: &SecretSource) -> Emit<'_> {
    match s {
        SecretSource::FromEnv(v) => Emit::FlowMap(vec![("fromEnv", Emit::str(v.as_str()))]),
        SecretSource::FromFile(p) => Emit::FlowMap(vec![("fromFile", Emit::str(p.as_str()))]),
    }
}

fn value_emit(v: &ValueSource) -> Emit<'_> {
    match v {
        ValueSource::Literal(text) => Emit::str(text.as_str()),
        ValueSource::Source(s) => secret_emit(s),
    }
}

fn oauth_emit(oauth: &OAuthClient) -> Emit<'_> {
    let mut m = vec![
        ("tokenUrl", Emit::str(oauth.token_url.as_str())),
        ("clientId", value_emit(&oauth.client_id)),
        ("clientSecret", secret_emit(&oauth.client_secret)),
    ];
    if let Some(scope) = &oauth.scope {
        m.push(("scope", Emit::str(scope.as_str())));
    }
    Emit::FlowMap(m)
}

/// The `target:` entry: every setting the tenant was read with. Secrets are references
/// (`fromEnv`/`fromFile`) by construction: a literal one is refused when YAML is read.
fn target_emit(target: &Target) -> Emit<'_> {
    let (mut m, requests_per_minute) = match target {
        Target::Sandbox { path } => {
            let mut m = vec![("kind", Emit::str("sandbox"))];
            if let Some(p) = path {
                m.push(("path", Emit::str(p.as_str())));
            }
            (m, None)
        }
        Target::Scim {
            url,
            token,
            oauth,
            requests_per_minute,
        } => {
            let mut m = vec![
                ("kind", Emit::str("scim")),
                ("url", Emit::str(url.as_str())),
            ];
            if let Some(t) = token {
                m.push(("token", secret_emit(t)));
            }
            if let Some(o) = oauth {
                m.push(("oauth", oauth_emit(o)));
            }
            (m, *requests_per_minute)
        }
        Target::Genesys {
            region,
            client_id,
            client_secret,
            api_url,
            login_url,
            requests_per_minute,
        } => {
            let mut m = vec![("kind", Emit::str("genesys"))];
            if let Some(r) = region {
                m.push(("region", Emit::str(r.as_str())));
            }
            m.push(("clientId", value_emit(client_id)));
            m.push(("clientSecret", secret_emit(client_secret)));
            if let Some(u) = api_url {
                m.push(("apiUrl", Emit::str(u.as_str())));
            }
            if let Some(u) = login_url {
                m.push(("loginUrl", Emit::str(u.as_str())));
            }
            (m, *requests_per_minute)
        }
    };
    if let Some(n) = requests_per_minute {
        m.push(("requestsPerMinute", Emit::Number(f64::from(n))));
    }
    Emit::FlowMap(m)
}

/// The `target:` of `scimctl.yaml` (or a comment on the default sandbox), and what reading
/// that target needs besides: `secrets.allowedDirs` and `matchBy`.
fn target_entries(w: &mut Writer, options: &ExportOptions) {
    match &options.target {
        None => w.comment(
            "No `target:`: plan and apply use the embedded sandbox in .scimctl/sandbox.json beside\n\
             this directory. To point at a tenant, for example:\n  \
             target: {kind: scim, url: \"https://idp.example.com/scim/v2\", token: {fromEnv: SCIMCTL_TOKEN}}",
        ),
        Some(t) => {
            w.comment(
                "The tenant this was exported from. Credentials are never written: a token is read\n\
                 from the environment variable named here.",
            );
            w.entry("target", &target_emit(t));
        }
    }
    if !options.secret_dirs.is_empty() {
        w.blank();
        w.comment("Where the target's `fromFile` secrets are, as in the configuration read.");
        w.entry(
            "secrets",
            &Emit::FlowMap(vec![(
                "allowedDirs",
                Emit::FlowList(
                    options
                        .secret_dirs
                        .iter()
                        .map(|d| Emit::str(d.as_str()))
                        .collect(),
                ),
            )]),
        );
    }
    if let Some(authority) = &options.external_id_authority {
        w.blank();
        w.comment(
            "Users are matched on their `externalIds` entry of this authority, as in the\n\
             configuration the tenant was read with: each user's `externalId` here is that entry.",
        );
        w.entry(
            "matchBy",
            &Emit::FlowMap(vec![("externalIdAuthority", Emit::str(authority.as_str()))]),
        );
    }
}

fn config_file(exported: &Exported, options: &ExportOptions) -> String {
    let mut w = Writer::new();
    w.comment(&format!(
        "scimctl configuration, generated by `scimctl export` from {}.\n\
         `scimctl plan` on this directory against the same tenant shows no changes.",
        options.description
    ));
    w.blank();
    target_entries(&mut w, options);
    w.blank();
    w.comment(
        "Only the objects listed in this directory are scimctl's; anything created in the tenant\n\
         later is left alone. Once this directory is the source of truth, widen ownership one kind\n\
         at a time, after reading the plan it gives (live objects absent from YAML are then pruned):\n  \
         ownership: {users: all, groups: all, roles: listed}\n\
         or only part of the tenant, e.g. users: {selector: {nameSuffix: \"@example.com\"}}.",
    );
    w.entry(
        "ownership",
        &Emit::FlowMap(vec![
            ("users", Emit::str("listed")),
            ("groups", Emit::str("listed")),
            ("roles", Emit::str("listed")),
        ]),
    );
    w.blank();
    match &exported.additive_members {
        None => w.comment(
            "Group members in YAML are the whole truth for each group; user roles are only ever\n\
             added, never stripped.",
        ),
        Some(why) => w.comment(&format!(
            "Group members are additive: {why}.\n\
             Make them authoritative once every member is listed."
        )),
    }
    let members = if exported.additive_members.is_some() {
        "additive"
    } else {
        "authoritative"
    };
    w.entry(
        "collections",
        &Emit::FlowMap(vec![
            ("groupMembers", Emit::str(members)),
            ("userRoles", Emit::str("additive")),
        ]),
    );
    w.blank();
    w.comment(
        "Takes effect only where ownership is widened: a user absent from YAML is deactivated\n\
         (reversible), and no group is deleted.",
    );
    w.entry(
        "prune",
        &Emit::FlowMap(vec![
            ("users", Emit::str("deactivate")),
            ("groups", Emit::str("none")),
        ]),
    );
    if let Some(depth) = exported.max_group_depth {
        w.blank();
        w.comment(&format!(
            "Groups are nested {depth} levels deep in the tenant, more than the default limit of 5."
        ));
        w.entry(
            "policy",
            &Emit::FlowMap(vec![("maxGroupDepth", Emit::Number(f64::from(depth)))]),
        );
    }
    w.blank();
    if exported.licenses.is_empty() {
        w.comment(
            "Roles and licenses: a plain SCIM 2.0 target exposes no role definitions and no licenses.\n\
             roles.yaml (when users hold roles) lists the role names only, without permissions, and\n\
             no license is written.",
        );
    } else {
        w.comment(
            "Roles and licenses: roles.yaml lists the role names only, without permissions.\n\
             licenses.yaml maps each license definition the exported users hold, and a user holding\n\
             one has it as `license`; ownership.licenses is left `listed` (the default), so a plan\n\
             takes from such a user only the definitions licenses.yaml maps.",
        );
    }
    w.finish()
}
