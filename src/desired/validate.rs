//! Cross-file validation of desired state (docs/contract.md §5): every problem at once, each at the
//! `path:line:col` that causes it, before any network call.
//!
//! Pure: the only outside facts it needs (whether an environment variable is set, whether a
//! file is readable) come through [`Environment`], so tests decide them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::model::permission::{Permission, RoleIndex, effective_permissions};
use crate::model::{
    Config, EmailType, Group, License, OwnershipMode, PasswordSource, PhoneNumber, Proficiency,
    Role, SecretSource, SourceMap, Span, Spanned, Target, Text, User,
};

use super::confine::SecretDirs;
use super::diagnostic::Diagnostic;
use super::lookalike::{self, Finding};
use super::names::{Matching, NameIndex, fold_eq};

/// Facts about the machine that validation may ask, and nothing more: it never reads a
/// secret's value.
pub trait Environment: Sync {
    /// Whether the environment variable is set to a non-empty value.
    fn var_is_set(&self, name: &str) -> bool;
    /// `Ok` when the file exists and can be opened for reading; otherwise why not.
    fn file_readable(&self, path: &Path) -> Result<(), String>;
    /// Whether validation may read a password source's value to check it against
    /// `policy.password` (`validate` in the real environment: yes). The value is held in a
    /// zeroized secret, and a report names the rules it breaks, never the value.
    fn reads_passwords(&self) -> bool {
        false
    }
}

/// Everything read from the directory, before validation.
#[derive(Debug, Default)]
pub struct Collected {
    /// All users, in file order.
    pub users: Vec<Spanned<User>>,
    /// All groups, in file order.
    pub groups: Vec<Spanned<Group>>,
    /// All roles, in file order.
    pub roles: Vec<Spanned<Role>>,
    /// All licenses, in file order.
    pub licenses: Vec<Spanned<License>>,
    /// `scimctl.yaml`, or defaults.
    pub config: Config,
    /// Where `target:` is written, if it is.
    pub target_span: Option<Span>,
}

/// Longest reason that is still "not a reason".
const MIN_REASON_CHARS: usize = 10;
/// Genesys Cloud's documented maximum of routing skills and of routing languages per user.
const MAX_ROUTING_ENTRIES: usize = 50;

/// Runs every check and returns all diagnostics (errors and warnings), unsorted.
pub fn validate(state: &Collected, sources: &SourceMap, env: &dyn Environment) -> Vec<Diagnostic> {
    check(state, sources, env, None).0
}

/// [`validate`], also handing back the name indexes it built so the loaded state can keep them.
pub(crate) fn check(
    state: &Collected,
    sources: &SourceMap,
    env: &dyn Environment,
    secret_dirs: Option<&SecretDirs>,
) -> (Vec<Diagnostic>, Indexes) {
    let mut v = Validator {
        state,
        sources,
        env,
        secret_dirs,
        out: Vec::new(),
    };
    v.config();
    v.watch();
    let names = v.names();
    v.lookalikes();
    v.users(&names);
    v.groups(&names);
    v.roles(&names);
    v.licenses(&names);
    (v.out, names.indexes)
}

/// Positions by folded name of each kind, the first definition winning. Validation builds them
/// and the loaded state keeps them for its lookups.
#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) users: NameIndex,
    pub(crate) groups: NameIndex,
    pub(crate) roles: NameIndex,
    pub(crate) licenses: NameIndex,
}

/// What validation looks names up in.
struct Names {
    indexes: Indexes,
    /// Folded earlier userName → the user listing it (few users have one).
    previously: HashMap<String, usize>,
}

impl Names {
    fn user(&self, state: &Collected, name: &str) -> Option<usize> {
        self.indexes
            .users
            .get(name, |i| state.users[i].user_name.as_str())
    }

    fn group(&self, state: &Collected, name: &str) -> Option<usize> {
        self.indexes
            .groups
            .get(name, |i| state.groups[i].display_name.as_str())
    }

    fn role(&self, state: &Collected, name: &str) -> Option<usize> {
        self.indexes
            .roles
            .get(name, |i| state.roles[i].name.as_str())
    }

    fn license(&self, state: &Collected, name: &str) -> Option<usize> {
        self.indexes
            .licenses
            .get(name, |i| state.licenses[i].name.as_str())
    }
}

struct Validator<'s> {
    state: &'s Collected,
    sources: &'s SourceMap,
    env: &'s dyn Environment,
    /// Where `fromFile` secrets may be; `None` when validating without a directory.
    secret_dirs: Option<&'s SecretDirs>,
    out: Vec<Diagnostic>,
}

fn fold(name: &str) -> String {
    name.to_lowercase()
}

