//! The SCIM client layer: the only code that speaks HTTP to a tenant.
//!
//! It owns transport, auth ([`auth`]), retry and backoff ([`retry`]), client-side limits
//! ([`limit`]), paging and the live snapshot ([`snapshot`]), and the wire format ([`wire`]).
//! Business code sees two traits: [`ScimRead`] (plan, validate, export) and [`ScimWrite`]
//! (the applier only). Neither ever sees a 429, a token or a retry.

pub mod auth;
mod authority;
pub mod bulk;
pub mod client;
pub mod deleted;
pub mod error;
pub mod genesys;
pub mod grants;
pub mod licenses;
pub mod limit;
pub mod patch;
pub mod platform;
pub mod reading;
pub mod retry;
pub mod roles;
pub mod snapshot;
#[cfg(test)]
pub(crate) mod test_server;
mod twin_checks;
mod unfiltered;
pub mod wire;

use std::collections::HashMap;
use std::future::Future;

use crate::model::Kind;
use crate::model::tenant::LiveLicenses;
pub use crate::model::tenant::{DeletedUser, Live, LiveGroup, LiveUser};
pub use auth::{Credentials, OAuthSettings, Secret};
pub use client::{
    Capabilities, ClientConfig, ClientStats, Created, Dialect, Patched, Resource, ScimClient,
    check_url, shown_url,
};
pub use error::ScimError;
pub use grants::{Division, Grant, GrantPair};
pub use licenses::{LicenseAssignment, LicenseUpdateStatus};
pub use roles::{PermissionPolicy, PlatformRole, RoleBody};
pub use snapshot::Snapshot;
pub use wire::PatchOperation;

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
    /// Every resource with natural key `key`, case-insensitively (twins included).
    fn find_all_by_key<R: Resource>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<R>, ScimError>> + Send;
    /// Every group named `name`, case-insensitively, for the check for twins after a create:
    /// their ids and versions matter, their members only when there are twins (then each
    /// is read whole), so a server that can leave them out is asked to.
    fn find_twins(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<wire::Group>, ScimError>> + Send {
        self.find_all_by_key::<wire::Group>(name)
    }
    /// Every role definition, on a target that manages them (Genesys Cloud); an error
    /// elsewhere.
    fn list_roles(&self) -> impl Future<Output = Result<Vec<PlatformRole>, ScimError>> + Send {
        async { Err(no_roles()) }
    }
    /// The direct role grants of each of `user_ids` (Genesys Cloud); an error elsewhere.
    fn read_grants(
        &self,
        user_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Vec<Grant>>, ScimError>> + Send {
        let _ = user_ids;
        async { Err(no_grants()) }
    }
    /// The role grants made to each of `group_ids` (subject type `PC_GROUP`, Genesys
    /// Cloud); an error elsewhere.
    fn read_group_grants(
        &self,
        group_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Vec<Grant>>, ScimError>> + Send {
        let _ = group_ids;
        async { Err(no_grants()) }
    }
    /// The users in the `deleted` state whose email is one of `emails` (Genesys Cloud); an
    /// error elsewhere.
    fn find_deleted_users(
        &self,
        emails: &[String],
    ) -> impl Future<Output = Result<Vec<DeletedUser>, ScimError>> + Send {
        let _ = emails;
        async { Err(no_deleted()) }
    }
    /// The license definitions and who holds which (Genesys Cloud); an error elsewhere.
    fn read_licenses(&self) -> impl Future<Output = Result<LiveLicenses, ScimError>> + Send {
        async { Err(no_licenses()) }
    }
}

/// The error of a license call on a target without assignable licenses.
fn no_licenses() -> ScimError {
    ScimError::Config("this target cannot assign licenses".into())
}

/// The error of a deleted-user call on a target without them.
fn no_deleted() -> ScimError {
    ScimError::Config("this target has no deleted users to restore".into())
}

/// The error of a role call on a target without role definitions.
fn no_roles() -> ScimError {
    ScimError::Config("this target has no role definitions".into())
}

/// The error of a grant call on a target without role grants.
fn no_grants() -> ScimError {
    ScimError::Config("this target has no role grants".into())
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
        kind: Kind,
        id: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<(), ScimError>> + Send;
    /// Creates a role definition (Genesys Cloud); an error on other targets.
    fn create_role(
        &self,
        body: &RoleBody,
    ) -> impl Future<Output = Result<PlatformRole, ScimError>> + Send {
        let _ = body;
        async { Err(no_roles()) }
    }
    /// Replaces a role definition as a whole; an error on targets without them.
    fn update_role(
        &self,
        id: &str,
        body: &RoleBody,
    ) -> impl Future<Output = Result<PlatformRole, ScimError>> + Send {
        let _ = (id, body);
        async { Err(no_roles()) }
    }
    /// Deletes a role definition; an error on targets without them.
    fn delete_role(&self, id: &str) -> impl Future<Output = Result<(), ScimError>> + Send {
        let _ = id;
        async { Err(no_roles()) }
    }
    /// Grants roles in divisions to user `user_id` (Genesys Cloud); an error elsewhere.
    fn add_grants(
        &self,
        user_id: &str,
        grants: &[GrantPair],
    ) -> impl Future<Output = Result<(), ScimError>> + Send {
        let _ = (user_id, grants);
        async { Err(no_grants()) }
    }
    /// Grants roles in divisions to group `group_id` (subject type `PC_GROUP`, Genesys
    /// Cloud); an error elsewhere.
    fn add_group_grants(
        &self,
        group_id: &str,
        grants: &[GrantPair],
    ) -> impl Future<Output = Result<(), ScimError>> + Send {
        let _ = (group_id, grants);
        async { Err(no_grants()) }
    }
    /// Takes grants of roles in divisions from group `group_id`; an error on targets without
    /// them.
    fn remove_group_grants(
        &self,
        group_id: &str,
        grants: &[GrantPair],
    ) -> impl Future<Output = Result<(), ScimError>> + Send {
        let _ = (group_id, grants);
        async { Err(no_grants()) }
    }
    /// Restores the deleted user `id` at Platform `version` (Genesys Cloud); an error
    /// elsewhere.
    fn restore_user(
        &self,
        id: &str,
        version: u64,
    ) -> impl Future<Output = Result<(), ScimError>> + Send {
        let _ = (id, version);
        async { Err(no_deleted()) }
    }
    /// How many writes the client sends in one `/Bulk` request; `None` when it sends each
    /// alone. The applier keeps at least this many operations in flight so requests fill.
    fn bulk_operations(&self) -> impl Future<Output = Option<usize>> + Send {
        async { None }
    }
    /// Takes grants of roles in divisions from user `user_id`; an error on targets without
    /// them.
    fn remove_grants(
        &self,
        user_id: &str,
        grants: &[GrantPair],
    ) -> impl Future<Output = Result<(), ScimError>> + Send {
        let _ = (user_id, grants);
        async { Err(no_grants()) }
    }
    /// Sends one batch of license assignments (at most `licenses::MOST_USER_IDS` user ids)
    /// and returns each entry's status (Genesys Cloud); an error elsewhere.
    fn assign_licenses(
        &self,
        batch: &[LicenseAssignment],
    ) -> impl Future<Output = Result<Vec<LicenseUpdateStatus>, ScimError>> + Send {
        let _ = batch;
        async { Err(no_licenses()) }
    }
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
    async fn find_all_by_key<R: Resource>(&self, key: &str) -> Result<Vec<R>, ScimError> {
        ScimClient::find_all_by_key(self, key).await
    }
    async fn find_twins(&self, name: &str) -> Result<Vec<wire::Group>, ScimError> {
        ScimClient::find_twins(self, name).await
    }
    async fn list_roles(&self) -> Result<Vec<PlatformRole>, ScimError> {
        ScimClient::list_roles(self).await
    }
    async fn read_grants(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, Vec<Grant>>, ScimError> {
        ScimClient::read_grants(self, user_ids).await
    }
    async fn read_group_grants(
        &self,
        group_ids: &[String],
    ) -> Result<HashMap<String, Vec<Grant>>, ScimError> {
        ScimClient::read_group_grants(self, group_ids).await
    }
    async fn find_deleted_users(&self, emails: &[String]) -> Result<Vec<DeletedUser>, ScimError> {
        ScimClient::find_deleted_users(self, emails).await
    }
    async fn read_licenses(&self) -> Result<LiveLicenses, ScimError> {
        ScimClient::read_licenses(self).await
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
    async fn delete(&self, kind: Kind, id: &str, version: Option<&str>) -> Result<(), ScimError> {
        ScimClient::delete(self, kind, id, version).await
    }
    async fn create_role(&self, body: &RoleBody) -> Result<PlatformRole, ScimError> {
        ScimClient::create_role(self, body).await
    }
    async fn update_role(&self, id: &str, body: &RoleBody) -> Result<PlatformRole, ScimError> {
        ScimClient::update_role(self, id, body).await
    }
    async fn delete_role(&self, id: &str) -> Result<(), ScimError> {
        ScimClient::delete_role(self, id).await
    }
    async fn add_grants(&self, user_id: &str, grants: &[GrantPair]) -> Result<(), ScimError> {
        ScimClient::change_grants(self, user_id, true, grants).await
    }
    async fn remove_grants(&self, user_id: &str, grants: &[GrantPair]) -> Result<(), ScimError> {
        ScimClient::change_grants(self, user_id, false, grants).await
    }
    async fn add_group_grants(
        &self,
        group_id: &str,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        ScimClient::add_group_grants(self, group_id, grants).await
    }
    async fn remove_group_grants(
        &self,
        group_id: &str,
        grants: &[GrantPair],
    ) -> Result<(), ScimError> {
        ScimClient::remove_group_grants(self, group_id, grants).await
    }
    async fn restore_user(&self, id: &str, version: u64) -> Result<(), ScimError> {
        ScimClient::restore_user(self, id, version).await
    }
    async fn bulk_operations(&self) -> Option<usize> {
        ScimClient::bulk_operations(self).await
    }
    async fn assign_licenses(
        &self,
        batch: &[LicenseAssignment],
    ) -> Result<Vec<LicenseUpdateStatus>, ScimError> {
        ScimClient::assign_licenses(self, batch).await
    }
}
