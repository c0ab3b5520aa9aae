//! `scimctl.yaml`: the target, ownership, prune policy, safety thresholds, protected principals,
//! policy options and `watch` settings (docs/contract.md §3–§5). Pure data with documented defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::{SecretSource, ValueSource};
use super::span::Spanned;

/// The whole of `scimctl.yaml`. Every section is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Where the tenant is. Default: the embedded sandbox in `.scimctl/sandbox.json` beside the
    /// desired-state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Which live objects scimctl may change, per kind.
    #[serde(default)]
    pub ownership: Ownership,
    /// Whether multi-valued collections are authoritative or additive.
    #[serde(default)]
    pub collections: Collections,
    /// What happens to owned objects that are absent from desired state.
    #[serde(default)]
    pub prune: Prune,
    /// Brakes on destructive plans.
    #[serde(default)]
    pub safety: Safety,
    /// Principals that are never changed or pruned, even if their YAML disappears.
    #[serde(default)]
    pub protected: Protected,
    /// Organisation policy checked by `validate`.
    #[serde(default)]
    pub policy: Policy,
    /// `scimctl watch`: outbound webhooks and the inbound HRIS termination webhook.
    #[serde(default)]
    pub watch: Watch,
    /// Where `{fromFile: PATH}` secrets may be read from.
    #[serde(default)]
    pub secrets: Secrets,
    /// What live users are matched on besides `userName`. Default: the SCIM `externalId`.
    #[serde(default)]
    pub match_by: MatchBy,
}

/// What live users are matched on besides `userName`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchBy {
    /// Genesys Cloud only: match users on the value of the `externalIds` entry (in the
    /// Genesys user extension) whose `authority` is this name, compared exactly, instead of
    /// the SCIM `externalId`; a user's YAML `externalId` is written as that entry and the
    /// SCIM `externalId` is left to whoever owns it. A config error on other targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_authority: Option<Spanned<String>>,
}

/// Where `{fromFile: PATH}` secrets may be read from: the desired-state directory, and these
/// directories (for example a mounted secrets folder). Symlinks that leave them are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secrets {
    /// More directories secret files may be in, relative to the desired-state directory or
    /// absolute.
    #[serde(default)]
    pub allowed_dirs: Vec<Spanned<String>>,
}

/// The tenant scimctl reconciles, selected by `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Target {
    /// The embedded SCIM store kept in a local JSON file (no tenant needed).
    Sandbox {
        /// State file, relative to `scimctl.yaml`. Default `.scimctl/sandbox.json` beside the
        /// desired-state directory (in its parent), whatever the working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// Any SCIM 2.0 (RFC 7644) server.
    Scim {
        /// Base URL, e.g. `https://idp.example.com/scim/v2`. `https://` unless loopback.
        url: String,
        /// Static bearer token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<SecretSource>,
        /// OAuth2 client credentials, instead of a static token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oauth: Option<OAuthClient>,
        /// Client-side rate limit in requests per minute.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requests_per_minute: Option<u32>,
    },
    /// Genesys Cloud: SCIM for users and memberships, Platform API for groups and roles.
    Genesys {
        /// Region domain, e.g. `mypurecloud.com` or `euw2.pure.cloud`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// OAuth client id.
        client_id: ValueSource,
        /// OAuth client secret.
        client_secret: SecretSource,
        /// API base URL override (tests, private environments).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
        /// Login base URL override (tests, private environments).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login_url: Option<String>,
        /// Client-side rate limit in requests per minute (Genesys default: 300 per token).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requests_per_minute: Option<u32>,
    },
}

/// OAuth2 client-credentials settings for a generic SCIM target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthClient {
    /// Token endpoint URL.
    pub token_url: String,
    /// Client id.
    pub client_id: ValueSource,
    /// Client secret.
    pub client_secret: SecretSource,
    /// Space-separated scopes to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Ownership per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ownership {
    /// Users scimctl owns. Default `listed`.
    #[serde(default)]
    pub users: Spanned<OwnershipMode>,
    /// Groups scimctl owns. Default `listed`.
    #[serde(default)]
    pub groups: Spanned<OwnershipMode>,
    /// Roles scimctl owns. Default `listed`.
    #[serde(default)]
    pub roles: Spanned<OwnershipMode>,
    /// Genesys Cloud licenses of the users desired state names and gives a `license`:
    /// `listed` (default) manages only the license definitions some YAML license maps
    /// (`genesysLicense`), `all` removes every other license such a user holds too, a
    /// selector manages the definitions whose id it selects.
    #[serde(default)]
    pub licenses: Spanned<OwnershipMode>,
}

