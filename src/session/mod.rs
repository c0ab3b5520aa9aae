//! The one reconcile pipeline: load the desired state (overrides folded in) → read the
//! tenant → plan (fresh, saved, or one user's termination) → evaluate the safety rules against
//! what was read → apply through the engine with the audit recorder.
//!
//! Every command that plans or writes goes through here: `plan`, `apply`, `apply --plan`,
//! `watch` reconciles and the HRIS termination webhook. They are adapters that turn flags or
//! events into calls and the results into output, exit codes or HTTP answers; none of them
//! decides on its own what may be written. The decision is a [`Vetted`] plan, which only
//! [`decide`] makes and which is the only plan the engine takes.

pub mod lock;
mod saved;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::apply::engine::{self, Input, Observer, OpReport, Outcome, Report, Settings};
use crate::desired::{self, DesiredState};
use crate::error::Error;
use crate::model::capabilities::TargetCapabilities;
use crate::overrides::Overrides;
use crate::plan::saved::PlanDocument;
use crate::plan::{Kind, Plan, PlanOptions, Vetted, Warning};
use crate::scim::wire::attribute_support;
use crate::scim::{ScimClient, ScimError, ScimRead, Snapshot};

pub use saved::Refusal;

/// A desired state as loaded, with the local overrides (HRIS terminations) folded in.
#[derive(Debug)]
pub struct Loaded {
    /// The state, terminated users made inactive.
    pub state: DesiredState,
    /// The hash of the files as read (folding overrides in leaves it alone, so a plan saved
    /// before or after a termination is accepted or refused for the files alone).
    pub hash: String,
    /// The loader's warnings.
    pub warnings: desired::Report,
    /// The overrides file that was read.
    pub overrides_path: PathBuf,
    /// The overrides still open against this state.
    pub overrides: Overrides,
    /// Users whose termination the YAML has caught up with (inactive, or not listed).
    pub settled: Vec<String>,
    /// The overrides' warnings, for the plan to carry.
    pub notices: Vec<Warning>,
}

/// Loads `dir` and folds in the overrides file at `overrides_path`.
pub fn load(dir: &Path, overrides_path: &Path) -> Result<Loaded, Error> {
    let loaded = desired::load_dir_with(dir, &desired::SecretsDeferred, desired::Limits::DEFAULT)?;
    let mut overrides = Overrides::load(overrides_path)?;
    let mut state = loaded.state;
    let hash = crate::plan::saved::desired_hash_of(dir, &state.sources);
    let settled = overrides.prune_settled(&state);
    let notices = overrides
        .fold(&mut state)
        .into_iter()
        .map(|d| Warning {
            message: d.message,
            source: Some(crate::plan::Source::at(&state.sources, d.span)),
        })
        .collect();
    Ok(Loaded {
        state,
        hash,
        warnings: loaded.warnings,
        overrides_path: overrides_path.to_path_buf(),
        overrides,
        settled,
        notices,
    })
}

/// The password fingerprints of `target` in `path`, and which users' `fromEnv`/`fromFile`
/// passwords changed at source since scimctl last set them (issue 19): the set goes into
/// [`PlanOptions::rotate_passwords`], the warnings (unreadable sources) into the plan.
pub fn passwords(
    desired: &DesiredState,
    path: &Path,
    target: &str,
    cache: &mut crate::apply::fingerprint::VerifyCache,
) -> Result<
    (
        crate::apply::fingerprint::Fingerprints,
        crate::apply::rotation::Check,
    ),
    Error,
> {
    let store =
        crate::apply::fingerprint::Fingerprints::load(path, target).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let check = crate::apply::rotation::check(desired, &store, cache);
    Ok((store, check))
}

/// Refuses a plan that creates a user whose `fromEnv`/`fromFile` password cannot be read
/// now: every such user, with the variable or file (never a value).
pub fn creatable(desired: &DesiredState, plan: &Plan) -> Result<(), Error> {
    let missing = crate::apply::rotation::unresolved_creates(desired, plan);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{} user(s) the plan creates have no readable password:\n  {}",
        missing.len(),
        missing.join("\n  ")
    )))
}

/// What one read of the tenant gives.
#[derive(Debug)]
pub struct LiveRead {
    /// What the target stores and how it behaves (its `/Schemas`, its
    /// `/ServiceProviderConfig` and its family), as the planner is to assume it.
    pub capabilities: TargetCapabilities,
    /// Every user and group (and, on Genesys Cloud, roles, divisions and the grants the
    /// desired state needs).
    pub snapshot: Snapshot,
    /// The userName of the account the credentials belong to, when the server says
    /// (`GET /Me`): the actor guard keeps it.
    pub runs_as: Option<String>,
}

