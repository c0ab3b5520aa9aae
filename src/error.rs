//! The crate's error type and the exit-code table (docs/contract.md §2).
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success, or no changes |
//! | 1 | runtime failure (network, auth, some operations failed, not implemented); `explain` of an unknown name |
//! | 2 | `plan --detailed-exitcode` found changes |
//! | 3 | invalid desired state or configuration (nothing contacted, nothing written) |
//! | 4 | refused by a safety rule (nothing written) |
//! | 64 | usage error |

use std::path::PathBuf;

use crate::desired::LoadError;

/// Exit codes, as a type so that no other number can be returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Success, or no changes.
    Success = 0,
    /// Runtime failure.
    Failure = 1,
    /// `plan --detailed-exitcode` found changes.
    Changes = 2,
    /// Invalid desired state or configuration.
    Invalid = 3,
    /// Refused by a safety rule.
    Refused = 4,
    /// Usage error (sysexits `EX_USAGE`).
    Usage = 64,
}

impl ExitStatus {
    /// The numeric process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Every error the CLI can end with. Each variant prints its whole story in its message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The desired-state directory could not be loaded or is invalid.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A configuration value given on the command line or environment is unusable.
    #[error("{0}")]
    Config(String),
    /// The embedded sandbox failed (the message has its own `sandbox:` prefix and reason).
    #[error("{0}")]
    Sandbox(String),
    /// Reading or writing a local file failed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The target could not be reached or configured.
    #[error(transparent)]
    Target(Box<crate::target::TargetError>),
    /// The tenant answered with an error, or could not be reached.
    #[error(transparent)]
    Scim(Box<crate::scim::ScimError>),
    /// No plan could be made (ambiguous matches, unreadable live objects).
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Refused before writing anything: a safety rule, a stale saved plan, no
    /// confirmation.
    #[error("refused: {0}")]
    Refused(String),
    /// `explain` was asked about a name desired state does not have, or the tenant's objects
    /// cannot be matched to desired ones.
    #[error(transparent)]
    Explain(#[from] crate::explain::ExplainError),
    /// The local overrides file (HRIS terminations) could not be read or written.
    #[error(transparent)]
    Overrides(#[from] crate::overrides::OverridesError),
    /// Committed JSON Schemas differ from the ones the code generates.
    #[error("{0}; run `scimctl schema` to regenerate")]
    StaleSchemas(crate::schema::Outdated),
}

/// `e`'s message followed by each of its causes' (`: reason`), for errors whose message
/// leaves the operating system's reason to its source (`cannot listen on ADDR`, then
/// `Address already in use`): the CLI prints one line, and it must say why.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

impl From<crate::scim::ScimError> for Error {
    fn from(e: crate::scim::ScimError) -> Error {
        Error::Scim(Box::new(e))
    }
}

impl From<crate::target::TargetError> for Error {
    fn from(e: crate::target::TargetError) -> Error {
        Error::Target(Box::new(e))
    }
}

impl Error {
    /// A target credential that cannot be read, or a `--target` URL that is not one: a
    /// configuration mistake, found before anything is contacted.
    fn is_configuration(&self) -> bool {
        use crate::target::TargetError;
        matches!(self, Error::Target(t)
            if matches!(**t, TargetError::Credential(_) | TargetError::InvalidUrl(_)))
    }

    /// The exit code this error ends the process with.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Target(_) if self.is_configuration() => ExitStatus::Invalid,
            Error::Load(_) | Error::Config(_) => ExitStatus::Invalid,
            Error::Refused(_) => ExitStatus::Refused,
            Error::File { .. }
            | Error::StaleSchemas(_)
            | Error::Overrides(_)
            | Error::Sandbox(_)
            | Error::Target(_)
            | Error::Scim(_)
            | Error::Plan(_)
            | Error::Explain(_) => ExitStatus::Failure,
        }
    }
}
