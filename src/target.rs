//! Turning `scimctl.yaml`'s `target` (or `--target URL`) into a connected [`ScimClient`].
//!
//! The sandbox target starts the embedded store in-process on an ephemeral loopback port and
//! reaches it through the same client layer as any tenant, so plan and apply behave the same
//! against it. Credentials are read here, at connect time, straight into [`Secret`]; nothing
//! else in the program sees them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::desired::confine::SecretDirs;
use crate::model::{Config, OAuthClient, SecretSource, Target, ValueSource};
use crate::sandbox::{self, RunningSandbox, SandboxConfig};
use crate::scim::{
    ClientConfig, Credentials, Dialect, OAuthSettings, ScimClient, ScimError, Secret, genesys,
};

/// Where the sandbox keeps its state when `scimctl.yaml` names no path.
pub const DEFAULT_SANDBOX_STATE: &str = ".scimctl/sandbox.json";

/// How long a command using the embedded sandbox waits for its state file while another
/// process (another `plan`, `apply` or `watch`, or `sandbox serve`) uses it: the default
/// `--lock-timeout` of `apply`, so two runs in one directory take turns.
pub const EMBEDDED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// A failure to reach the configured target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A credential could not be read.
    #[error("target credential: {0}")]
    Credential(String),
    /// The client could not be built (bad URL, plain http to a remote host).
    #[error("target: {0}")]
    Client(#[from] ScimError),
    /// `--target` (or `SCIMCTL_TARGET`) is not a usable base URL: a configuration mistake,
    /// which exits 3 as the same URL in `scimctl.yaml` does.
    #[error("--target: {0}")]
    InvalidUrl(ScimError),
    /// The embedded sandbox did not start.
    /// (The sandbox's messages carry their own `sandbox:` prefix; the reason is added.)
    #[error("{}", crate::error::with_causes(.0))]
    Sandbox(#[from] sandbox::SandboxError),
}

/// A client for the target, plus the embedded sandbox when that is the target (kept alive
/// for as long as the connection is).
#[derive(Debug)]
pub struct Connection {
    /// The client to read and write the tenant with.
    pub client: ScimClient,
    /// What the target is, for messages: a URL or `sandbox (<path>)`.
    pub description: String,
    /// What the target is, for the one-writer lock: the description, with the embedded
    /// sandbox's state file made absolute (two directories, two sandboxes).
    pub lock_key: String,
    sandbox: Option<RunningSandbox>,
}

impl Connection {
    /// Stops the embedded sandbox, if any, flushing its state file.
    pub async fn close(self) -> Result<(), TargetError> {
        if let Some(s) = self.sandbox {
            s.shutdown().await?;
        }
        Ok(())
    }
}

/// Connects to the target: `override_url` (from `--target` or `SCIMCTL_TARGET`, with the
/// token from `SCIMCTL_TOKEN`) wins over `scimctl.yaml`; no target at all means the sandbox.
/// `config_dir` is the directory of `scimctl.yaml`, against which relative paths resolve.
pub async fn connect(
    config: &Config,
    config_dir: &Path,
    overrides: &Overrides<'_>,
) -> Result<Connection, TargetError> {
    let (mut client, description, sandbox) = configure(config, config_dir, overrides.url).await?;
    if let Some(rpm) = overrides.requests_per_minute {
        client.requests_per_minute = Some(rpm);
    }
    client.bulk = !overrides.no_bulk;
    let lock_key = match (&sandbox, &config.target, overrides.url) {
        (Some(_), Some(Target::Sandbox { path: Some(p) }), _) => sandbox_key(&config_dir.join(p)),
        (Some(_), _, _) => sandbox_key(&default_sandbox_state(config_dir)),
        (None, _, _) => description.clone(),
    };
    Ok(Connection {
        client: ScimClient::new(client)?,
        description,
        lock_key,
        sandbox,
    })
}

/// Where the embedded sandbox keeps its state when `scimctl.yaml` does not say: beside the
/// desired-state directory (`DIR/../.scimctl/sandbox.json`), whatever the current directory,
/// so `cd elsewhere && scimctl plan /path/desired-state` plans against the same sandbox as
/// `scimctl plan desired-state` from its parent.
#[must_use]
pub fn default_sandbox_state(config_dir: &Path) -> PathBuf {
    match config_dir.parent() {
        Some(parent) => parent.join(DEFAULT_SANDBOX_STATE),
        None => config_dir.join(DEFAULT_SANDBOX_STATE),
    }
}

fn sandbox_key(state: &Path) -> String {
    let state = std::path::absolute(state).unwrap_or_else(|_| state.to_path_buf());
    format!("sandbox ({})", state.display())
}

/// What the command line says about the target, over `scimctl.yaml`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides<'a> {
    /// `--target URL`: a plain SCIM 2.0 base URL.
    pub url: Option<&'a str>,
    /// `--requests-per-minute N`: the client-side rate limit.
    pub requests_per_minute: Option<u32>,
    /// `--no-bulk`: send each write alone even where the server takes `/Bulk`.
    pub no_bulk: bool,
}