impl Validator<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.out.push(Diagnostic::error(span, message));
    }

    /// Names never hold control, bidirectional or zero-width characters: they would reach
    /// terminals and tenants, and make two names look alike.
    fn printable(&mut self, what: &str, name: &Spanned<crate::model::Text>) {
        if let Some(c) = name.chars().find(|c| crate::model::is_unsafe_char(*c)) {
            self.error(
                name.span,
                format!(
                    "{what} `{}` holds the character U+{:04X}: control, bidirectional and \
                     zero-width characters are not allowed in names",
                    crate::model::escape(name.as_str()),
                    u32::from(c)
                ),
            );
        }
    }

    fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.out.push(Diagnostic::warning(span, message));
    }

    fn at(&self, span: Span) -> String {
        self.sources.locate(span).to_string()
    }

    fn is_genesys(&self) -> bool {
        matches!(self.state.config.target, Some(Target::Genesys { .. }))
    }

    /// Indexes every kind by folded name, reporting duplicates (across files) as it goes.
    #[allow(clippy::too_many_lines)] // one check after another, each a few lines
    fn names(&mut self) -> Names {
        let state = self.state;
        let (users, duplicates) = NameIndex::build(state.users.len(), Matching::Folded, |i| {
            Some(state.users[i].user_name.as_str())
        });
        for (i, first) in duplicates {
            let (name, first) = (&state.users[i].user_name, &state.users[first].user_name);
            let msg = format!(
                "duplicate userName `{}` (also at {})",
                name.value,
                self.at(first.span)
            );
            self.error(name.span, msg);
        }
        let (_, duplicates) = NameIndex::build(state.users.len(), Matching::Exact, |i| {
            state.users[i].external_id.as_deref().map(Text::as_str)
        });
        for (i, first) in duplicates {
            let (Some(ext), Some(first)) =
                (&state.users[i].external_id, &state.users[first].external_id)
            else {
                continue;
            };
            let msg = format!(
                "duplicate user externalId `{}` (also at {})",
                ext.value,
                self.at(first.span)
            );
            self.error(ext.span, msg);
        }
        let user_name = |i: usize| state.users[i].user_name.as_str();
        let mut previously: HashMap<String, usize> = HashMap::new();
        for (i, user) in state.users.iter().enumerate() {
            for old in &user.previously {
                let key = fold(old);
                if let Some(owner) = users.get(old, user_name) {
                    if owner == i {
                        self.error(
                            old.span,
                            format!(
                                "`{}` is this user's current userName; remove it from previously",
                                old.value
                            ),
                        );
                    } else {
                        let msg = format!(
                            "`{}` is listed in previously but is the current userName of another user ({}); a rename source must be unique",
                            old.value,
                            self.at(state.users[owner].user_name.span)
                        );
                        self.error(old.span, msg);
                    }
                } else if let Some(&other) = previously.get(&key) {
                    if other != i {
                        let msg = format!(
                            "`{}` is also listed in previously of `{}`; a rename source must be unique",
                            old.value, *state.users[other].user_name
                        );
                        self.error(old.span, msg);
                    }
                } else {
                    previously.insert(key, i);
                }
            }
        }

        let (groups, duplicates) = NameIndex::build(state.groups.len(), Matching::Folded, |i| {
            Some(state.groups[i].display_name.as_str())
        });
        for (i, first) in duplicates {
            let (name, first) = (
                &state.groups[i].display_name,
                &state.groups[first].display_name,
            );
            let msg = format!(
                "duplicate group `{}` (also at {})",
                name.value,
                self.at(first.span)
            );
            self.error(name.span, msg);
        }
        let (_, duplicates) = NameIndex::build(state.groups.len(), Matching::Exact, |i| {
            state.groups[i].external_id.as_deref().map(Text::as_str)
        });
        for (i, first) in duplicates {
            let (Some(ext), Some(first)) = (
                &state.groups[i].external_id,
                &state.groups[first].external_id,
            ) else {
                continue;
            };
            let msg = format!(
                "duplicate group externalId `{}` (also at {})",
                ext.value,
                self.at(first.span)
            );
            self.error(ext.span, msg);
        }
        let group_name = |i: usize| state.groups[i].display_name.as_str();
        for (i, group) in state.groups.iter().enumerate() {
            for old in &group.previously {
                if let Some(owner) = groups.get(old, group_name) {
                    let msg = if owner == i {
                        format!(
                            "`{}` is this group's current name; remove it from previously",
                            old.value
                        )
                    } else {
                        format!(
                            "`{}` is listed in previously but is the name of another group",
                            old.value
                        )
                    };
                    self.error(old.span, msg);
                }
            }
        }

        let (roles, duplicates) = NameIndex::build(state.roles.len(), Matching::Folded, |i| {
            Some(state.roles[i].name.as_str())
        });
        for (i, first) in duplicates {
            let (name, first) = (&state.roles[i].name, &state.roles[first].name);
            let msg = format!(
                "duplicate role `{}` (also at {})",
                name.value,
                self.at(first.span)
            );
            self.error(name.span, msg);
        }
        let (licenses, duplicates) =
            NameIndex::build(state.licenses.len(), Matching::Folded, |i| {
                Some(state.licenses[i].name.as_str())
            });
        for (i, first) in duplicates {
            let (name, first) = (&state.licenses[i].name, &state.licenses[first].name);
            let msg = format!(
                "duplicate license `{}` (also at {})",
                name.value,
                self.at(first.span)
            );
            self.error(name.span, msg);
        }
        Names {
            indexes: Indexes {
                users,
                groups,
                roles,
                licenses,
            },
            previously,
        }
    }

    /// Look-alike names of each kind (issue 14, item 7): equal once NFKC-normalized and
    /// case-folded is an error, as a duplicate is; a confusable spelling, a name mixing
    /// scripts or holding an invisible format character is a warning.
    fn lookalikes(&mut self) {
        let state = self.state;
        self.lookalikes_of("userName", "user", state.users.len(), |i| {
            &state.users[i].user_name
        });
        self.lookalikes_of("group", "group", state.groups.len(), |i| {
            &state.groups[i].display_name
        });
        self.lookalikes_of("role", "role", state.roles.len(), |i| &state.roles[i].name);
    }

    fn lookalikes_of<'n>(
        &mut self,
        what: &str,
        kind: &str,
        count: usize,
        name: impl Fn(usize) -> &'n Spanned<Text>,
    ) {
        for finding in lookalike::find(count, |i| name(i).as_str()) {
            match finding {
                Finding::Same { position, first } => {
                    let (name, first) = (name(position), name(first));
                    let msg = format!(
                        "duplicate {what} `{}` (also at {}, written `{}`): the two are equal once \
                         NFKC-normalized and case-folded, and servers treat them as one {kind}",
                        lookalike::show(name),
                        self.at(first.span),
                        lookalike::show(first),
                    );
                    self.error(name.span, msg);
                }
                Finding::Confusable { position, first } => {
                    let (name, first) = (name(position), name(first));
                    let msg = format!(
                        "{what} `{}` looks like {what} `{}` (at {}): their confusable skeletons \
                         (Unicode UTS #39) are equal",
                        lookalike::show(name),
                        lookalike::show(first),
                        self.at(first.span),
                    );
                    self.warning(name.span, msg);
                }
                Finding::MixedScripts { position, scripts } => {
                    let name = name(position);
                    let msg = format!(
                        "{what} `{}` mixes scripts in one word ({}): it can pass for another name",
                        lookalike::show(name),
                        scripts.join(" and "),
                    );
                    self.warning(name.span, msg);
                }
                Finding::Invisible {
                    position,
                    character,
                } => {
                    let name = name(position);
                    let msg = format!(
                        "{what} `{}` holds the invisible format character U+{:04X}: it can pass \
                         for another name",
                        lookalike::show(name),
                        u32::from(character),
                    );
                    self.warning(name.span, msg);
                }
            }
        }
    }

    /// `matchBy.externalIdAuthority`: only on a Genesys target, and a name of the user's own.
    fn match_by(&mut self) {
        let config = &self.state.config;
        if let Some(authority) = &config.match_by.external_id_authority {
            if !self.is_genesys() {
                self.error(
                    authority.span,
                    "matchBy.externalIdAuthority needs a Genesys Cloud target (`target: {kind: \
                     genesys}`): plain SCIM users have no externalIds authorities; remove it to \
                     match on the SCIM externalId",
                );
            } else if authority.trim().is_empty() {
                self.error(
                    authority.span,
                    "matchBy.externalIdAuthority must not be blank",
                );
            } else if authority.starts_with("x-pc:") {
                self.error(
                    authority.span,
                    format!(
                        "matchBy.externalIdAuthority `{}`: authorities starting with `x-pc:` \
                         belong to Genesys Cloud (its SCIM entry is read-only); name your own",
                        authority.value
                    ),
                );
            }
        }
    }

    fn config(&mut self) {
        let config = &self.state.config;
        self.match_by();
        for denied in &config.policy.denied_permissions {
            if let Err(e) = Permission::parse(denied) {
                self.error(
                    denied.span,
                    format!("invalid denied permission `{}`: {e}", denied.value),
                );
            }
        }
        let depth = &config.policy.max_group_depth;
        if depth.value == 0 || depth.value > 64 {
            self.error(
                depth.span,
                format!(
                    "maxGroupDepth must be between 1 and 64, found {}",
                    depth.value
                ),
            );
        }
        let percent = &config.safety.max_delete_percent;
        if percent.value > 100 {
            self.error(
                percent.span,
                format!(
                    "maxDeletePercent is a percentage (0-100), found {}",
                    percent.value
                ),
            );
        }
        for mode in [
            &config.ownership.users,
            &config.ownership.groups,
            &config.ownership.roles,
        ] {
            if let OwnershipMode::Selector(selector) = &mode.value
                && selector.is_empty()
            {
                self.error(
                    mode.span,
                    "a selector needs at least one of nameSuffix, namePrefix or externalIdPrefix",
                );
            }
        }
        for name in config
            .protected
            .users
            .iter()
            .chain(&config.protected.groups)
            .chain(&config.policy.admin_roles)
        {
            if name.trim().is_empty() {
                self.error(name.span, "names must not be blank");
            }
        }
        let span = self.state.target_span.unwrap_or(Span::UNKNOWN);
        match &config.target {
            Some(Target::Scim {
                url,
                requests_per_minute,
                ..
            }) => {
                if let Err(why) = check_base_url(url) {
                    self.error(span, format!("target url {why}"));
                }
                if *requests_per_minute == Some(0) {
                    self.error(span, "requestsPerMinute must be at least 1");
                }
            }
            Some(Target::Genesys {
                region,
                api_url,
                login_url,
                requests_per_minute,
                ..
            }) => self.genesys_target(
                span,
                region.as_deref(),
                api_url.as_deref(),
                login_url.as_deref(),
                *requests_per_minute,
            ),
            Some(Target::Sandbox { .. }) | None => {}
        }
    }

    /// The `target: {kind: genesys}` settings: a known region or an explicit API URL.
    fn genesys_target(
        &mut self,
        span: Span,
        region: Option<&str>,
        api_url: Option<&str>,
        login_url: Option<&str>,
        requests_per_minute: Option<u32>,
    ) {
        match (region, api_url) {
            (None, None) => self.error(
                span,
                "a genesys target needs `region` (e.g. mypurecloud.com) or `apiUrl`",
            ),
            (Some(region), _) if crate::scim::genesys::region_hosts(region).is_none() => {
                let known = crate::scim::genesys::REGIONS
                    .iter()
                    .flat_map(|(aws, domain)| [*aws, *domain]);
                let hint = crate::desired::yaml::suggest(region, known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                self.error(span, format!("unknown Genesys Cloud region `{region}`{hint}; give the domain, e.g. mypurecloud.com or euw2.pure.cloud, or set apiUrl"));
            }
            _ => {}
        }
        for url in [api_url, login_url].into_iter().flatten() {
            if let Err(why) = check_base_url(url) {
                self.error(span, format!("target url {why}"));
            }
        }
        if requests_per_minute == Some(0) {
            self.error(span, "requestsPerMinute must be at least 1");
        }
    }

    /// `watch:` webhook settings. Secrets are checked for shape only: plan and apply run in
    /// places (CI) that do not hold watch's secrets; `watch` itself refuses to start without
    /// them.
    fn watch(&mut self) {
        let watch = &self.state.config.watch;
        if let Some(hooks) = &watch.webhooks {
            if hooks.urls.is_empty() {
                self.error(
                    hooks.span,
                    "webhooks need at least one URL in `urls`; leave `webhooks` out to send none",
                );
            }
            for url in &hooks.urls {
                if let Err(why) = check_base_url(url) {
                    self.error(url.span, format!("webhook url {why}"));
                }
            }
            match &hooks.secret {
                Some(secret) => self.secret_shape(secret, "webhook"),
                None => self.error(
                    hooks.span,
                    "webhooks need a `secret` ({fromEnv: VARIABLE} or {fromFile: PATH}) so that \
                     receivers can verify the events",
                ),
            }
        }
        if let Some(hris) = &watch.hris {
            self.secret_shape(&hris.secret, "hris");
        }
    }

    fn secret_shape(&mut self, secret: &Spanned<SecretSource>, what: &str) {
        match &secret.value {
            SecretSource::FromEnv(var) if !valid_env_name(var) => self.error(
                secret.span,
                format!("{what} secret: `{var}` is not a valid environment variable name"),
            ),
            SecretSource::FromFile(path) if path.trim().is_empty() => {
                self.error(
                    secret.span,
                    format!("{what} secret: the file name is empty"),
                );
            }
            SecretSource::FromFile(path) => {
                let resolved = self.resolve(secret.span, path);
                if let Some(Err(why)) = self.secret_dirs.map(|d| d.check(&resolved)) {
                    self.error(
                        secret.span,
                        format!("{what} secret file `{path}` is refused: {why}"),
                    );
                }
            }
            SecretSource::FromEnv(_) => {}
        }
    }

    #[allow(clippy::too_many_lines)] // one check per user attribute, in attribute order
    fn users(&mut self, names: &Names) {
        let state = self.state;
        let role_index = RoleIndex::new(state.roles.iter().map(|r| &r.value));
        for user in &state.users {
            let name = &user.user_name;
            self.printable("userName", name);
            if let Some(display) = &user.display_name {
                self.printable("displayName", display);
            }
            if name.trim().is_empty() {
                self.error(name.span, "userName must not be blank");
            } else if name.trim() != name.as_str() {
                self.error(
                    name.span,
                    format!("userName `{}` has leading or trailing spaces", name.value),
                );
            } else if self.is_genesys()
                && let Err(why) = check_email(name)
            {
                self.error(
                    name.span,
                    format!(
                        "userName `{}` must be an email address on Genesys Cloud: {why}",
                        name.value
                    ),
                );
            }
            if let Some(display) = &user.display_name {
                if display.trim().is_empty() {
                    self.error(display.span, "displayName must not be blank");
                }
            } else if self.is_genesys() {
                self.error(
                    user.span,
                    format!(
                        "user `{}` needs a displayName (required by Genesys Cloud on create)",
                        name.value
                    ),
                );
            }
            if let Some(ext) = &user.external_id
                && ext.trim().is_empty()
            {
                self.error(ext.span, "externalId must not be blank");
            }
            self.emails(user);
            self.phones(user.phone_numbers.as_deref().unwrap_or_default());
            if let Some(date) = &user.date_hire
                && let Err(why) = check_date(date)
            {
                self.error(date.span, format!("dateHire `{}` {why}", date.value));
            }
            self.proficiencies("routingSkills", user.routing_skills.as_deref());
            self.proficiencies("routingLanguages", user.routing_languages.as_deref());
            if let Some(manager) = &user.manager {
                if fold_eq(manager, name) {
                    self.error(
                        manager.span,
                        format!("user `{}` cannot be their own manager", name.value),
                    );
                } else if names.user(state, manager).is_none() {
                    let hint = self.hint_user(names, manager);
                    self.error(
                        manager.span,
                        format!(
                            "manager `{}` is not a user in desired state{hint}",
                            manager.value
                        ),
                    );
                }
            }
            let license = user.license.as_ref().and_then(|l| {
                let found = names.license(state, l).map(|i| &state.licenses[i]);
                if found.is_none() {
                    let hint = suggest_in(l, state.licenses.iter().map(|x| x.name.as_str()));
                    self.error(l.span, format!("unknown license `{}`{hint}", l.value));
                }
                found
            });
            for grant in self.grant_list(user.roles.iter().flatten(), &role_index) {
                if let Some(license) = license {
                    let allowed = license
                        .allowed_roles
                        .iter()
                        .any(|r| fold_eq(r, &grant.name));
                    if !allowed {
                        let list = license
                            .allowed_roles
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ");
                        self.error(
                            grant.span,
                            format!(
                                "role `{}` is not allowed by license `{}` (allowed: {list})",
                                grant.name, *license.name
                            ),
                        );
                    }
                }
            }
            if let Some(license) = license {
                self.roles_through_groups(user, license);
            }
            let mut seen_groups = BTreeSet::new();
            for group in user.groups.iter().flatten() {
                if !seen_groups.insert(fold(group)) {
                    self.warning(
                        group.span,
                        format!("group `{}` is listed twice", group.value),
                    );
                } else if names.group(state, group).is_none() {
                    let hint =
                        suggest_in(group, state.groups.iter().map(|g| g.display_name.as_str()));
                    self.error(group.span, format!("unknown group `{}`{hint}", group.value));
                }
            }
            if let Some(password) = &user.password {
                self.password(password);
            }
        }
    }

    fn hint_user(&self, names: &Names, name: &str) -> String {
        if let Some(&i) = names.previously.get(&fold(name)) {
            return format!(" (it was renamed to `{}`)", *self.state.users[i].user_name);
        }
        // Suggestions over tens of thousands of users would be slow and rarely right.
        if self.state.users.len() <= 2_000 {
            return suggest_in(name, self.state.users.iter().map(|u| u.user_name.as_str()));
        }
        String::new()
    }

    fn emails(&mut self, user: &User) {
        let Some(emails) = &user.emails else { return };
        let mut primaries = 0;
        let mut seen = BTreeSet::new();
        for email in emails {
            if let Err(why) = check_email(&email.value.value) {
                self.error(
                    email.span,
                    format!(
                        "email `{}` is not a valid address: {why}",
                        email.value.value
                    ),
                );
            }
            if email.primary == Some(true) {
                primaries += 1;
                if primaries == 2 {
                    self.error(email.span, "only one email may be primary");
                }
            }
            if !seen.insert(email.value.value.to_lowercase()) {
                self.warning(
                    email.span,
                    format!("email `{}` is listed twice", email.value.value),
                );
            }
            if self.is_genesys() && email.kind.is_none() {
                self.error(
                    email.span,
                    "Genesys Cloud refuses an email without a type: add `type: work`",
                );
            } else if self.is_genesys() && email.kind == Some(EmailType::Other) {
                self.error(email.span, "on Genesys Cloud the `other` email is the read-only main address (the userName); use type `work`");
            } else if let Some(kind) = email.kind.filter(|k| self.is_genesys() && !k.on_genesys()) {
                self.error(
                    email.span,
                    format!(
                        "Genesys Cloud refuses email type `{}`: it takes `work` (and `other`, \
                         the read-only main address)",
                        kind.name()
                    ),
                );
            }
        }
    }

    fn phones(&mut self, phones: &[Spanned<PhoneNumber>]) {
        let mut primaries = 0;
        for phone in phones {
            if let Err(why) = check_phone(&phone.value.value) {
                self.error(
                    phone.span,
                    format!("phone number `{}` {why}", phone.value.value),
                );
            }
            if phone.primary == Some(true) {
                primaries += 1;
                if primaries == 2 {
                    self.error(phone.span, "only one phone number may be primary");
                }
            }
            if let Some(kind) = phone.kind.filter(|k| self.is_genesys() && !k.on_genesys()) {
                self.error(
                    phone.span,
                    format!(
                        "Genesys Cloud refuses phone type `{}`: it takes work, work2, work3, \
                         work4, home, mobile, other, microsoftteams, zoomphone, eightbyeight \
                         and ringcentral",
                        kind.name()
                    ),
                );
            }
        }
    }

    fn proficiencies(&mut self, field: &str, list: Option<&[Spanned<Proficiency>]>) {
        let Some(list) = list else { return };
        if list.len() > MAX_ROUTING_ENTRIES {
            self.error(
                list[MAX_ROUTING_ENTRIES].span,
                format!("at most {MAX_ROUTING_ENTRIES} {field} per user"),
            );
        }
        let mut seen = BTreeSet::new();
        for entry in list {
            if entry.name.trim().is_empty() {
                self.error(entry.span, format!("{field} names must not be blank"));
            }
            if !(0.0..=5.0).contains(&entry.proficiency) {
                self.error(
                    entry.span,
                    format!(
                        "proficiency of `{}` must be between 0 and 5, found {}",
                        entry.name, entry.proficiency
                    ),
                );
            }
            // Skill names are case-sensitive on Genesys Cloud, so duplicates are exact matches.
            if !seen.insert(entry.name.clone()) {
                self.error(
                    entry.span,
                    format!("`{}` is listed twice in {field}", entry.name),
                );
            }
        }
    }

    /// The rules of `policy.password` a resolvable source's password breaks, reported at
    /// the source (only when the environment lets validation read it).
    fn complexity(&mut self, password: &Spanned<PasswordSource>) {
        let Some(dirs) = self.secret_dirs else {
            return;
        };
        if !self.env.reads_passwords() {
            return;
        }
        let file = self.sources.path(password.span.file);
        let Ok(secret) = crate::apply::password::resolve(&password.value, file, dirs) else {
            return;
        };
        let policy =
            crate::apply::password::PasswordPolicy::from(&self.state.config.policy.password);
        let broken = policy.violations(secret.expose());
        if !broken.is_empty() {
            let what = match &password.value {
                PasswordSource::FromEnv(var) => format!("environment variable `{var}`"),
                PasswordSource::FromFile(path) => format!("file `{path}`"),
                PasswordSource::Generate => return,
            };
            self.error(
                password.span,
                format!(
                    "the password in {what} breaks policy.password: {}",
                    broken.join(", ")
                ),
            );
        }
    }

    fn password(&mut self, password: &Spanned<PasswordSource>) {
        let before = self.out.len();
        self.source(password);
        if self.out.len() == before {
            self.complexity(password);
        }
    }

    fn source(&mut self, password: &Spanned<PasswordSource>) {
        match &password.value {
            PasswordSource::Generate => {}
            PasswordSource::FromEnv(var) => {
                if !valid_env_name(var) {
                    self.error(
                        password.span,
                        format!("`{var}` is not a valid environment variable name"),
                    );
                } else if !self.env.var_is_set(var) {
                    // A warning: plan and apply read the variable only to create the user (or to
                    // check it for rotation), so a pull-request job without the secret, or a
                    // first look at the example org, can validate (issue 20).
                    self.warning(
                        password.span,
                        format!(
                            "password environment variable `{var}` is not set (or is empty): creating this user will need it"
                        ),
                    );
                }
            }
            PasswordSource::FromFile(path) => {
                let resolved = self.resolve(password.span, path);
                if let Some(Err(why)) = self.secret_dirs.map(|d| d.check(&resolved)) {
                    self.error(
                        password.span,
                        format!("password file `{path}` is refused: {why}"),
                    );
                } else if let Err(why) = self.env.file_readable(&resolved) {
                    self.error(
                        password.span,
                        format!(
                            "password file `{}` is not readable: {why}",
                            resolved.display()
                        ),
                    );
                }
            }
        }
    }

    /// A path relative to the YAML file that names it.
    fn resolve(&self, span: Span, path: &str) -> PathBuf {
        let path = Path::new(path);
        match self.sources.path(span.file).and_then(Path::parent) {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    fn groups(&mut self, names: &Names) {
        let state = self.state;
        // Edges between groups (for cycles and depth), with the span of the reference.
        let mut nested: Vec<Vec<(usize, Span)>> = vec![Vec::new(); state.groups.len()];
        for (gi, group) in state.groups.iter().enumerate() {
            self.printable("group displayName", &group.display_name);
            if group.display_name.trim().is_empty() {
                self.error(group.display_name.span, "displayName must not be blank");
            }
            let mut seen = BTreeSet::new();
            for member in group.members.iter().flatten() {
                let key = fold(member);
                if !seen.insert(key.clone()) {
                    self.warning(
                        member.span,
                        format!("member `{}` is listed twice", member.value),
                    );
                    continue;
                }
                let as_user = names.user(state, member).is_some();
                let as_group = names.group(state, member);
                match (as_user, as_group) {
                    (true, Some(_)) => self.error(
                        member.span,
                        format!(
                            "member `{}` is ambiguous: it names both a user and a group",
                            member.value
                        ),
                    ),
                    (true, None) => {}
                    (false, Some(target)) if target == gi => {
                        self.error(
                            member.span,
                            format!("group `{}` cannot contain itself", *group.display_name),
                        );
                    }
                    (false, Some(target)) => nested[gi].push((target, member.span)),
                    (false, None) => {
                        let hint = if let Some(&i) = names.previously.get(&key) {
                            format!(" (it was renamed to `{}`)", *state.users[i].user_name)
                        } else {
                            suggest_in(member, state.groups.iter().map(|g| g.display_name.as_str()))
                        };
                        self.error(
                            member.span,
                            format!(
                                "member `{}` is neither a user nor a group in desired state{hint}",
                                member.value
                            ),
                        );
                    }
                }
            }
            self.group_settings(group, names);
        }
        let label = |i: usize| state.groups[i].display_name.value.clone();
        for cycle in find_cycles(&nested) {
            let (last, span) = cycle.closing;
            let path: Vec<Text> = cycle
                .path
                .iter()
                .map(|&i| label(i))
                .chain([label(last)])
                .collect();
            self.error(span, format!("group nesting cycle: {}", path.join(" → ")));
        }
        let max = state.config.policy.max_group_depth.value as usize;
        let depths = longest_chains(&nested);
        let mut is_nested = vec![false; state.groups.len()];
        for edges in &nested {
            for &(child, _) in edges {
                is_nested[child] = true;
            }
        }
        for (gi, chain) in depths.iter().enumerate() {
            // Report only the outermost group of an over-deep chain: its parents are deeper
            // still, so the roots are exactly the groups nobody contains.
            if chain.len() > max && !is_nested[gi] {
                let path: Vec<Text> = chain.iter().map(|&i| label(i)).collect();
                self.error(
                    state.groups[gi].display_name.span,
                    format!(
                        "group `{}` is nested {} levels deep ({}); policy.maxGroupDepth is {max}",
                        label(gi),
                        chain.len(),
                        path.join(" → ")
                    ),
                );
            }
        }
    }

    /// A group's Genesys Cloud settings: owners are users of desired state, each once; on a
    /// target that is not Genesys Cloud, a warning that the settings are not managed.
    fn group_settings(&mut self, group: &crate::model::Group, names: &Names) {
        let state = self.state;
        let mut seen = BTreeSet::new();
        for owner in group.owners.iter().flatten() {
            if !seen.insert(fold(owner)) {
                self.warning(
                    owner.span,
                    format!("owner `{}` is listed twice", owner.value),
                );
            } else if names.user(state, owner).is_none() {
                let hint = if let Some(&i) = names.previously.get(&fold(owner)) {
                    format!(" (it was renamed to `{}`)", *state.users[i].user_name)
                } else {
                    suggest_in(owner, state.users.iter().map(|u| u.user_name.as_str()))
                };
                self.error(
                    owner.span,
                    format!(
                        "owner `{}` of group `{}` is not a user in desired state{hint}",
                        owner.value, *group.display_name
                    ),
                );
            }
        }
        self.group_roles(group);
        if !self.is_genesys()
            && let Some((setting, span)) = group.first_setting()
        {
            self.warning(
                span,
                format!(
                    "`{setting}` is a Genesys Cloud group setting (as are type, visibility, \
                     rulesVisible, rolesEnabled, callsEnabled, includeOwners and owners) and \
                     the target is not Genesys Cloud: they are not managed and never sent"
                ),
            );
        }
    }

    /// The license check for the roles `user` holds through the groups it is a direct member
    /// of (listed there, or naming them in `groups:`): each must be one `license` allows.
    fn roles_through_groups(&mut self, user: &User, license: &crate::model::License) {
        let state = self.state;
        let name = fold(&user.user_name);
        let in_group = |g: &crate::model::Group| {
            g.members.iter().flatten().any(|m| fold(m) == name)
                || user
                    .groups
                    .iter()
                    .flatten()
                    .any(|n| fold(n) == fold(&g.display_name))
        };
        for group in state
            .groups
            .iter()
            .filter(|g| g.roles.is_some() && in_group(g))
        {
            for grant in group.roles.iter().flatten() {
                if license
                    .allowed_roles
                    .iter()
                    .any(|r| fold_eq(r, &grant.name))
                {
                    continue;
                }
                let list = license
                    .allowed_roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let span = user
                    .license
                    .as_ref()
                    .map_or(user.user_name.span, |l| l.span);
                self.error(
                    span,
                    format!(
                        "`{}` holds role `{}` through group `{}`, which license `{}` does not \
                         allow (allowed: {list})",
                        *user.user_name, grant.name, *group.display_name, *license.name
                    ),
                );
            }
        }
    }

    /// Checks a list of role grants, a user's or a group's: each role known and listed once,
    /// its divisions (when written) a non-empty list. Returns the grants of known roles, each
    /// once, for the checks that only one of them has.
    fn grant_list<'g>(
        &mut self,
        grants: impl IntoIterator<Item = &'g Spanned<crate::model::RoleGrant>>,
        role_index: &RoleIndex<'_>,
    ) -> Vec<&'g Spanned<crate::model::RoleGrant>> {
        let state = self.state;
        let mut seen = BTreeSet::new();
        let mut known = Vec::new();
        for grant in grants {
            if !seen.insert(fold(&grant.name)) {
                self.warning(grant.span, format!("role `{}` is listed twice", grant.name));
                continue;
            }
            if role_index.get(&grant.name).is_none() {
                let hint = suggest_in(&grant.name, state.roles.iter().map(|r| r.name.as_str()));
                self.error(grant.span, format!("unknown role `{}`{hint}", grant.name));
                continue;
            }
            if let Some(divisions) = &grant.divisions
                && (divisions.is_empty() || divisions.iter().any(|d| d.trim().is_empty()))
            {
                self.error(
                    grant.span,
                    "divisions must be a non-empty list of division names",
                );
            }
            known.push(grant);
        }
        known
    }

    /// The roles granted to a group: known roles, each once, divisions a non-empty list (as
    /// for a user); `rolesEnabled: false` beside them is a contradiction. On a target that
    /// is not Genesys Cloud, one warning for all groups (at the first) that they are not
    /// written, which stands for the group's settings too.
    fn group_roles(&mut self, group: &crate::model::Group) {
        let Some(roles) = &group.roles else { return };
        let role_index = RoleIndex::new(self.state.roles.iter().map(|r| &r.value));
        self.grant_list(roles, &role_index);
        if let Some(enabled) = &group.roles_enabled
            && !enabled.value
            && !roles.is_empty()
        {
            self.error(
                enabled.span,
                format!(
                    "group `{}` grants roles but sets rolesEnabled: false; Genesys Cloud grants \
                     roles only to groups with rolesEnabled (leave it out: the plan turns it on)",
                    *group.display_name
                ),
            );
        }
    }

    fn roles(&mut self, names: &Names) {
        let state = self.state;
        let mut edges: Vec<Vec<(usize, Span)>> = vec![Vec::new(); state.roles.len()];
        for (ri, role) in state.roles.iter().enumerate() {
            if role.name.trim().is_empty() {
                self.error(role.name.span, "role name must not be blank");
            }
            let mut seen = BTreeSet::new();
            for permission in role.permissions.iter().flatten() {
                if let Err(e) = Permission::parse(permission) {
                    self.error(
                        permission.span,
                        format!("invalid permission `{}`: {e}", permission.value),
                    );
                }
                if !seen.insert(permission.value.clone()) {
                    self.warning(
                        permission.span,
                        format!("permission `{}` is listed twice", permission.value),
                    );
                }
            }
            for parent in &role.inherits {
                match names.role(state, parent) {
                    Some(pi) if pi == ri => self.error(
                        parent.span,
                        format!("role `{}` cannot inherit itself", *role.name),
                    ),
                    Some(pi) => edges[ri].push((pi, parent.span)),
                    None => {
                        let hint = suggest_in(parent, state.roles.iter().map(|r| r.name.as_str()));
                        self.error(
                            parent.span,
                            format!(
                                "role `{}` inherits unknown role `{}`{hint}",
                                *role.name, parent.value
                            ),
                        );
                    }
                }
            }
            if let Some(reason) = &role.allow_denied_permissions
                && reason.reason.trim().chars().count() < MIN_REASON_CHARS
            {
                self.error(
                        reason.span,
                        format!("allowDeniedPermissions needs a written reason of at least {MIN_REASON_CHARS} characters"),
                    );
            }
        }
        for cycle in find_cycles(&edges) {
            let (last, span) = cycle.closing;
            let path: Vec<Text> = cycle
                .path
                .iter()
                .map(|&i| state.roles[i].name.value.clone())
                .chain([state.roles[last].name.value.clone()])
                .collect();
            self.error(
                span,
                format!("role inheritance cycle: {}", path.join(" → ")),
            );
        }
        self.denied_permissions();
    }

    /// Every role whose effective permissions (its own and inherited) overlap a denied pattern
    /// needs its own written reason: inheriting from an excused role is not an excuse.
    fn denied_permissions(&mut self) {
        let state = self.state;
        let denied: Vec<(Permission, &Spanned<String>)> = state
            .config
            .policy
            .denied_permissions
            .iter()
            .filter_map(|d| Permission::parse(d).ok().map(|p| (p, d)))
            .collect();
        let index = RoleIndex::new(state.roles.iter().map(|r| &r.value));
        for role in &state.roles {
            self.printable("role name", &role.name);
            let grants = effective_permissions(&index, &role.name).unwrap_or_default();
            let mut hits = Vec::new();
            for grant in &grants {
                let Ok(granted) = Permission::parse(&grant.permission) else {
                    continue;
                };
                if let Some((_, pattern)) = denied.iter().find(|(d, _)| granted.overlaps(d)) {
                    hits.push((grant, pattern));
                }
            }
            match (&role.allow_denied_permissions, hits.is_empty()) {
                (Some(reason), true) if !denied.is_empty() => {
                    self.warning(reason.span, format!("role `{}` holds no denied permission; allowDeniedPermissions has no effect", *role.name));
                }
                (None, false) => {
                    for (grant, pattern) in hits {
                        let span = if grant.via.len() == 1 {
                            grant.span
                        } else {
                            // Point at this role's own `inherits` entry that leads there.
                            role.inherits
                                .iter()
                                .find(|p| fold_eq(p, &grant.via[1]))
                                .map_or(role.name.span, |p| p.span)
                        };
                        let how = if grant.via.len() == 1 {
                            String::new()
                        } else {
                            format!(" (inherited via {})", grant.via.join(" → "))
                        };
                        self.error(
                            span,
                            format!(
                                "role `{}` grants `{}`{how}, which policy.deniedPermissions forbids (`{}`); remove it or add allowDeniedPermissions with a reason",
                                *role.name, grant.permission, pattern.value
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn licenses(&mut self, names: &Names) {
        let state = self.state;
        for license in &state.licenses {
            if license.name.trim().is_empty() {
                self.error(license.name.span, "license name must not be blank");
            }
            for role in &license.allowed_roles {
                if names.role(state, role).is_none() {
                    let hint = suggest_in(role, state.roles.iter().map(|r| r.name.as_str()));
                    self.error(
                        role.span,
                        format!(
                            "license `{}` allows unknown role `{}`{hint}",
                            *license.name, role.value
                        ),
                    );
                }
            }
        }
    }
}

fn suggest_in<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    crate::desired::yaml::suggest(word, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// A cycle found by [`find_cycles`]: the nodes on it from where it starts, and the edge
/// (target, span of the reference) that closes it.
struct Cycle {
    path: Vec<usize>,
    closing: (usize, Span),
}

/// Every back edge of a depth-first search over the graph, as a cycle. Iterative, so deep
/// chains cannot overflow the stack; each back edge is reported once.
fn find_cycles(edges: &[Vec<(usize, Span)>]) -> Vec<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    let mut cycles = Vec::new();
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&(target, span)) = edges[node].get(*next) {
                *next += 1;
                match mark[target] {
                    Mark::New => {
                        mark[target] = Mark::Active;
                        stack.push((target, 0));
                    }
                    Mark::Active => {
                        let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let path = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycles.push(Cycle {
                            path,
                            closing: (target, span),
                        });
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    cycles
}

/// For each node, a longest chain of nodes starting at it (itself first), ignoring edges that
/// would revisit a node on the current chain (cycles are reported separately).
fn longest_chains(edges: &[Vec<(usize, Span)>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut best: Vec<Option<Vec<usize>>> = vec![None; n];
    let mut on_path = vec![false; n];
    for start in 0..n {
        if best[start].is_some() {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        on_path[start] = true;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&(child, _)) = edges[node].get(*next) {
                *next += 1;
                if best[child].is_none() && !on_path[child] {
                    on_path[child] = true;
                    stack.push((child, 0));
                }
            } else {
                let longest_child = edges[node]
                    .iter()
                    .filter_map(|(child, _)| best[*child].as_ref())
                    .max_by_key(|chain| chain.len());
                let mut chain = vec![node];
                if let Some(rest) = longest_child {
                    chain.extend(rest);
                }
                best[node] = Some(chain);
                on_path[node] = false;
                stack.pop();
            }
        }
    }
    best.into_iter().map(Option::unwrap_or_default).collect()
}

/// Genesys Cloud region domains (docs/genesys.md §1, region hosts table).
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `https://` required, except for loopback hosts (local tests and the sandbox).
fn check_base_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not an absolute URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let hostname = if host.starts_with('[') {
        host.split(']')
            .next()
            .map_or(host, |h| h.trim_start_matches('['))
    } else {
        host.split(':').next().unwrap_or(host)
    };
    if hostname.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(hostname) => Ok(()),
        "http" => Err(format!(
            "`{url}` must use https:// (plain http is only allowed for loopback addresses)"
        )),
        other => Err(format!("`{url}` has unsupported scheme `{other}`")),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A pragmatic RFC 5321 mailbox check: `local@domain`, dot-atom local part, a domain of at
/// least two labels with a non-numeric top label.
pub(crate) fn check_email(address: &str) -> Result<(), &'static str> {
    if address.len() > 254 {
        return Err("longer than 254 characters");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("missing `@`");
    };
    if local.is_empty() || local.len() > 64 {
        return Err("the part before `@` must be 1 to 64 characters");
    }
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local.chars().all(|c| c == '.' || atext(c))
    {
        return Err("the part before `@` has characters that are not allowed");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain needs a dot, e.g. example.com");
    }
    for label in &labels {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return Err("the domain is not a valid host name");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("the domain is not a valid host name");
    }
    Ok(())
}

/// E.164 (`+` and 2–15 digits, no leading zero in the country code) or an RFC 3966 global
/// tel URI (`tel:+1-415-555-0123;ext=42`).
pub(crate) fn check_phone(number: &str) -> Result<(), &'static str> {
    const HINT: &str =
        "is neither E.164 (e.g. +14155550123) nor a tel URI (e.g. tel:+1-415-555-0123;ext=12)";
    let (digits_part, params) = if let Some(rest) = number.strip_prefix("tel:") {
        let (num, params) = rest
            .split_once(';')
            .map_or((rest, None), |(n, p)| (n, Some(p)));
        let Some(num) = num.strip_prefix('+') else {
            return Err(HINT);
        };
        if !num
            .chars()
            .all(|c| c.is_ascii_digit() || "-.()".contains(c))
        {
            return Err(HINT);
        }
        (num, params)
    } else {
        let Some(num) = number.strip_prefix('+') else {
            return Err(HINT);
        };
        if !num.chars().all(|c| c.is_ascii_digit()) {
            return Err(HINT);
        }
        (num, None)
    };
    let digits: String = digits_part.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 2 || digits.len() > 15 || digits.starts_with('0') {
        return Err(HINT);
    }
    if let Some(params) = params {
        for param in params.split(';') {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let name_ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let value_ok = name != "ext"
                || (!value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_digit() || "-.()".contains(c)));
            if !name_ok || !value_ok {
                return Err("has a malformed tel URI parameter (e.g. ;ext=12)");
            }
        }
    }
    Ok(())
}

/// `YYYY-MM-DD`, a real calendar date.
pub(crate) fn check_date(date: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "is not a date in the form YYYY-MM-DD";
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(SHAPE);
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(SHAPE);
    }
    let (Ok(year), Ok(month), Ok(day)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>())
    else {
        return Err(SHAPE);
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("has a month outside 01-12"),
    };
    if day == 0 || day > days {
        return Err("has a day that does not exist in that month");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Emails: the common real shapes pass, the common mistakes fail.
    #[test]
    fn email_shapes() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "o'neil@example.ie",
        ] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "plain",
            "a@b",
            "a@@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a b@example.com",
            "a@-x.com",
            "a@1.2.3.4",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    // Phones: E.164 and tel URIs with separators and extensions.
    #[test]
    fn phone_shapes() {
        for ok in [
            "+14155550123",
            "+442071838750",
            "tel:+1-415-555-0123",
            "tel:+1-415-555-0123;ext=42",
            "tel:+33.1.23.45.67.89",
        ] {
            assert!(check_phone(ok).is_ok(), "{ok}");
        }
        for bad in [
            "4155550123",
            "+0155550123",
            "+1 415 555 0123",
            "+1234567890123456",
            "tel:415-555-0123",
            "tel:+1415;ext=",
            "+1",
        ] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
    }

    // Dates: calendar-correct, leap years included.
    #[test]
    fn date_shapes() {
        assert!(check_date("2024-02-29").is_ok());
        assert!(check_date("2023-02-29").is_err());
        assert!(check_date("2023-13-01").is_err());
        assert!(check_date("23-01-01").is_err());
        assert!(check_date("2023-1-01").is_err());
    }

    // `watch:` settings: webhook URLs like target URLs, a secret required for webhooks, secret
    // shapes checked, each error at its path:line:col; a good section loads.
    #[test]
    fn watch_settings() {
        let lines = |config: &str| -> Vec<String> {
            match crate::desired::load_texts(&[("scimctl.yaml", config)]) {
                Ok(_) => Vec::new(),
                Err(crate::desired::LoadError::Invalid(report)) => report
                    .diagnostics()
                    .iter()
                    .map(|d| report.line(d))
                    .collect(),
                Err(e) => panic!("{e}"),
            }
        };
        let good = "watch:\n  webhooks:\n    urls: [https://hooks.example.com/scimctl, http://127.0.0.1:9000/x]\n    secret: {fromEnv: SCIMCTL_WEBHOOK_SECRET}\n  hris:\n    secret: {fromFile: hris.key}\n";
        assert_eq!(lines(good), Vec::<String>::new());
        let loaded = crate::desired::load_texts(&[("scimctl.yaml", good)]).unwrap();
        let hooks = loaded.state.config.watch.webhooks.unwrap();
        assert_eq!(hooks.urls.len(), 2);
        assert_eq!(
            hooks.secret.as_ref().map(|s| &s.value),
            Some(&SecretSource::FromEnv("SCIMCTL_WEBHOOK_SECRET".into()))
        );

        let bad = "watch:\n  webhooks:\n    urls: [http://hooks.example.com/x, 'ftp://h/x']\n  hris:\n    secret: {fromEnv: 1BAD}\n";
        assert_eq!(
            lines(bad),
            [
                "scimctl.yaml:3:5: webhooks need a `secret` ({fromEnv: VARIABLE} or {fromFile: PATH}) so that receivers can verify the events",
                "scimctl.yaml:3:12: webhook url `http://hooks.example.com/x` must use https:// (plain http is only allowed for loopback addresses)",
                "scimctl.yaml:3:40: webhook url `ftp://h/x` has unsupported scheme `ftp`",
                "scimctl.yaml:5:13: hris secret: `1BAD` is not a valid environment variable name",
            ]
        );
        let empty = "watch:\n  webhooks: {urls: [], secret: {fromEnv: X}}\n";
        assert_eq!(
            lines(empty),
            [
                "scimctl.yaml:2:13: webhooks need at least one URL in `urls`; leave `webhooks` out to send none"
            ]
        );
        assert_eq!(
            lines("watch:\n  hris: {}\n"),
            ["scimctl.yaml:2:9: missing required key `secret`"]
        );
        let literal = "watch:\n  hris: {secret: hunter2-literal}\n";
        let out = lines(literal);
        assert!(
            out[0].contains("a literal secret is not allowed"),
            "{out:?}"
        );
        assert!(!out[0].contains("hunter2"), "{out:?}");
    }

    // URLs: https everywhere, http only on loopback.
    #[test]
    fn base_urls() {
        assert!(check_base_url("https://idp.example.com/scim/v2").is_ok());
        assert!(check_base_url("http://127.0.0.1:8999/v2").is_ok());
        assert!(check_base_url("http://localhost/v2").is_ok());
        assert!(check_base_url("http://[::1]:80/v2").is_ok());
        assert!(check_base_url("http://idp.example.com/scim").is_err());
        assert!(check_base_url("http://127.0.0.1.example.com/").is_err());
        assert!(check_base_url("ftp://x.example").is_err());
        assert!(check_base_url("idp.example.com").is_err());
    }

    // Cycle detection reports each cycle once and terminates on self-contained loops.
    #[test]
    fn cycles_and_chains() {
        let s = Span::UNKNOWN;
        let edges = vec![vec![(1, s)], vec![(2, s)], vec![(0, s)], vec![(0, s)]];
        let cycles = find_cycles(&edges);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].path, [0, 1, 2]);
        let dag = vec![vec![(1, s), (2, s)], vec![(2, s)], vec![], vec![(0, s)]];
        let chains = longest_chains(&dag);
        assert_eq!(chains[3], [3, 0, 1, 2]);
        assert_eq!(chains[2], [2]);
    }

    mod checks {
        use std::path::{Path, PathBuf};

        use super::super::*;
        use crate::desired::document::parse_resource_file;
        use crate::desired::yaml::Limits;
        use crate::model::{FileId, SourceMap};

        /// An environment where only the named variables are set and only the named files exist.
        struct FakeEnv {
            vars: Vec<&'static str>,
            files: Vec<PathBuf>,
        }

        impl Environment for FakeEnv {
            fn var_is_set(&self, name: &str) -> bool {
                self.vars.contains(&name)
            }
            fn file_readable(&self, path: &Path) -> Result<(), String> {
                if self.files.iter().any(|f| f == path) {
                    Ok(())
                } else {
                    Err("no such file".into())
                }
            }
        }

        fn check(yaml: &str, config: Config, env: &FakeEnv) -> Vec<String> {
            let mut sources = SourceMap::new();
            let id = sources.add(PathBuf::from("org/users/x.yaml"));
            assert_eq!(id, FileId(0));
            let parsed = parse_resource_file(id, yaml.as_bytes(), Limits::DEFAULT);
            assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
            let collected = Collected {
                users: parsed.users,
                groups: parsed.groups,
                roles: parsed.roles,
                licenses: parsed.licenses,
                config,
                target_span: None,
            };
            let mut out: Vec<String> = validate(&collected, &sources, env)
                .into_iter()
                .map(|d| {
                    format!(
                        "{}:{} {:?}: {}",
                        d.span.line, d.span.col, d.severity, d.message
                    )
                })
                .collect();
            out.sort();
            out
        }

        fn no_env() -> FakeEnv {
            FakeEnv {
                vars: Vec::new(),
                files: Vec::new(),
            }
        }

        fn denying(pattern: &str) -> Config {
            Config {
                policy: crate::model::Policy {
                    denied_permissions: vec![Spanned::unspanned(pattern.to_owned())],
                    ..crate::model::Policy::default()
                },
                ..Config::default()
            }
        }

        // Inheriting a denied permission needs the inheriting role's own reason; the excused
        // parent passes, and the error points at the child's `inherits` entry.
        #[test]
        fn denied_permissions_through_inheritance() {
            let yaml = "roles:\n  - name: Admin\n    permissions: ['*']\n    allowDeniedPermissions: {reason: 'break-glass access, reviewed quarterly'}\n  - name: Deputy\n    permissions: [directory:user:view]\n    inherits: [Admin]\n";
            let out = check(yaml, denying("authorization:*:*"), &no_env());
            assert_eq!(out.len(), 1, "{out:?}");
            assert!(
                out[0].starts_with(
                    "7:16 Error: role `Deputy` grants `*` (inherited via Deputy → Admin)"
                ),
                "{out:?}"
            );
        }

        // A reason that is not one, and an override that excuses nothing, are both reported.
        #[test]
        fn override_reason_quality() {
            let yaml = "roles:\n  - name: Admin\n    permissions: ['*']\n    allowDeniedPermissions: {reason: ok}\n  - name: Viewer\n    permissions: [routing:queue:view]\n    allowDeniedPermissions: {reason: just in case it is needed}\n";
            let out = check(yaml, denying("authorization:*:*"), &no_env());
            assert_eq!(out.len(), 2, "{out:?}");
            assert!(
                out[0].contains("needs a written reason of at least 10 characters"),
                "{out:?}"
            );
            assert!(
                out[1].contains("Warning: role `Viewer` holds no denied permission"),
                "{out:?}"
            );
        }

        // Password sources resolve against the environment; files relative to the YAML file.
        #[test]
        fn password_sources_resolve() {
            let yaml = "users:\n  - userName: a@x.example\n    password: {fromEnv: SET_VAR}\n  - userName: b@x.example\n    password: {fromEnv: UNSET_VAR}\n  - userName: c@x.example\n    password: {fromFile: ../secrets/c.txt}\n  - userName: d@x.example\n    password: {fromFile: d.txt}\n  - userName: e@x.example\n    password: {fromEnv: 'BAD NAME'}\n";
            let env = FakeEnv {
                vars: vec!["SET_VAR"],
                files: vec![PathBuf::from("org/users/../secrets/c.txt")],
            };
            let out = check(yaml, Config::default(), &env);
            assert_eq!(
                out,
                [
                    "11:15 Error: `BAD NAME` is not a valid environment variable name",
                    "5:15 Warning: password environment variable `UNSET_VAR` is not set (or is empty): creating this user will need it",
                    "9:15 Error: password file `org/users/d.txt` is not readable: no such file",
                ]
            );
        }

        // On a Genesys target userName must be an email and displayName is required.
        #[test]
        fn genesys_user_rules() {
            let yaml = "users:\n  - userName: agent007\n";
            let config = Config {
                target: Some(crate::model::Target::Genesys {
                    region: Some("mypurecloud.com".into()),
                    client_id: crate::model::ValueSource::Literal("id".into()),
                    client_secret: crate::model::SecretSource::FromEnv("SECRET".into()),
                    api_url: None,
                    login_url: None,
                    requests_per_minute: None,
                }),
                ..Config::default()
            };
            let out = check(yaml, config, &no_env());
            assert_eq!(out.len(), 2, "{out:?}");
            assert!(
                out[0].contains("must be an email address on Genesys Cloud"),
                "{out:?}"
            );
            assert!(out[1].contains("needs a displayName"), "{out:?}");
        }

        // On a Genesys target the email and phone types Genesys refuses are errors at the
        // value's position; the same YAML is fine for a plain SCIM target.
        #[test]
        fn genesys_contact_types() {
            let yaml = "users:\n  - userName: a@x.example\n    displayName: A\n    emails:\n      - {value: a@home.example, type: home}\n      - {value: a@work.example, type: work}\n      - {value: a@untyped.example}\n    phoneNumbers:\n      - {value: '+15550100', type: fax}\n      - {value: '+15550101', type: pager}\n      - {value: '+15550102', type: work4}\n      - {value: '+15550103', type: ringcentral}\n";
            let config = Config {
                target: Some(crate::model::Target::Genesys {
                    region: Some("mypurecloud.com".into()),
                    client_id: crate::model::ValueSource::Literal("id".into()),
                    client_secret: crate::model::SecretSource::FromEnv("SECRET".into()),
                    api_url: None,
                    login_url: None,
                    requests_per_minute: None,
                }),
                ..Config::default()
            };
            let out = check(yaml, config, &no_env());
            assert_eq!(out.len(), 4, "{out:?}");
            for expected in [
                "5:9 Error: Genesys Cloud refuses email type `home`",
                "7:9 Error: Genesys Cloud refuses an email without a type: add `type: work`",
                "9:9 Error: Genesys Cloud refuses phone type `fax`",
                "10:9 Error: Genesys Cloud refuses phone type `pager`",
            ] {
                assert!(
                    out.iter().any(|l| l.starts_with(expected)),
                    "{expected}: {out:?}"
                );
            }
            assert!(check(yaml, Config::default(), &no_env()).is_empty());
        }

        // Group owners are users of desired state (path:line:col at the owner, with a hint
        // for a renamed one), each once; the settings are fine on a Genesys target and a
        // warning at the first one elsewhere, whose YAML is otherwise the same.
        #[test]
        fn group_settings_and_owners() {
            let yaml = "users:\n  - userName: a@x.example\n    displayName: A\n    previously: [old@x.example]\ngroups:\n  - displayName: G\n    visibility: members\n    rolesEnabled: true\n    owners: [a@x.example, A@x.example, old@x.example, nobody@x.example]\n";
            let genesys = Config {
                target: Some(crate::model::Target::Genesys {
                    region: Some("mypurecloud.com".into()),
                    client_id: crate::model::ValueSource::Literal("id".into()),
                    client_secret: crate::model::SecretSource::FromEnv("SECRET".into()),
                    api_url: None,
                    login_url: None,
                    requests_per_minute: None,
                }),
                ..Config::default()
            };
            let out = check(yaml, genesys, &no_env());
            assert_eq!(
                out,
                [
                    "9:27 Warning: owner `A@x.example` is listed twice",
                    "9:40 Error: owner `old@x.example` of group `G` is not a user in desired state (it was renamed to `a@x.example`)",
                    "9:55 Error: owner `nobody@x.example` of group `G` is not a user in desired state",
                ],
            );
            let plain = check(yaml, Config::default(), &no_env());
            assert_eq!(plain.len(), 4, "{plain:?}");
            assert!(
                plain[0].starts_with("7:17 Warning: `visibility` is a Genesys Cloud group setting"),
                "{plain:?}"
            );
        }

        // Renames: a previously-name may not be another user's current name, and a dangling
        // reference to an old name says what it became.
        #[test]
        fn renames_are_unambiguous() {
            let yaml = "users:\n  - userName: new@x.example\n    previously: [old@x.example, b@x.example]\n  - userName: b@x.example\n    manager: old@x.example\n";
            let out = check(yaml, Config::default(), &no_env());
            assert_eq!(out.len(), 2, "{out:?}");
            assert!(out[0].contains("`b@x.example` is listed in previously but is the current userName of another user"), "{out:?}");
            assert!(out[1].contains("manager `old@x.example` is not a user in desired state (it was renamed to `new@x.example`)"), "{out:?}");
        }
    }
}
