//! The SCIM client layer: the only code that speaks HTTP to a tenant.
//!
//! It owns transport, auth ([`auth`]), retry and backoff ([`retry`]), client-side limits
//! ([`limit`]), paging and the live snapshot ([`snapshot`]), and the wire format ([`wire`]).
//! Business code sees two traits: [`ScimRead`] (plan, validate, export) and [`ScimWrite`]
//! (the applier only). Neither ever sees a 429, a token or a retry.

pub mod auth;
pub mod client;
pub mod error;
pub mod genesys;
pub mod limit;
pub mod live;
pub mod platform;
pub mod retry;
pub mod snapshot;
pub mod wire;

use std::future::Future;

pub use auth::{Credentials, OAuthSettings, Secret};
pub use client::{
    Capabilities, ClientConfig, ClientStats, Created, Dialect, Patched, Resource, ScimClient,
};
pub use error::ScimError;
pub use live::{Live, LiveGroup, LiveUser};
pub use snapshot::Snapshot;
pub use wire::{PatchOperation, ResourceKind};

/// Reading a tenant.
pub trait ScimRead {
    /// What the server supports.
    fn capabilities(&self) -> impl Future<Output = Result<Capabilities, ScimError>> + Send;
    /// The server's schemas, `None` when it publishes none.
    fn schemas(
        &self,
    ) -> impl Future<Output = Result<Option<Vec<wire::SchemaDefinition>>, ScimError>> + Send;
    /// Every user and group.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, ScimError>> + Send;
    /// One resource by id.
    fn get<R: Resource>(&self, id: &str) -> impl Future<Output = Result<R, ScimError>> + Send;
    /// One resource by natural key (userName, displayName), case-insensitively.
    fn find_by_key<R: Resource>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<R>, ScimError>> + Send;
}

/// Writing a tenant. Only the applier holds one.
pub trait ScimWrite {
    /// Creates a resource (looked up, not resent, when the outcome is unknown).
    fn create<R: Resource>(
        &self,
        resource: &R,
    ) -> impl Future<Output = Result<Created<R>, ScimError>> + Send;
    /// Sends a PATCH for a resource, with `If-Match` when `version` is given.
    fn patch<R: Resource>(
        &self,
        id: &str,
        version: Option<&str>,
        operations: &[PatchOperation],
    ) -> impl Future<Output = Result<Patched<R>, ScimError>> + Send;
    /// Replaces a resource (PUT), with `If-Match` when `version` is given.
    fn replace<R: Resource>(
        &self,
        id: &str,
        version: Option<&str>,
        resource: &R,
    ) -> impl Future<Output = Result<R, ScimError>> + Send;
    /// Deletes a resource, with `If-Match` when `version` is given.
    fn delete(
        &self,
        kind: ResourceKind,
        id: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<(), ScimError>> + Send;
}

impl ScimRead for ScimClient {
    async fn capabilities(&self) -> Result<Capabilities, ScimError> {
        ScimClient::capabilities(self).await
    }
    async fn schemas(&self) -> Result<Option<Vec<wire::SchemaDefinition>>, ScimError> {
        ScimClient::schemas(self).await
    }
    async fn snapshot(&self) -> Result<Snapshot, ScimError> {
        snapshot::snapshot(self).await
    }
    async fn get<R: Resource>(&self, id: &str) -> Result<R, ScimError> {
        ScimClient::get(self, id).await
    }
    async fn find_by_key<R: Resource>(&self, key: &str) -> Result<Option<R>, ScimError> {
        ScimClient::find_by_key(self, key).await
    }
}

impl ScimWrite for ScimClient {
    async fn create<R: Resource>(&self, resource: &R) -> Result<Created<R>, ScimError> {
        ScimClient::create(self, resource).await
    }
    async fn patch<R: Resource>(
        &self,
        id: &str,
        version: Option<&str>,
        operations: &[PatchOperation],
    ) -> Result<Patched<R>, ScimError> {
        ScimClient::patch(self, id, version, operations).await
    }
    async fn replace<R: Resource>(
        &self,
        id: &str,
        version: Option<&str>,
        resource: &R,
    ) -> Result<R, ScimError> {
        ScimClient::replace(self, id, version, resource).await
    }
    async fn delete(
        &self,
        kind: ResourceKind,
        id: &str,
        version: Option<&str>,
    ) -> Result<(), ScimError> {
        ScimClient::delete(self, kind, id, version).await
    }
}