/// Reads the target's capabilities, schemas and whole tenant, and, for a plan (`desired`
/// given), who the credentials belong to (`GET /Me`) and the role grants of the users whose
/// desired roles are limited to divisions (Genesys Cloud); without `desired` (an export or a
/// live explain) on Genesys Cloud, every group's role grants and the org's licenses.
pub async fn read(
    client: &ScimClient,
    desired: Option<&DesiredState>,
) -> Result<LiveRead, ScimError> {
    let capabilities = client.capabilities().await?;
    // Who the credentials belong to matters only to a plan (the actor guard).
    let runs_as = async {
        match desired {
            Some(_) => client.runs_as().await,
            None => None,
        }
    };
    let (schemas, snapshot, runs_as) = tokio::join!(client.schemas(), client.snapshot(), runs_as);
    let mut snapshot = snapshot?;
    if desired.is_none() && client.dialect() == crate::scim::Dialect::Genesys {
        // An export or a live explain: the roles granted to every group (one read each).
        let ids: Vec<String> = snapshot
            .groups
            .iter()
            .filter_map(|g| crate::model::tenant::Resource::id(g))
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            snapshot.group_grants = Some(client.read_group_grants(&ids).await?);
        }
        // And the org's licenses: export writes them, explain shows who holds which.
        snapshot.licenses = Some(client.read_licenses().await?);
    }
    if let Some(desired) = desired {
        read_grants(client, desired, &mut snapshot).await?;
        if client.dialect() == crate::scim::Dialect::Genesys {
            read_deleted_users(client, desired, &mut snapshot).await?;
            read_licenses(client, desired, &mut snapshot).await?;
        }
    }
    Ok(LiveRead {
        capabilities: client
            .dialect()
            .target_capabilities(&capabilities, attribute_support(schemas?.as_deref())),
        snapshot,
        runs_as,
    })
}

/// What a change to one `user` (an HRIS termination, a pushed password) is decided against:
/// that one user as the target has it now
/// (one lookup, so the answer comes within a second on any tenant), or the whole tenant when
/// the user holds a `policy.adminRoles` role, so that the last-admin rule counts the other
/// holders instead of refusing for want of them. `None`: the user is not on the target.
pub async fn read_one_user(
    client: &ScimClient,
    desired: &DesiredState,
    user: &str,
) -> Result<Option<LiveRead>, ScimError> {
    let Some(found) = client.find_by_key::<crate::scim::wire::User>(user).await? else {
        return Ok(None);
    };
    let admin = &desired.config.policy.admin_roles;
    let holds_admin = found
        .roles
        .iter()
        .any(|r| admin.iter().any(|a| a.value.eq_ignore_ascii_case(&r.value)));
    if holds_admin {
        return read(client, Some(desired)).await.map(Some);
    }
    let one = crate::model::tenant::Live::from_resource(&found).map_err(|e| ScimError::Decode {
        method: "GET".into(),
        path: "Users".into(),
        message: e.to_string(),
    })?;
    let capabilities = client.capabilities().await?;
    let (schemas, runs_as) = tokio::join!(client.schemas(), client.runs_as());
    Ok(Some(LiveRead {
        capabilities: client
            .dialect()
            .target_capabilities(&capabilities, attribute_support(schemas?.as_deref())),
        snapshot: Snapshot {
            users: vec![one],
            ..Snapshot::default()
        },
        runs_as,
    }))
}

/// Reads the direct role grants of the live users whose desired roles are limited to
/// divisions (Genesys Cloud; one request per such user), and those of the live groups when
/// desired groups declare roles or `policy.adminRoles` is set (one request per group), into
/// `snapshot`.
pub async fn read_grants<C: ScimRead>(
    client: &C,
    desired: &DesiredState,
    snapshot: &mut Snapshot,
) -> Result<(), ScimError> {
    let ids = crate::plan::grants::grant_subjects(desired, snapshot);
    if !ids.is_empty() {
        snapshot.grants = Some(client.read_grants(&ids).await?);
    }
    // Role grants made to groups (`PC_GROUP`): when YAML gives groups roles, or the
    // last-admin guard must count admins through groups.
    let groups = crate::plan::grants::group_grant_subjects(desired, snapshot);
    if !groups.is_empty() {
        snapshot.group_grants = Some(client.read_group_grants(&groups).await?);
    }
    Ok(())
}

