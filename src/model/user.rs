//! A user as written in desired state (docs/contract.md §3).
//!
//! Field names are the SCIM attribute names (RFC 7643 §4.1) in camelCase, plus the enterprise
//! (`department`, `division`, `employeeNumber`, `manager`, `dateHire`) and Genesys extension
//! (`routingSkills`, `routingLanguages`) attributes flattened to the top level. An attribute
//! absent from YAML is not managed. Pure data: no I/O, no validation logic.

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::source::PasswordSource;
use super::span::Spanned;
use super::text::Text;

/// One user of the tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// Unique login name; an email address on Genesys Cloud. Matched case-insensitively.
    pub user_name: Spanned<Text>,
    /// Name shown to people. Required on create by Genesys Cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Spanned<Text>>,
    /// Identifier from the system of record (HRIS); preferred for matching live users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Spanned<Text>>,
    /// Whether the account is active. `false` deactivates it (reversible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Spanned<bool>>,
    /// Job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Spanned<Text>>,
    /// Email addresses. When present, the set is managed as a whole (keyed by type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<Spanned<Email>>>,
    /// Phone numbers in E.164 (`+14155550123`) or tel URI (`tel:+1-415-555-0123;ext=12`) form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_numbers: Option<Vec<Spanned<PhoneNumber>>>,
    /// Department (SCIM enterprise extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<Spanned<Text>>,
    /// Division name (SCIM enterprise extension; a Genesys Cloud division on that target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<Spanned<Text>>,
    /// Employee number (SCIM enterprise extension). Always a string: write `"0042"`, not `42`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<Spanned<Text>>,
    /// Hire date, `YYYY-MM-DD` (SCIM enterprise extension as Genesys Cloud defines it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_hire: Option<Spanned<Text>>,
    /// The `userName` of this user's manager, who must also be in desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Spanned<Text>>,
    /// Genesys Cloud routing skills (at most 50), each with a proficiency from 0 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_skills: Option<Vec<Spanned<Proficiency>>>,
    /// Genesys Cloud routing languages (at most 50), each with a proficiency from 0 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_languages: Option<Vec<Spanned<Proficiency>>>,
    /// Roles granted to the user, by role name; optionally limited to divisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Spanned<RoleGrant>>>,
    /// Groups the user belongs to, by group name (the same as listing the user in the group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Spanned<Text>>>,
    /// License tier; the user may only hold roles the license allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<Spanned<Text>>,
    /// Initial password, set only when the user is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Spanned<PasswordSource>>,
    /// Earlier userNames of this user, so that a rename is a patch rather than delete + create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previously: Vec<Spanned<Text>>,
}

/// An email address of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Email {
    /// The address.
    pub value: Text,
    /// Kind of address.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<EmailType>,
    /// Whether this is the user's primary address (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// Email types (RFC 7643 §4.1.2 canonical values).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EmailType {
    /// Work address.
    Work,
    /// Home address.
    Home,
    /// Any other address (on Genesys Cloud: the read-only main address).
    Other,
}

/// A phone number of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneNumber {
    /// The number, in E.164 or tel URI form.
    pub value: Text,
    /// Kind of number.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<PhoneType>,
    /// Whether this is the user's primary number (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// Phone number types: RFC 7643 canonical values plus the ones Genesys Cloud accepts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PhoneType {
    /// Work phone.
    Work,
    /// Second work phone (Genesys Cloud).
    Work2,
    /// Third work phone (Genesys Cloud).
    Work3,
    /// Fourth work phone (Genesys Cloud).
    Work4,
    /// Home phone.
    Home,
    /// Mobile phone.
    Mobile,
    /// Fax.
    Fax,
    /// Pager.
    Pager,
    /// Microsoft Teams number (Genesys Cloud).
    Microsoftteams,
    /// Zoom Phone number (Genesys Cloud).
    Zoomphone,
    /// 8x8 number (Genesys Cloud).
    Eightbyeight,
    /// RingCentral number (Genesys Cloud).
    Ringcentral,
    /// Any other number.
    Other,
}

impl EmailType {
    /// Every type, in declaration order.
    pub const ALL: [EmailType; 3] = [EmailType::Work, EmailType::Home, EmailType::Other];

    /// The type as YAML and SCIM spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EmailType::Work => "work",
            EmailType::Home => "home",
            EmailType::Other => "other",
        }
    }

    /// Whether Genesys Cloud takes this type: `work` or `other` (the Python SDK's
    /// `ScimEmail` model, docs/genesys.md §3; `other` is then the read-only main address).
    #[must_use]
    pub fn on_genesys(self) -> bool {
        matches!(self, EmailType::Work | EmailType::Other)
    }

    /// The type a SCIM `type` names, ignoring case; `None` for one scimctl does not know.
    #[must_use]
    pub fn parse(text: &str) -> Option<EmailType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(text))
    }
}

