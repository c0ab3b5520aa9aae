//! `scimctl export`: read the whole tenant once, write it as desired-state YAML.
//!
//! The output directory is checked before the tenant is contacted, so a refusal costs no
//! request. Reading is the snapshot `plan` uses (pages + 2 requests: `/ServiceProviderConfig`
//! and `/Schemas`); turning it into files is pure ([`crate::export`]); the files are written
//! atomically. Warnings and the summary go to `err`; nothing goes to stdout.

use std::io::Write;
use std::path::Path;

use super::Failure;
use super::explain::SecretsNotRead;
use super::runtime::Runtime;
use super::tenant::{Shown, TenantRead, read_tenant};
use crate::desired;
use crate::error::{Error, ExitStatus};
use crate::export::write::{self, WriteError};
use crate::export::{ExportOptions, Filters};
use crate::model::{Config, SecretSource, Target, ValueSource};

/// Warnings printed before the rest are only counted.
const MAX_WARNINGS: usize = 50;

/// What `scimctl export` was asked.
pub(super) struct ExportArgs<'a> {
    pub(super) dir: &'a Path,
    /// `--from DIR`: the desired-state directory whose `scimctl.yaml` names the tenant.
    pub(super) from: Option<&'a Path>,
    pub(super) target: crate::target::Overrides<'a>,
    pub(super) filters: Filters,
    pub(super) force: bool,
    pub(super) quiet: bool,
}

fn write_error(e: WriteError) -> Error {
    match e {
        e @ WriteError::NotEmpty { .. } => Error::Refused(e.to_string()),
        WriteError::Io { path, message } => Error::File { path, message },
    }
}

/// The `target:` the generated `scimctl.yaml` names: the `--target` URL, with the token
/// variable it was read from when one was set; `None` (the default sandbox) otherwise.
fn target_of(args: &ExportArgs<'_>) -> Option<Target> {
    let url = args.target.url?;
    let token_set = std::env::var_os("SCIMCTL_TOKEN").is_some_and(|t| !t.is_empty());
    Some(Target::Scim {
        url: url.to_owned(),
        token: token_set.then(|| SecretSource::FromEnv("SCIMCTL_TOKEN".into())),
        oauth: None,
        requests_per_minute: args.target.requests_per_minute,
    })
}