/// The client settings, description and embedded sandbox (if any) of the target.
async fn configure(
    config: &Config,
    config_dir: &Path,
    override_url: Option<&str>,
) -> Result<(ClientConfig, String, Option<RunningSandbox>), TargetError> {
    if let Some(url) = override_url {
        crate::scim::check_url(url).map_err(TargetError::InvalidUrl)?;
        let mut client = ClientConfig::new(url);
        if let Some(token) = std::env::var("SCIMCTL_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
        {
            client.credentials = Credentials::Bearer(Secret::new(token));
            client.credentials_source = Some("the token in SCIMCTL_TOKEN".to_owned());
        } else {
            client.credentials_source = Some("SCIMCTL_TOKEN (not set)".to_owned());
        }
        return Ok((client, crate::scim::shown_url(url), None));
    }
    let dirs = SecretDirs::for_config(config_dir, config);
    match &config.target {
        None => connect_sandbox(&default_sandbox_state(config_dir)).await,
        Some(Target::Sandbox { path }) => {
            let state = path
                .as_ref()
                .map_or_else(|| default_sandbox_state(config_dir), |p| config_dir.join(p));
            connect_sandbox(&state).await
        }
        Some(Target::Scim {
            url,
            token,
            oauth,
            requests_per_minute,
        }) => {
            let mut client = ClientConfig::new(url.clone());
            client.requests_per_minute = *requests_per_minute;
            client.credentials = match (token, oauth) {
                (Some(token), _) => Credentials::Bearer(read_secret(token, config_dir, &dirs)?),
                (None, Some(oauth)) => {
                    Credentials::OAuth(oauth_settings(oauth, config_dir, &dirs)?)
                }
                (None, None) => Credentials::None,
            };
            Ok((client, crate::scim::shown_url(url), None))
        }
        Some(Target::Genesys {
            region,
            client_id,
            client_secret,
            api_url,
            login_url,
            requests_per_minute,
        }) => {
            let hosts = region.as_deref().and_then(genesys::region_hosts);
            let api = api_url
                .clone()
                .or_else(|| hosts.as_ref().map(|h| h.0.clone()))
                .ok_or_else(|| unknown_region(region.as_deref()))?;
            // The SDKs derive the login host from the API host by replacing `api.` with
            // `login.` (docs/genesys.md §1); a host without that prefix (a private or test
            // environment) is taken to serve both.
            let login = login_url
                .clone()
                .or_else(|| hosts.map(|h| h.1))
                .unwrap_or_else(|| api.replacen("://api.", "://login.", 1));
            let api = api.trim_end_matches('/');
            let mut client = ClientConfig::new(format!("{api}{}", genesys::SCIM_PATH));
            client.dialect = Dialect::Genesys;
            client.page_size = Some(genesys::PAGE_SIZE);
            client.external_id_authority = config
                .match_by
                .external_id_authority
                .as_ref()
                .map(|a| a.value.clone());
            // 300 requests a minute per client-credentials token (docs/genesys.md §9).
            client.requests_per_minute =
                Some(requests_per_minute.unwrap_or(genesys::REQUESTS_PER_MINUTE));
            client.max_concurrency = 4;
            client.credentials = Credentials::OAuth(OAuthSettings {
                token_url: format!("{}{}", login.trim_end_matches('/'), genesys::TOKEN_PATH),
                client_id: match client_id {
                    ValueSource::Literal(v) => v.clone(),
                    ValueSource::Source(s) => {
                        read_secret(s, config_dir, &dirs)?.expose().to_owned()
                    }
                },
                client_secret: read_secret(client_secret, config_dir, &dirs)?,
                // Client-credentials clients are authorised by their roles; scopes do not
                // apply to them (docs/genesys.md §2).
                scope: None,
            });
            Ok((
                client,
                format!("Genesys Cloud ({})", crate::scim::shown_url(api)),
                None,
            ))
        }
    }
}

fn unknown_region(region: Option<&str>) -> TargetError {
    TargetError::Client(ScimError::Config(match region {
        Some(r) => format!(
            "unknown Genesys Cloud region `{r}`: give its domain (e.g. mypurecloud.com) or set apiUrl and loginUrl"
        ),
        None => "a genesys target needs `region` or `apiUrl`".into(),
    }))
}

async fn connect_sandbox(
    state: &Path,
) -> Result<(ClientConfig, String, Option<RunningSandbox>), TargetError> {
    let running = sandbox::start_waiting(
        SandboxConfig {
            state_path: Some(state.to_path_buf()),
            ..SandboxConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        EMBEDDED_LOCK_WAIT,
    )
    .await?;
    let mut client = ClientConfig::new(running.base_url.clone());
    // In-process and on loopback: more parallelism than a remote tenant would welcome.
    client.max_concurrency = 8;
    Ok((
        client,
        format!("sandbox ({})", state.display()),
        Some(running),
    ))
}

fn oauth_settings(
    oauth: &OAuthClient,
    dir: &Path,
    dirs: &SecretDirs,
) -> Result<OAuthSettings, TargetError> {
    Ok(OAuthSettings {
        token_url: oauth.token_url.clone(),
        client_id: match &oauth.client_id {
            ValueSource::Literal(v) => v.clone(),
            ValueSource::Source(s) => read_secret(s, dir, dirs)?.expose().to_owned(),
        },
        client_secret: read_secret(&oauth.client_secret, dir, dirs)?,
        scope: oauth.scope.clone(),
    })
}

/// Reads a secret from its source. A `fromFile` path is relative to `dir` and must be in one
/// of `dirs` (see [`SecretDirs::read`]). Errors name the variable or file, never a value.
pub fn read_secret(
    source: &SecretSource,
    dir: &Path,
    dirs: &SecretDirs,
) -> Result<Secret, TargetError> {
    match source {
        SecretSource::FromEnv(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(TargetError::Credential(format!(
                "environment variable `{var}` is not set"
            ))),
        },
        SecretSource::FromFile(path) => {
            let full = dir.join(path);
            dirs.read(&full).map(Secret::new).map_err(|e| {
                TargetError::Credential(format!("cannot read {}: {e}", full.display()))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing variable or file is named; nothing else is said.
    #[test]
    fn credential_errors_name_the_source() {
        let err = read_secret(
            &SecretSource::FromEnv("SCIMCTL_TEST_SURELY_UNSET".into()),
            Path::new("."),
            &SecretDirs::default(),
        )
        .expect_err("unset");
        assert_eq!(
            err.to_string(),
            "target credential: environment variable `SCIMCTL_TEST_SURELY_UNSET` is not set"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "abc\n").expect("write");
        let (dirs, _) = SecretDirs::new(dir.path(), []);
        let secret = read_secret(&SecretSource::FromFile("token".into()), dir.path(), &dirs)
            .expect("readable");
        assert_eq!(secret.expose(), "abc");
        // A file outside the directory (and any allowed directory) is refused.
        let err = read_secret(
            &SecretSource::FromFile("/etc/passwd".into()),
            dir.path(),
            &dirs,
        )
        .expect_err("outside");
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(!err.to_string().contains("root:"), "{err}");
    }

    /// Plain http to a remote host is refused before anything is sent.
    #[tokio::test]
    async fn remote_http_is_refused() {
        let config = Config {
            target: Some(Target::Scim {
                url: "http://idp.example.com/scim/v2".into(),
                token: None,
                oauth: None,
                requests_per_minute: None,
            }),
            ..Config::default()
        };
        let err = connect(&config, Path::new("."), &Overrides::default())
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("https is required"), "{err}");
    }
}