/// How much of the live tenant scimctl owns for one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OwnershipMode {
    /// Only objects named in desired state are touched.
    #[default]
    Listed,
    /// The whole tenant is authoritative: live objects absent from YAML are pruned.
    All,
    /// Objects matching the selector are owned; absent ones among them are pruned.
    Selector(Selector),
}

/// Chooses owned live objects by their keys. All given conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// `userName` (users) or `displayName` (groups, roles) ends with this, case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_suffix: Option<String>,
    /// `userName` / `displayName` starts with this, case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// `externalId` starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_prefix: Option<String>,
}

impl Selector {
    /// Whether no condition is set (such a selector would own everything by accident).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name_suffix.is_none()
            && self.name_prefix.is_none()
            && self.external_id_prefix.is_none()
    }
}

/// Per-collection semantics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Collections {
    /// Group members: `authoritative` (default) removes members not in YAML.
    #[serde(default = "CollectionMode::authoritative")]
    pub group_members: CollectionMode,
    /// User roles: `additive` (default) never removes a role held live, so an existing admin's
    /// roles are not stripped by accident.
    #[serde(default = "CollectionMode::additive")]
    pub user_roles: CollectionMode,
    /// A managed role's permissions (Genesys Cloud): `additive` (default) keeps live
    /// permissions YAML does not cover, such as those Genesys backfills into existing roles;
    /// `authoritative` removes them, so a permission dropped from YAML is taken away.
    #[serde(default = "CollectionMode::additive")]
    pub role_permissions: CollectionMode,
}

impl Default for Collections {
    fn default() -> Self {
        Collections {
            group_members: CollectionMode::Authoritative,
            user_roles: CollectionMode::Additive,
            role_permissions: CollectionMode::Additive,
        }
    }
}

/// Whether a multi-valued collection is owned as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CollectionMode {
    /// Live entries absent from YAML are removed.
    #[default]
    Authoritative,
    /// Entries in YAML are added; live entries are never removed.
    Additive,
}

impl CollectionMode {
    fn authoritative() -> CollectionMode {
        CollectionMode::Authoritative
    }
    fn additive() -> CollectionMode {
        CollectionMode::Additive
    }
}

/// Prune policy for owned objects absent from desired state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prune {
    /// Users: `deactivate` (default, reversible), `delete` or `none`.
    #[serde(default)]
    pub users: UserPrune,
    /// Groups: `delete` (default) or `none`.
    #[serde(default)]
    pub groups: GroupPrune,
}

impl Default for Prune {
    fn default() -> Self {
        Prune {
            users: UserPrune::Deactivate,
            groups: GroupPrune::Delete,
        }
    }
}

/// What happens to an owned user absent from desired state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UserPrune {
    /// Set `active: false` (a deleted Genesys Cloud user loses its roles).
    #[default]
    Deactivate,
    /// Delete the user.
    Delete,
    /// Leave the user alone.
    None,
}

/// What happens to an owned group absent from desired state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GroupPrune {
    /// Delete the group.
    #[default]
    Delete,
    /// Leave the group alone.
    None,
}

/// Brakes evaluated in the plan; destructive changes above them are `BLOCKED` unless
/// `--allow-deletes N` lifts the brake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Safety {
    /// Most deletes + deactivations allowed in one plan, as a percentage of the managed set
    /// (0–100). Default 10.
    #[serde(default = "Safety::default_percent")]
    pub max_delete_percent: Spanned<u32>,
    /// Most deletes + deactivations allowed in one plan. Default 25.
    #[serde(default = "Safety::default_count")]
    pub max_delete_count: Spanned<u32>,
    /// The userName of the account scimctl's credentials belong to, when the target cannot
    /// say (`GET /Me` unsupported): never deactivated, deleted or stripped of an admin role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_as: Option<Spanned<String>>,
}

impl Safety {
    fn default_percent() -> Spanned<u32> {
        Spanned::unspanned(10)
    }
    fn default_count() -> Spanned<u32> {
        Spanned::unspanned(25)
    }
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_delete_percent: Safety::default_percent(),
            max_delete_count: Safety::default_count(),
            runs_as: None,
        }
    }
}

