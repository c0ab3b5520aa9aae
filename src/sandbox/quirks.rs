//! Opt-in quirks: legal or common behaviours of other SCIM servers, off by default so the
//! sandbox stays strict and conformant (`scimctl sandbox serve --quirk NAME`, repeatable).
//! Each one stands in for something seen in the field (issue 21, "Interop"), so the client's
//! coping can be tested without a second server.

use std::fmt;
use std::str::FromStr;

/// One server behaviour the sandbox can imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quirk {
    /// `/Schemas` does not list the common attributes `id`, `externalId` and `meta`
    /// (RFC 7643 §3.1 lets a schema leave them out); the server still stores them.
    NoCommonAttributes,
    /// `/ServiceProviderConfig` says `filter.supported: false`, and every `filter=` (and a
    /// `/.search` with a filter) is refused with 501.
    NoFilter,
    /// The server does not store an email's `type`: `/Schemas` does not list it, and users
    /// are answered with their emails untyped.
    NoEmailType,
    /// A group create is answered 201 but its `members` are dropped.
    DropGroupMembersOnCreate,
    /// Ids are small integers counted per resource type (`"1"`, `"2"`, ... for users and,
    /// separately, for groups), as with a per-table SQL key, so a user and a group can share
    /// an id; group members carry `type` and `$ref`, which tell them apart.
    IntegerIds,
    /// PATCH paths with a value filter (`members[value eq "x"]`, `emails[type eq "work"]`)
    /// are refused with 501 and the whole request rolled back; `remove` of `members` with a
    /// list of members as its value removes just those (the form Entra ID sends).
    NoValueFilterPatch,
}

impl Quirk {
    /// Every quirk, in the order the CLI lists them.
    pub const ALL: [Quirk; 6] = [
        Quirk::NoCommonAttributes,
        Quirk::NoFilter,
        Quirk::NoEmailType,
        Quirk::DropGroupMembersOnCreate,
        Quirk::IntegerIds,
        Quirk::NoValueFilterPatch,
    ];

    /// The name given to `--quirk`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Quirk::NoCommonAttributes => "no-common-attributes",
            Quirk::NoFilter => "no-filter",
            Quirk::NoEmailType => "no-email-type",
            Quirk::DropGroupMembersOnCreate => "drop-group-members-on-create",
            Quirk::IntegerIds => "integer-ids",
            Quirk::NoValueFilterPatch => "no-value-filter-patch",
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quirk {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quirk::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Quirk::ALL.iter().map(|q| q.name()).collect();
                format!("unknown quirk `{s}` (known: {})", names.join(", "))
            })
    }
}

/// The set of quirks a sandbox runs with (empty: strict and conformant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quirks(Vec<Quirk>);

impl Quirks {
    /// Quirks from a list (duplicates are harmless).
    #[must_use]
    pub fn new(quirks: impl IntoIterator<Item = Quirk>) -> Self {
        let mut all: Vec<Quirk> = quirks.into_iter().collect();
        all.sort_unstable();
        all.dedup();
        Quirks(all)
    }

    /// Whether `quirk` is on.
    #[must_use]
    pub fn has(&self, quirk: Quirk) -> bool {
        self.0.contains(&quirk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for quirk in Quirk::ALL {
            assert_eq!(quirk.name().parse::<Quirk>(), Ok(quirk));
        }
        assert!("no-such".parse::<Quirk>().is_err());
        let quirks = Quirks::new([Quirk::NoFilter, Quirk::NoFilter]);
        assert!(quirks.has(Quirk::NoFilter));
        assert!(!quirks.has(Quirk::NoEmailType));
        assert!(!Quirks::default().has(Quirk::NoFilter));
    }
}
