//! `scimctl sandbox serve`: the embedded SCIM 2.0 store as a standalone server, until SIGINT
//! or SIGTERM; the state file is saved when it stops, on every way out.

use std::io::Write;

use super::Failure;
use super::args::{ServeArgs, ServeFlavor};
use super::runtime::{Guard, Runtime, ShutdownSignal};
use crate::error::{Error, ExitStatus};

/// `scimctl sandbox serve`: start, print the URL, serve until SIGINT or SIGTERM, flush, stop.
pub(super) fn sandbox_serve(
    args: &ServeArgs,
    runtime: &Runtime,
    out: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    use crate::sandbox::{self, SandboxAuth, SandboxConfig};

    let secret = |var: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Config(format!("environment variable `{var}` is not set")))
    };
    let auth = match (
        &args.token_env,
        &args.oauth_client_id,
        &args.oauth_secret_env,
    ) {
        (Some(var), _, _) => SandboxAuth::Bearer(secret(var)?),
        (None, Some(id), Some(var)) => SandboxAuth::OAuth {
            client_id: id.clone(),
            client_secret: secret(var)?,
            token_ttl: std::time::Duration::from_secs(args.token_ttl.max(1)),
        },
        _ => SandboxAuth::None,
    };
    let flavor = match args.flavor {
        ServeFlavor::Standard => {
            if args.read_lag_ms > 0
                || !args.divisions.is_empty()
                || args.weak_etags
                || args.tokens_me_without_client
            {
                return Err(Error::Config(
                    "--read-lag-ms, --division, --weak-etags and --tokens-me-without-client need --flavor genesys"
                        .to_owned(),
                )
                .into());
            }
            sandbox::Flavor::Standard
        }
        ServeFlavor::Genesys => {
            if !matches!(auth, SandboxAuth::OAuth { .. }) {
                return Err(Error::Config(
                    "--flavor genesys needs --oauth-client-id and --oauth-secret-env".to_owned(),
                )
                .into());
            }
            sandbox::Flavor::Genesys(sandbox::GenesysOptions {
                read_lag: std::time::Duration::from_millis(args.read_lag_ms),
                divisions: args.divisions.clone(),
                group_delete_misses: args.group_delete_misses,
                auth_cache_lag: std::time::Duration::from_millis(args.auth_cache_lag_ms),
                requests_per_minute: args.requests_per_minute,
                weak_etags: args.weak_etags,
                tokens_me_without_client: args.tokens_me_without_client,
            })
        }
    };
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            "sandbox: listening on {}, which is not a loopback address",
            args.listen
        );
    }
    let config = SandboxConfig {
        state_path: Some(args.state.clone()),
        auth,
        clock: sandbox::Clock::system(),
        faults: args.faults(),
        flavor,
        request_log: args.request_log.clone(),
        me: args.me.clone(),
        change_password: !args.no_change_password,
        quirks: sandbox::Quirks::new(args.quirks.iter().copied()),
        bulk: (!args.no_bulk).then_some(sandbox::BulkLimits {
            max_operations: args.bulk_max_operations as usize,
            max_payload: args.bulk_max_payload as usize,
        }),
    };
    let runtime = runtime.get()?;
    // Armed before the address is printed: whoever reads it may signal at once.
    let stop = runtime.block_on(async { ShutdownSignal::arm() })?;
    let running = runtime
        .block_on(sandbox::start(config, args.listen))
        .map_err(|e| Error::Sandbox(crate::error::with_causes(&e)))?;
    // Stopped (its state saved) on every way out, a failed write of the URL line included.
    let running = Guard::new(runtime, running);
    writeln!(
        out,
        "sandbox: serving SCIM 2.0 at {} (state {})",
        running.base_url,
        args.state.display()
    )?;
    out.flush()?;
    runtime.block_on(stop.received());
    running.close()?;
    writeln!(
        out,
        "sandbox: stopped; state saved to {}",
        args.state.display()
    )?;
    Ok(ExitStatus::Success)
}

impl ServeArgs {
    /// The injected faults the flags ask for.
    fn faults(&self) -> crate::sandbox::Faults {
        crate::sandbox::Faults {
            latency: std::time::Duration::from_millis(self.latency_ms),
            rate_limit: self.rate_limit,
            error_rate: self.error_rate,
            error_status: self.error_status,
            drop_rate: self.drop_rate,
            drop_after_rate: self.drop_after_rate,
            seed: self.seed,
            token_rate_limit: None,
        }
    }
}
