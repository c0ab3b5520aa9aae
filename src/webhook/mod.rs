//! Webhooks: the signature scheme both directions share ([`signature`]), outbound event
//! delivery ([`outbound`]), the inbound HRIS termination endpoint ([`hris`]) and the
//! password-sync endpoint ([`password`]).
//!
//! These are building blocks for `scimctl watch`: this module decides nothing about when
//! events happen or how a termination is carried out. It never logs a secret, a signature,
//! a body or a whole webhook URL.

pub mod hris;
mod inbound;
pub mod outbound;
pub mod password;
pub mod signature;

pub use hris::{TerminateError, Terminated, TerminationSink, router};
pub use outbound::{Backoff, Event, Mode, Outcomes, WebhookConfig, WebhookStats, Webhooks, start};
pub use signature::{Rejection, Verified, Verifier, sign};

use std::path::Path;

use crate::desired::confine::SecretDirs;
use crate::model::{InboundWebhook, WebhookSettings};
use crate::target::{TargetError, read_secret};

/// The outbound settings of `scimctl.yaml`'s `watch.webhooks`, with the secret read (relative
/// to `config_dir` for `fromFile`) and the other knobs at their defaults. Errors name the
/// variable or file, never a value.
pub fn outbound_config(
    settings: &WebhookSettings,
    config_dir: &Path,
    dirs: &SecretDirs,
) -> Result<WebhookConfig, TargetError> {
    let secret = settings
        .secret
        .as_ref()
        .map(|s| read_secret(s, config_dir, dirs))
        .transpose()?;
    Ok(WebhookConfig {
        urls: settings.urls.iter().map(|u| u.value.clone()).collect(),
        secret,
        ..WebhookConfig::default()
    })
}

/// The verifier of an inbound endpoint (`watch.hris`, `watch.passwordSync`), with the secret
/// read (relative to `config_dir` for `fromFile`) and the default 5-minute window.
pub fn inbound_verifier(
    settings: &InboundWebhook,
    config_dir: &Path,
    dirs: &SecretDirs,
) -> Result<Verifier, TargetError> {
    Ok(Verifier::new(read_secret(
        &settings.secret,
        config_dir,
        dirs,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SecretSource, Spanned};

    // Settings become a config and a verifier with the secret read from its file; a missing
    // source is an error naming it.
    #[test]
    fn from_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook.key"), "k3y-value\n").unwrap();
        let secret = Spanned::unspanned(SecretSource::FromFile("hook.key".into()));
        let settings = WebhookSettings {
            urls: vec![Spanned::unspanned("https://hooks.example.com/x".into())],
            secret: Some(secret.clone()),
        };
        let (dirs, _) = SecretDirs::new(dir.path(), []);
        let config = outbound_config(&settings, dir.path(), &dirs).unwrap();
        assert_eq!(config.urls, ["https://hooks.example.com/x"]);
        let signed = sign(config.secret.as_ref().unwrap(), 1, b"{}");
        assert_eq!(
            signed,
            sign(&crate::scim::Secret::new("k3y-value"), 1, b"{}")
        );
        let verifier = inbound_verifier(&InboundWebhook { secret }, dir.path(), &dirs).unwrap();
        assert!(verifier.verify(Some("1"), Some(&signed), b"{}", 1).is_ok());
        let missing = InboundWebhook {
            secret: Spanned::unspanned(SecretSource::FromEnv("SCIMCTL_TEST_UNSET_HRIS".into())),
        };
        let e = inbound_verifier(&missing, dir.path(), &dirs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCIMCTL_TEST_UNSET_HRIS"), "{e}");
    }
}
