//! The sandbox's two error types: [`SandboxError`], for starting, persisting and stopping the
//! server (what the CLI reports), and [`ScimError`], an RFC 7644 §3.12 error response that the
//! store and the HTTP layer answer a request with. This module renders nothing but the error
//! body; status lines and headers belong to `http`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};

/// The schema URN of an RFC 7644 §3.12 error body.
pub(crate) const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Why the sandbox could not start, persist its state or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The listen address could not be bound.
    #[error("sandbox: cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The state file exists but could not be read.
    #[error("sandbox: cannot read state file {}", path.display())]
    ReadState {
        /// The state file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The state file is not a sandbox state file (bad JSON, wrong version, invalid resource).
    #[error("sandbox: corrupt state file {}: {reason}", path.display())]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The state file could not be written.
    #[error("sandbox: cannot write state file {}", path.display())]
    WriteState {
        /// The state file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Another process holds the state file (its lock, `<state>.lock`): two processes
    /// sharing one state file would each save over the other's writes.
    #[error(
        "sandbox: state file {} is in use by another process ({holder}){}; stop that \
         process or give this one another state file",
        path.display(),
        waited_note(*waited)
    )]
    StateLocked {
        /// The state file.
        path: PathBuf,
        /// Who holds it, as its lock file says.
        holder: String,
        /// Seconds waited for it.
        waited: u64,
    },
    /// A resource given to a bulk seed was refused.
    #[error("sandbox: seed {kind} #{index} refused: {detail}")]
    Seed {
        /// `user` or `group`.
        kind: &'static str,
        /// Its position in the list given (0-based).
        index: usize,
        /// Why.
        detail: String,
    },
    /// The configuration cannot work (e.g. the Genesys flavour without OAuth).
    #[error("sandbox: {0}")]
    Config(String),
    /// The HTTP server stopped with an error.
    #[error("sandbox: server failed")]
    Serve(#[source] io::Error),
}

/// ", waited N s" when the sandbox waited for the state file's lock, else nothing.
fn waited_note(waited: u64) -> String {
    if waited == 0 {
        String::new()
    } else {
        format!("; waited {waited} s")
    }
}

/// An RFC 7644 §3.12 error: what the sandbox answers when it refuses a request.
///
/// `status` is the HTTP status; `scim_type` the optional `scimType` keyword (`uniqueness`,
/// `invalidFilter`, `noTarget`, ...). The JSON body carries `status` as a string, as the RFC's
/// examples and the third-party peer do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}{}: {detail}", scim_type.map(|t| format!(" {t}")).unwrap_or_default())]
pub struct ScimError {
    /// HTTP status code.
    pub status: u16,
    /// `scimType`, when the RFC defines one for the failure.
    pub scim_type: Option<&'static str>,
    /// Human-readable detail.
    pub detail: String,
}

impl ScimError {
    /// An error with the given status, `scimType` and detail.
    pub(crate) fn new(
        status: u16,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 `invalidValue`.
    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    /// 400 `invalidSyntax`.
    pub(crate) fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    /// 400 `invalidFilter`.
    pub(crate) fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    /// 400 `invalidPath`.
    pub(crate) fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    /// 400 `noTarget`.
    pub(crate) fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    /// 400 `mutability`.
    pub(crate) fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    /// 404 without `scimType`.
    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 409 `uniqueness`.
    pub(crate) fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    /// 412 without `scimType` (RFC 7644 §3.14).
    pub(crate) fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// The RFC 7644 §3.12 JSON body.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(scim_type), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".to_owned(), Value::from(scim_type));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The body carries status as a string and scimType only when there is one.
    #[test]
    fn error_body_shape() {
        let body = ScimError::uniqueness("taken").to_json();
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
        assert_eq!(body["schemas"][0], ERROR_URN);
        let body = ScimError::not_found("gone").to_json();
        assert!(body.get("scimType").is_none());
        assert_eq!(ScimError::uniqueness("x").to_string(), "409 uniqueness: x");
    }
}
