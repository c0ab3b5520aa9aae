//! Genesys Cloud licenses, which only the Platform API manages (issue 18, item 1):
//! `GET /api/v2/license/definitions` (a plain list; a definition has an id and no name) and
//! `GET /api/v2/license/users` (paged `UserLicenses`, `{id, licenses[]}`) [.NET/PY SDK
//! LicenseApi.md, LicenseDefinition.md, UserLicenses.md]. Both need
//! `authorization:license:view` or `authorization:grant:add`.
//!
//! UNCONFIRMED: whether the users' page lists every user or only those holding a license;
//! nothing here reads absence from the page as anything but "holds none", which is right
//! either way. The largest `pageSize` it takes is not documented either; the Platform page
//! size used everywhere (100) is what the simulator allows.

use reqwest::Method;

use super::client::ScimClient;
use super::error::ScimError;
use super::platform::Entity;
pub use crate::model::tenant::{LicenseDefinition, UserLicenses};

/// The org's license definitions.
pub const DEFINITIONS_PATH: &str = "/api/v2/license/definitions";
/// The users' licenses, paged.
pub const USERS_PATH: &str = "/api/v2/license/users";

impl Entity for UserLicenses {
    fn entity_id(&self) -> &str {
        &self.id
    }
}

impl ScimClient {
    /// Every license definition of the org.
    pub async fn list_license_definitions(&self) -> Result<Vec<LicenseDefinition>, ScimError> {
        self.platform_json(Method::GET, DEFINITIONS_PATH, &[], None::<&()>, true)
            .await
    }

    /// The licenses of every user that holds one (all pages, checked for repeats and
    /// against the total as every Platform list is).
    pub async fn list_user_licenses(&self) -> Result<Vec<UserLicenses>, ScimError> {
        self.platform_list::<UserLicenses>(USERS_PATH, &[]).await
    }
}
