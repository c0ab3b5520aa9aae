//! Which passwords a plan rotates (issue 19), worked out outside the planner, which does no
//! I/O: the `fromEnv`/`fromFile` sources of the users that have a fingerprint are resolved
//! and verified against it ([`check`]); the userNames whose source no longer verifies go
//! into [`crate::plan::PlanOptions::rotate_passwords`].
//!
//! Sources are read only for users that need them: those with a fingerprint (to compare),
//! those a plan creates ([`unresolved_creates`]), and, with `--adopt-passwords`, the live
//! users without a fingerprint ([`adoptable`]). A pull-request plan that creates nobody
//! therefore needs no initial-password secret (issue 20). `generate` passwords are never
//! resolved here and never rotated.

use std::collections::BTreeSet;

use super::fingerprint::{self, Candidate, Fingerprints, VerifyCache};
use super::password;
use crate::desired::DesiredState;
use crate::model::{PasswordSource, Spanned, User};
use crate::plan::{Action, Kind, Plan, Source, Warning};
use crate::scim::Secret;

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Check {
    /// The userNames (lower-cased) whose source no longer matches its fingerprint.
    pub rotate: BTreeSet<String>,
    /// Users with a fingerprint whose source could not be read: not checked, with why
    /// (the variable or file, never a value).
    pub warnings: Vec<Warning>,
}

/// The users whose password comes from `fromEnv`/`fromFile`, with their source.
fn sourced(
    desired: &DesiredState,
) -> impl Iterator<Item = (&Spanned<User>, &Spanned<PasswordSource>)> {
    desired.users.iter().filter_map(|u| {
        u.value
            .password
            .as_ref()
            .filter(|p| p.value != PasswordSource::Generate)
            .map(|p| (u, p))
    })
}

fn resolve(
    desired: &DesiredState,
    source: &Spanned<PasswordSource>,
) -> Result<Secret, password::PasswordError> {
    let file = desired.sources.path(source.span.file);
    password::resolve(&source.value, file, desired.secret_dirs())
}

/// Resolves the source of every user that has a fingerprint in `store` and verifies it, in
/// parallel on every core (Argon2id at OWASP parameters: about 30 ms each), skipping the
/// pairs `cache` has already seen match.
#[must_use]
pub fn check(desired: &DesiredState, store: &Fingerprints, cache: &mut VerifyCache) -> Check {
    let (candidates, warnings) = candidates(desired, store);
    Check {
        rotate: cache.changed_at_source(candidates, fingerprint::threads()),
        warnings,
    }
}

/// What [`check`] verifies: every user with a fingerprint in `store` whose source resolves
/// now, and a warning for each whose source cannot be read (the variable or file, never a
/// value). Cheap: the Argon2 work is in the verification.
#[must_use]
pub fn candidates(desired: &DesiredState, store: &Fingerprints) -> (Vec<Candidate>, Vec<Warning>) {
    let mut candidates = Vec::new();
    let mut warnings = Vec::new();
    for (user, source) in sourced(desired) {
        let name = &user.value.user_name.value;
        let Some(phc) = store.get(name) else {
            continue;
        };
        match resolve(desired, source) {
            Ok(password) => candidates.push(Candidate {
                user_name: name.to_string(),
                password,
                phc: phc.to_owned(),
            }),
            Err(e) => warnings.push(Warning {
                message: format!(
                    "user {name:?}: its password source cannot be read ({e}), so whether it \
                     changed is not checked"
                ),
                source: Some(Source::at(&desired.sources, source.span)),
            }),
        }
    }
    (candidates, warnings)
}

/// The userNames (lower-cased) `plan` creates.
fn creates(plan: &Plan) -> BTreeSet<String> {
    plan.changes
        .iter()
        .filter(|c| c.kind == Kind::User && c.action == Action::Create && c.blocked.is_none())
        .map(|c| c.key.to_lowercase())
        .collect()
}

/// Why a user `plan` creates cannot get its `fromEnv`/`fromFile` password: one line per
/// such user (its YAML place, the variable or file, never a value). Such a plan cannot be
/// carried out; a source no created user needs is not read at all.
#[must_use]
pub fn unresolved_creates(desired: &DesiredState, plan: &Plan) -> Vec<String> {
    let created = creates(plan);
    sourced(desired)
        .filter(|(u, _)| created.contains(&u.value.user_name.value.to_lowercase()))
        .filter_map(|(u, source)| {
            resolve(desired, source).err().map(|e| {
                format!(
                    "{}: user {:?}, which the plan creates: {e}",
                    Source::at(&desired.sources, source.span),
                    u.value.user_name.value.as_str()
                )
            })
        })
        .collect()
}

/// `--adopt-passwords`: the users with a `fromEnv`/`fromFile` source and no fingerprint that
/// `plan` does not create (a create records its own), each with its current password, to
/// be recorded as set; and a warning per source that cannot be read.
#[must_use]
pub fn adoptable(
    desired: &DesiredState,
    plan: &Plan,
    store: &Fingerprints,
) -> (Vec<(String, Secret)>, Vec<Warning>) {
    let created = creates(plan);
    let mut adopt = Vec::new();
    let mut warnings = Vec::new();
    for (user, source) in sourced(desired) {
        let name = user.value.user_name.value.as_str();
        if store.get(name).is_some() || created.contains(&name.to_lowercase()) {
            continue;
        }
        match resolve(desired, source) {
            Ok(p) => adopt.push((name.to_owned(), p)),
            Err(e) => warnings.push(Warning {
                message: format!(
                    "user {name:?}: not adopted, its password source cannot be read ({e})"
                ),
                source: Some(Source::at(&desired.sources, source.span)),
            }),
        }
    }
    (adopt, warnings)
}

/// Records each adopted password's fingerprint in `store` and saves it; returns how many.
pub fn adopt(
    store: &mut Fingerprints,
    adopt: &[(String, Secret)],
) -> Result<usize, fingerprint::FingerprintError> {
    for (user, phc) in fingerprint::fingerprint_all(adopt, fingerprint::threads())? {
        store.set(&user, phc);
    }
    if !adopt.is_empty() {
        store.save()?;
    }
    Ok(adopt.len())
}