impl PhoneType {
    /// Whether Genesys Cloud takes this type: all but the RFC 7643 `fax` and `pager` (the
    /// Python SDK's `ScimPhoneNumber` model lists work, work2-4, home, mobile, other and the
    /// four integrations; docs/genesys.md §3).
    #[must_use]
    pub fn on_genesys(self) -> bool {
        !matches!(self, PhoneType::Fax | PhoneType::Pager)
    }

    /// Every type, in declaration order.
    pub const ALL: [PhoneType; 13] = [
        PhoneType::Work,
        PhoneType::Work2,
        PhoneType::Work3,
        PhoneType::Work4,
        PhoneType::Home,
        PhoneType::Mobile,
        PhoneType::Fax,
        PhoneType::Pager,
        PhoneType::Microsoftteams,
        PhoneType::Zoomphone,
        PhoneType::Eightbyeight,
        PhoneType::Ringcentral,
        PhoneType::Other,
    ];

    /// The type as YAML and SCIM spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PhoneType::Work => "work",
            PhoneType::Work2 => "work2",
            PhoneType::Work3 => "work3",
            PhoneType::Work4 => "work4",
            PhoneType::Home => "home",
            PhoneType::Mobile => "mobile",
            PhoneType::Fax => "fax",
            PhoneType::Pager => "pager",
            PhoneType::Microsoftteams => "microsoftteams",
            PhoneType::Zoomphone => "zoomphone",
            PhoneType::Eightbyeight => "eightbyeight",
            PhoneType::Ringcentral => "ringcentral",
            PhoneType::Other => "other",
        }
    }

    /// The type a SCIM `type` names, ignoring case; `None` for one scimctl does not know.
    #[must_use]
    pub fn parse(text: &str) -> Option<PhoneType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(text))
    }
}

#[cfg(test)]
mod type_names {
    use super::{EmailType, PhoneType};

    /// `name` is serde's spelling, and `parse` reads it back in any case.
    #[test]
    fn names_match_serde_and_parse_back() {
        for t in EmailType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
            assert_eq!(EmailType::parse(&t.name().to_uppercase()), Some(t));
        }
        for t in PhoneType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
            assert_eq!(PhoneType::parse(&t.name().to_uppercase()), Some(t));
        }
        assert_eq!(PhoneType::parse("satellite"), None);
    }
}

/// A routing skill or language with its proficiency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proficiency {
    /// Skill or language name (case-sensitive on Genesys Cloud).
    pub name: Text,
    /// Proficiency from 0.0 to 5.0.
    pub proficiency: f64,
}

/// A role held by a user: a role name, or `{name, divisions}` to limit it to divisions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleGrant {
    /// The role's name.
    pub name: Text,
    /// Divisions the grant is limited to; `None` means the target's default scope.
    pub divisions: Option<Vec<Text>>,
}

impl RoleGrant {
    /// A grant of `name` in the default scope.
    #[must_use]
    pub fn named(name: impl Into<Text>) -> RoleGrant {
        RoleGrant {
            name: name.into(),
            divisions: None,
        }
    }
}

/// The two YAML shapes of a [`RoleGrant`]; used for (de)serialization and the JSON Schema.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its JSON Schema is used
enum RoleGrantRepr {
    /// Just the role name.
    Name(String),
    /// The role name with the divisions it applies to.
    Scoped(ScopedGrant),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScopedGrant {
    /// The role's name.
    name: Text,
    /// Divisions the grant is limited to.
    divisions: Vec<Text>,
}

impl Serialize for RoleGrant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.divisions {
            None => serializer.serialize_str(&self.name),
            Some(divisions) => ScopedGrant {
                name: self.name.clone(),
                divisions: divisions.clone(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RoleGrant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RoleGrant;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a role name or {name, divisions}")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RoleGrant, E> {
                Ok(RoleGrant::named(value))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoleGrant, A::Error> {
                let scoped = ScopedGrant::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RoleGrant {
                    name: scoped.name,
                    divisions: Some(scoped.divisions),
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for RoleGrant {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RoleGrant".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RoleGrantRepr::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 100,000 users are one list of these: keep the struct from growing unnoticed (each Text
    // is 8 bytes; each Spanned value adds a 12-byte position).
    #[test]
    fn user_stays_compact() {
        assert!(
            size_of::<Spanned<User>>() <= 488,
            "{}",
            size_of::<Spanned<User>>()
        );
        assert_eq!(size_of::<Option<Spanned<Text>>>(), 24);
    }
}