/// Reads the org's license definitions and who holds which (Genesys Cloud), into
/// `snapshot`, when and only when some YAML license maps a definition (`genesysLicense`).
pub async fn read_licenses<C: ScimRead>(
    client: &C,
    desired: &DesiredState,
    snapshot: &mut Snapshot,
) -> Result<(), ScimError> {
    if crate::plan::licenses::mapped(desired) {
        snapshot.licenses = Some(client.read_licenses().await?);
    }
    Ok(())
}

/// Reads the users in the `deleted` state (Genesys Cloud) that desired users with no live
/// match would collide with (one search per batch of their userNames), into `snapshot`: the
/// planner restores them instead of creating (docs/genesys.md, "Deleted users").
pub async fn read_deleted_users<C: ScimRead>(
    client: &C,
    desired: &DesiredState,
    snapshot: &mut Snapshot,
) -> Result<(), ScimError> {
    let emails = crate::plan::unmatched_users(desired, snapshot);
    if !emails.is_empty() {
        snapshot.deleted_users = client.find_deleted_users(&emails).await?;
    }
    Ok(())
}

/// SHA-256 over what a plan of `desired` is computed from on the tenant's side: the JSON, as
/// the server sent it, of each user and group in view of it (owned, named or protected:
/// `plan::View`), the roles, divisions and grants. Equal hashes mean the tenant
/// is as it was for this desired state; a saved plan records it
/// ([`PlanDocument::live_hash`]).
///
/// Objects out of view are left out so that another team's or another provisioner's writes
/// elsewhere in a shared tenant do not make every saved plan "moved". That only widens the
/// strict path, which carries out a fresh plan only when it is identical to the saved one:
/// if something out of view did change the fresh plan, the difference is refused, never
/// merged.
#[must_use]
pub fn live_hash(snapshot: &Snapshot, desired: &DesiredState) -> String {
    use crate::model::tenant::Resource as _;
    let mut hasher = Sha256::new();
    let mut part = |tag: &str, bytes: &[u8]| {
        hasher.update(tag.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    let view = crate::plan::View::new(desired);
    let seen =
        |kind: Kind, key: &str, external_id: Option<&str>| view.contains(kind, key, external_id);
    for u in &snapshot.users {
        if seen(Kind::User, u.natural_key(), u.external_id()) {
            part("u", u.raw().as_bytes());
        }
    }
    for g in &snapshot.groups {
        if seen(Kind::Group, g.natural_key(), g.external_id()) {
            part("g", g.raw().as_bytes());
        }
    }
    part(
        "r",
        &serde_json::to_vec(&snapshot.roles).unwrap_or_default(),
    );
    part(
        "d",
        &serde_json::to_vec(&snapshot.divisions).unwrap_or_default(),
    );
    let grants = snapshot.grants.as_ref().map(|g| {
        let mut sorted: Vec<_> = g.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        sorted
    });
    part("G", &serde_json::to_vec(&grants).unwrap_or_default());
    if let Some(licenses) = &snapshot.licenses {
        let mut held: Vec<_> = licenses.held.iter().collect();
        held.sort();
        let ids: Vec<&str> = licenses.definitions.iter().map(|d| d.id.as_str()).collect();
        part("L", &serde_json::to_vec(&(ids, held)).unwrap_or_default());
    }
    // Only when read, so that the hash of a tenant without group grants is as it was.
    if let Some(g) = &snapshot.group_grants {
        let mut sorted: Vec<_> = g.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        part("P", &serde_json::to_vec(&sorted).unwrap_or_default());
    }
    if !snapshot.deleted_users.is_empty() {
        part(
            "D",
            &serde_json::to_vec(&snapshot.deleted_users).unwrap_or_default(),
        );
    }
    let digest = hasher.finalize();
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Where the plan to carry out comes from.
#[derive(Clone, Copy, Debug)]
pub enum PlanSource<'a> {
    /// Planned now from the desired state and the tenant.
    Fresh,
    /// A plan saved by `plan --out`: it only selects, among what a fresh plan would do, what
    /// may be done (see the `session::saved` module).
    Saved {
        /// The saved plan.
        plan: &'a PlanDocument,
        /// The users the overrides file terminated (folded into the desired state, but not
        /// covered by the plan's `desiredHash`).
        terminated: &'a [String],
    },
    /// An HRIS termination: only the deactivation of this user (by userName).
    Termination(&'a str),
    /// The password-sync endpoint: only setting this user's password (by userName) to the
    /// one it received. The plan row carries no value; the engine takes it from
    /// [`Decision::pushed`].
    Password {
        /// The user, as the request named it.
        user: &'a str,
        /// The password it received.
        password: &'a crate::scim::Secret,
    },
}

/// What may be written, and how it was decided.
#[derive(Debug)]
pub struct Decision {
    /// The plan, its safety rules evaluated against the tenant as read.
    pub plan: Vetted,
    /// Changes of a saved plan that cannot be carried out because the object changed on the
    /// target in a way that overlaps them: reported as failed operations.
    pub failed: Vec<(crate::plan::Change, String)>,
    /// Changes of a saved plan that are no longer needed (the tenant already has them, or a
    /// fresh plan no longer proposes them): reported, not carried out.
    pub dropped: Vec<String>,
    /// The options the plan was vetted with, the actors added: the engine's re-plans after a
    /// conflict use these.
    pub options: PlanOptions,
    /// A password received by the password-sync endpoint, for the one user whose rotation
    /// the plan holds ([`PlanSource::Password`]); never serialised or printed.
    pub pushed: Option<crate::apply::engine::Pushed>,
}

/// Decides what may be written: plans afresh from `desired` and `live`, then, for a saved
/// plan or a termination, keeps only what the source asks for; and evaluates every safety
/// rule on the result. Pure: no I/O, no clock.
pub fn decide(
    desired: &DesiredState,
    live: &LiveRead,
    source: PlanSource<'_>,
    options: &PlanOptions,
) -> Result<Decision, DecideError> {
    let mut options = with_actors(desired, live, options);
    let mut pushed = None;
    let (plan, failed, dropped) = match source {
        PlanSource::Fresh => (
            crate::plan::plan(desired, &live.snapshot, &options)?,
            Vec::new(),
            Vec::new(),
        ),
        PlanSource::Saved {
            plan: doc,
            terminated,
        } => saved_plan(desired, live, doc, terminated, &options)?,
        PlanSource::Termination(user) => (
            termination(crate::plan::plan(desired, &live.snapshot, &options)?, user),
            Vec::new(),
            Vec::new(),
        ),
        PlanSource::Password { user, password } => {
            // Planned like a rotation from a changed source, so the planner's rules hold as
            // they do there (protected users, targets that refuse password changes); then
            // only that row is kept.
            options.rotate_passwords = std::iter::once(user.to_lowercase()).collect();
            let fresh = crate::plan::plan(desired, &live.snapshot, &options)?;
            pushed = Some(crate::apply::engine::Pushed {
                user_name: user.to_owned(),
                password: password.clone(),
            });
            (only_password(fresh, user), Vec::new(), Vec::new())
        }
    };
    let plan = Vetted::new(desired, &live.snapshot, plan, &options)?;
    Ok(Decision {
        plan,
        failed,
        dropped,
        options,
        pushed,
    })
}

/// The options every writer plans with: what the target stores, as read, and `--allow-deletes`.
/// The actors are added by [`decide`] itself.
#[must_use]
pub fn options(live: &LiveRead, allow_deletes: Option<usize>) -> PlanOptions {
    PlanOptions {
        target: live.capabilities.clone(),
        allow_deletes,
        actors: Vec::new(),
        rotate_passwords: std::collections::BTreeSet::new(),
    }
}

/// `options` with the account scimctl runs as added to its actors: `safety.runsAs` and what
/// the target said (`GET /Me`). Here, so that no writer can leave the actor guard out.
fn with_actors(desired: &DesiredState, live: &LiveRead, options: &PlanOptions) -> PlanOptions {
    let mut options = options.clone();
    let declared = desired.config.safety.runs_as.as_ref().map(|r| &r.value);
    for name in declared.into_iter().chain(&live.runs_as) {
        if !options.actors.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            options.actors.push(name.clone());
        }
    }
    options
}

/// A saved plan against the tenant as read now. When some object's match has become
/// ambiguous since the plan (a third party created a twin, say), only the saved changes that
/// involve it fail, with the reason; the rest is authorized against a plan made around it.
type Authorized = (Plan, Vec<(crate::plan::Change, String)>, Vec<String>);

fn saved_plan(
    desired: &DesiredState,
    live: &LiveRead,
    doc: &PlanDocument,
    terminated: &[String],
    options: &PlanOptions,
) -> Result<Authorized, DecideError> {
    let hash = live_hash(&live.snapshot, desired);
    let partial = match crate::plan::plan(desired, &live.snapshot, options) {
        Ok(fresh) => {
            let a = saved::authorize(doc, &fresh, &live.snapshot, &hash, terminated)?;
            return Ok((a.plan, a.failed, a.dropped));
        }
        Err(crate::plan::PlanError::Ambiguous(_)) => {
            crate::plan::plan_partial(desired, &live.snapshot, options)?
        }
        Err(e) => return Err(e.into()),
    };
    let held = |c: &crate::plan::Change| {
        partial
            .held
            .iter()
            .find(|h| h.kind == c.kind && h.key.eq_ignore_ascii_case(&c.key))
    };
    let mut failed = Vec::new();
    let mut rest = doc.clone();
    rest.changes.retain(|c| match held(c) {
        Some(h) => {
            failed.push((
                c.clone(),
                format!("cannot be matched unambiguously now: {}", h.why),
            ));
            false
        }
        None => true,
    });
    // The tenant moved (the plan was made when every match was clear), so the saved changes
    // are merged against the partial plan, never taken as they were saved.
    rest.live_hash = None;
    let a = saved::authorize(&rest, &partial.plan, &live.snapshot, &hash, terminated)?;
    failed.extend(a.failed);
    Ok((a.plan, failed, a.dropped))
}

/// Of a fresh plan, only what deactivates `user`: its `active: false` edit and nothing else
/// (no manager, group or role edit, whose references may not resolve yet).
fn termination(fresh: Plan, user: &str) -> Plan {
    use crate::plan::{Attr, Edit};
    let changes = fresh
        .changes
        .into_iter()
        .filter(|c| c.kind == Kind::User && c.key.eq_ignore_ascii_case(user))
        .filter_map(|mut c| {
            c.rows_mut().retain(|d| d.attribute == "active");
            c.edits.retain(|e| {
                matches!(e, Edit::Set { attr: Attr::Active, value } if value.as_bool() == Some(false))
            });
            (!c.edits.is_empty()).then_some(c)
        })
        .collect();
    Plan {
        changes,
        warnings: fresh.warnings,
        unchanged: 0,
    }
}

/// Of a fresh plan, only the password of `user`: its `Edit::Password` and nothing else.
/// A user the plan would create or restore is left out (those get their password from the
/// desired state, or keep their old one; the endpoint sets passwords of users that exist).
fn only_password(fresh: Plan, user: &str) -> Plan {
    use crate::plan::{Action, Edit};
    let changes = fresh
        .changes
        .into_iter()
        .filter(|c| {
            // Users that exist and stay: not one the plan creates or restores.
            c.kind == Kind::User
                && matches!(c.action, Action::Patch | Action::Deactivate)
                && c.key.eq_ignore_ascii_case(user)
        })
        .filter_map(|mut c| {
            c.rows_mut().retain(|d| d.attribute == "password");
            c.edits.retain(|e| matches!(e, Edit::Password));
            // What is left is a patch, whatever the whole change was (a deactivation, say):
            // the audit log and the summary must not call it more than it is.
            c.action = Action::Patch;
            (!c.edits.is_empty()).then_some(c)
        })
        .collect();
    Plan {
        changes,
        warnings: fresh.warnings,
        unchanged: 0,
    }
}

/// Why no decision could be made.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A saved plan is not one this desired state and tenant could have produced.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl From<DecideError> for Error {
    fn from(e: DecideError) -> Error {
        match e {
            DecideError::Plan(e) => Error::Plan(e),
            DecideError::Refused(r) => Error::Refused(r.to_string()),
        }
    }
}

/// Carries out `decision` on `client`: the operations a saved plan could not keep are
/// reported failed first, then the engine applies the vetted plan. Every operation reaches
/// `observer` (audit log, progress, metrics) once.
pub async fn execute<C: ScimRead + crate::scim::ScimWrite>(
    client: &C,
    decision: &Decision,
    desired: &DesiredState,
    live: &LiveRead,
    observer: &mut dyn Observer,
) -> Report {
    let mut before = Vec::with_capacity(decision.failed.len());
    for (change, why) in &decision.failed {
        let op = OpReport {
            action: change.action,
            kind: change.kind,
            key: change.key.clone(),
            id: change.id.clone(),
            before_version: change.version.clone(),
            after_version: None,
            outcome: Outcome::Failed,
            detail: Some(why.clone()),
        };
        if let Err(e) = observer.finished(&op) {
            tracing::error!(error = %e, "recording a failed operation");
        }
        before.push(op);
    }
    let mut settings = Settings {
        etag: live.capabilities.etag,
        ..Settings::default()
    };
    if let Some(n) = client.bulk_operations().await {
        // Enough operations in flight to fill a Bulk request.
        settings.in_flight = settings.in_flight.max(n);
    }
    let input = Input {
        plan: &decision.plan,
        desired,
        options: &decision.options,
        snapshot: Some(&live.snapshot),
        pushed: decision.pushed.as_ref(),
    };
    let mut report = engine::run(client, &input, &settings, observer).await;
    before.append(&mut report.ops);
    report.ops = before;
    report
}
