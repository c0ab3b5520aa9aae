//! Webhooks: the signature scheme both directions share ([`signature`]), outbound event
//! delivery ([`outbound`]), and the inbound HRIS termination endpoint ([`hris`]).
//!
//! These are building blocks for `scimctl watch`: this module decides nothing about when
//! events happen or how a termination is carried out. It never logs a secret, a signature,
//! a body or a whole webhook URL.

pub mod hris;
pub mod outbound;
pub mod signature;

pub use hris::{TerminateError, Terminated, TerminationSink, router};
pub use outbound::{Backoff, Event, Mode, Outcomes, WebhookConfig, WebhookStats, Webhooks, start};
pub use signature::{Rejection, Verified, Verifier, sign};