/// The tenant `--from DIR` names, as the export's own `scimctl.yaml` is to name it from
/// another directory: relative paths (a sandbox file, `fromFile` secrets) made absolute,
/// and the directories of those secrets, for `secrets.allowedDirs`. No `target:` there means
/// the embedded sandbox beside DIR, which is named by its path.
fn relocated(target: Option<&Target>, from: &Path) -> (Target, Vec<String>) {
    fn absolute(p: &Path) -> std::path::PathBuf {
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    }
    fn secret(s: &SecretSource, from: &Path, dirs: &mut Vec<String>) -> SecretSource {
        match s {
            SecretSource::FromEnv(_) => s.clone(),
            SecretSource::FromFile(p) => {
                let file = absolute(&from.join(p));
                if let Some(dir) = file.parent() {
                    let dir = dir.display().to_string();
                    if !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
                SecretSource::FromFile(file.display().to_string())
            }
        }
    }
    fn value(v: &ValueSource, from: &Path, dirs: &mut Vec<String>) -> ValueSource {
        match v {
            ValueSource::Literal(_) => v.clone(),
            ValueSource::Source(s) => ValueSource::Source(secret(s, from, dirs)),
        }
    }
    let mut dirs = Vec::new();
    let target = match target {
        None => Target::Sandbox {
            path: Some(
                absolute(&crate::target::default_sandbox_state(from))
                    .display()
                    .to_string(),
            ),
        },
        Some(Target::Sandbox { path }) => Target::Sandbox {
            path: Some(
                absolute(&path.as_deref().map_or_else(
                    || crate::target::default_sandbox_state(from),
                    |p| from.join(p),
                ))
                .display()
                .to_string(),
            ),
        },
        Some(Target::Scim {
            url,
            token,
            oauth,
            requests_per_minute,
        }) => Target::Scim {
            url: url.clone(),
            token: token.as_ref().map(|t| secret(t, from, &mut dirs)),
            oauth: oauth.as_ref().map(|o| crate::model::OAuthClient {
                token_url: o.token_url.clone(),
                client_id: value(&o.client_id, from, &mut dirs),
                client_secret: secret(&o.client_secret, from, &mut dirs),
                scope: o.scope.clone(),
            }),
            requests_per_minute: *requests_per_minute,
        },
        Some(Target::Genesys {
            region,
            client_id,
            client_secret,
            api_url,
            login_url,
            requests_per_minute,
        }) => Target::Genesys {
            region: region.clone(),
            client_id: value(client_id, from, &mut dirs),
            client_secret: secret(client_secret, from, &mut dirs),
            api_url: api_url.clone(),
            login_url: login_url.clone(),
            requests_per_minute: *requests_per_minute,
        },
    };
    (target, dirs)
}

/// `", N what"` for the summary line; nothing when there are none.
fn counted(n: usize, what: &str) -> String {
    if n > 0 {
        format!(", {n} {what}")
    } else {
        String::new()
    }
}

pub(super) fn export_cmd(
    args: &ExportArgs<'_>,
    runtime: &Runtime,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let started = tokio::time::Instant::now();
    write::check_dir(args.dir, args.force).map_err(write_error)?;
    let (config, config_dir) = match args.from {
        Some(from) => {
            let loaded = desired::load_dir_with(from, &SecretsNotRead, desired::Limits::DEFAULT)
                .map_err(Error::from)?;
            if !args.quiet {
                loaded.warnings.write_text(err)?;
            }
            (loaded.state.config, from)
        }
        None => (Config::default(), Path::new(".")),
    };
    let TenantRead {
        support,
        mut snapshot,
        target: description,
        requests,
        username_email,
    } = read_tenant(
        runtime,
        &config,
        config_dir,
        &args.target,
        Shown {
            label: "export",
            quiet: args.quiet,
        },
    )?;
    // `--target URL` names the tenant whatever `--from` says, as for every command.
    let (target, secret_dirs) = match args.from {
        Some(from) if args.target.url.is_none() => {
            let (target, dirs) = relocated(config.target.as_ref(), from);
            (Some(target), dirs)
        }
        _ => (target_of(args), Vec::new()),
    };
    let external_id_authority = config
        .match_by
        .external_id_authority
        .as_ref()
        .filter(|_| args.target.url.is_none())
        .map(|a| a.value.clone());
    let options = ExportOptions {
        filters: args.filters.clone(),
        support,
        target,
        description: description.clone(),
        external_id_authority,
        secret_dirs,
        username_email,
    };
    let read_at = started.elapsed();
    // Each file is written (to its temporary name) as soon as it is laid out, and the users
    // are rendered one by one as they are converted: at 100,000 users, holding them or the
    // files' text would be most of the export's memory.
    let mut stager = write::Stager::new(args.dir, args.force).map_err(write_error)?;
    let spill = write::Spill::new(args.dir).map_err(write_error)?;
    let export = crate::export::export_into(&mut snapshot, &options, spill, &mut |rel, text| {
        stager.stage(&rel, &text)
    })
    .map_err(write_error)?;
    drop(snapshot);
    let written = stager.commit().map_err(write_error)?;
    tracing::debug!(
        read_ms = read_at.as_millis(),
        write_ms = started.elapsed().saturating_sub(read_at).as_millis(),
        files = written.written,
        "exported"
    );
    if !args.quiet {
        for w in export.warnings.iter().take(MAX_WARNINGS) {
            writeln!(err, "warning: {w}")?;
        }
        if export.warnings.len() > MAX_WARNINGS {
            writeln!(
                err,
                "warning: ... and {} more kinds of problem",
                export.warnings.len() - MAX_WARNINGS
            )?;
        }
        let roles = format!(
            "{}{}",
            counted(export.roles, "role names"),
            counted(export.licenses, "licenses")
        );
        writeln!(
            err,
            "Exported {} users in {} {}, {} groups{roles} to {} ({requests} requests in {:.2} s).",
            export.users,
            export.user_files,
            if export.user_files == 1 {
                "file"
            } else {
                "files"
            },
            export.groups,
            args.dir.display(),
            started.elapsed().as_secs_f64()
        )?;
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Genesys target read from `ds/`: the secret file is named by its absolute path and
    // its directory is allowed; a variable and a literal client id stay as written.
    #[test]
    fn a_genesys_target_is_written_so_it_works_from_the_export() {
        let target = Target::Genesys {
            region: Some("euw2.pure.cloud".into()),
            client_id: ValueSource::Literal("0a1b".into()),
            client_secret: SecretSource::FromFile("secrets/genesys".into()),
            api_url: None,
            login_url: None,
            requests_per_minute: Some(300),
        };
        let from = Path::new("/srv/org/ds");
        let (written, dirs) = relocated(Some(&target), from);
        assert_eq!(
            written,
            Target::Genesys {
                region: Some("euw2.pure.cloud".into()),
                client_id: ValueSource::Literal("0a1b".into()),
                client_secret: SecretSource::FromFile("/srv/org/ds/secrets/genesys".into()),
                api_url: None,
                login_url: None,
                requests_per_minute: Some(300),
            }
        );
        assert_eq!(dirs, ["/srv/org/ds/secrets"]);

        let scim = Target::Scim {
            url: "https://idp.example/scim/v2".into(),
            token: Some(SecretSource::FromEnv("TOKEN".into())),
            oauth: None,
            requests_per_minute: None,
        };
        let (written, dirs) = relocated(Some(&scim), from);
        assert_eq!(written, scim);
        assert!(dirs.is_empty());
    }

    // No target in the directory is its own sandbox, beside it: the export names that file,
    // since from another directory the default would be another sandbox.
    #[test]
    fn the_default_sandbox_is_named_by_its_path() {
        let (written, dirs) = relocated(None, Path::new("/srv/org/ds"));
        assert_eq!(
            written,
            Target::Sandbox {
                path: Some("/srv/org/.scimctl/sandbox.json".into())
            }
        );
        assert!(dirs.is_empty());
        let (written, _) = relocated(
            Some(&Target::Sandbox {
                path: Some("state.json".into()),
            }),
            Path::new("/srv/org/ds"),
        );
        assert_eq!(
            written,
            Target::Sandbox {
                path: Some("/srv/org/ds/state.json".into())
            }
        );
    }
}