/// Principals scimctl never changes or prunes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Protected {
    /// userNames (case-insensitive).
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
    /// Group displayNames (case-insensitive).
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
}

/// Organisation policy enforced by validation and the planner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Permission patterns no role may grant (e.g. `authorization:*:*`) unless the role carries
    /// `allowDeniedPermissions` with a written reason.
    #[serde(default)]
    pub denied_permissions: Vec<Spanned<String>>,
    /// Deepest allowed group nesting, counting the outermost group as 1. Default 5.
    #[serde(default = "Policy::default_depth")]
    pub max_group_depth: Spanned<u32>,
    /// Roles that make a user an administrator; the plan never removes the last holder.
    #[serde(default)]
    pub admin_roles: Vec<Spanned<String>>,
    /// The organisation's default roles, which every new user is given (Genesys Cloud:
    /// `employee`, the default). Under `collections.userRoles: authoritative` a user keeps
    /// them even when its `roles:` does not list them; only `roles: []` takes them away,
    /// with a plan warning naming each. `[]` turns the guard off.
    #[serde(default = "Policy::default_roles")]
    pub default_roles: Vec<Spanned<String>>,
    /// The complexity every `fromEnv`/`fromFile` password must have (`validate` checks each
    /// source; the password-sync endpoint each password it receives).
    #[serde(default)]
    pub password: PasswordRules,
}

/// `policy.password`: at least `minLength` and at most `maxLength` characters, and at least
/// so many uppercase letters, lowercase letters, digits and symbols (anything else that is
/// not whitespace). Defaults: 12, 1, 1, 1, 1, 128.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordRules {
    /// Fewest characters (default 12).
    #[serde(default = "PasswordRules::default_min")]
    pub min_length: u32,
    /// Fewest uppercase letters (default 1).
    #[serde(default = "PasswordRules::one")]
    pub upper: u32,
    /// Fewest lowercase letters (default 1).
    #[serde(default = "PasswordRules::one")]
    pub lower: u32,
    /// Fewest digits (default 1).
    #[serde(default = "PasswordRules::one")]
    pub digit: u32,
    /// Fewest symbols (default 1).
    #[serde(default = "PasswordRules::one")]
    pub symbol: u32,
    /// Most characters (default 128).
    #[serde(default = "PasswordRules::default_max")]
    pub max_length: u32,
}

impl PasswordRules {
    fn default_min() -> u32 {
        12
    }

    fn one() -> u32 {
        1
    }

    fn default_max() -> u32 {
        128
    }
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            min_length: PasswordRules::default_min(),
            upper: 1,
            lower: 1,
            digit: 1,
            symbol: 1,
            max_length: PasswordRules::default_max(),
        }
    }
}

impl Policy {
    /// The default for `maxGroupDepth`.
    pub const DEFAULT_MAX_GROUP_DEPTH: u32 = 5;

    fn default_roles() -> Vec<Spanned<String>> {
        vec![Spanned::unspanned("employee".to_owned())]
    }

    fn default_depth() -> Spanned<u32> {
        Spanned::unspanned(Policy::DEFAULT_MAX_GROUP_DEPTH)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            denied_permissions: Vec::new(),
            max_group_depth: Policy::default_depth(),
            admin_roles: Vec::new(),
            default_roles: Policy::default_roles(),
            password: PasswordRules::default(),
        }
    }
}

/// Settings of `scimctl watch`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Watch {
    /// Signed JSON events about applied changes, drift, blocked deletes and quarantine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Spanned<WebhookSettings>>,
    /// The inbound HRIS termination webhook (`POST /webhooks/hris/termination`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hris: Option<Spanned<InboundWebhook>>,
    /// The inbound password-sync endpoint (`POST /webhooks/password`), signed like the HRIS
    /// endpoint with a secret of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_sync: Option<Spanned<InboundWebhook>>,
}

/// Outbound webhooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSettings {
    /// Receivers; every event goes to each. `https://` unless loopback.
    pub urls: Vec<Spanned<String>>,
    /// Key of the `X-Scimctl-Signature` HMAC: `{fromEnv: VAR}` or `{fromFile: PATH}`.
    /// Required, so that receivers can tell scimctl's events from anyone else's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Spanned<SecretSource>>,
}

/// An inbound signed webhook (HRIS terminations, password sync): its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundWebhook {
    /// Key the sender signs requests with: `{fromEnv: VAR}` or `{fromFile: PATH}`.
    pub secret: Spanned<SecretSource>,
}
