//! Attribute types (RFC 7643 §2.3, §2.4): what a create, replace or PATCH writes is checked
//! against the sandbox's own `/Schemas` (module `discovery`), so a value of the wrong type is
//! refused with 400 `invalidValue` (RFC 7644 §3.12) instead of being stored. A multi-valued
//! attribute takes an array whose every value has the attribute's type, a single-valued one
//! never takes an array, and a complex value is an object whose sub-attributes are checked in
//! turn. An extension (a key that is one of the resource type's schema extension URNs) is
//! checked against its own schema.
//!
//! What the schemas do not list is not checked, since the sandbox keeps unknown attributes:
//! unknown attributes and sub-attributes, extensions the resource type does not name, and the
//! common attributes `id`, `meta` and `schemas` (`resource` and `patch` handle those). `null`
//! is an unassigned value (RFC 7643 §2.5) and always passes, except as one value of an array.
//! Checking runs after `resource::normalize`, so the `"True"`/`"False"` strings it turns into
//! booleans pass.

use serde_json::{Map, Value};

use super::clock::parse_rfc3339;
use super::discovery::Discovery;
use super::error::ScimError;
use super::resource::{ResourceKind, is_urn};

/// The data types of RFC 7643 §2.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Reference,
    Binary,
    Complex,
}

impl Kind {
    /// From a schema's `type`; `None` for a type the checker does not know (left unchecked).
    fn parse(name: &str) -> Option<Kind> {
        let kinds = [
            ("string", Kind::String),
            ("boolean", Kind::Boolean),
            ("decimal", Kind::Decimal),
            ("integer", Kind::Integer),
            ("dateTime", Kind::DateTime),
            ("reference", Kind::Reference),
            ("binary", Kind::Binary),
            ("complex", Kind::Complex),
        ];
        kinds
            .into_iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, kind)| kind)
    }

    /// What a value of this type is, for messages.
    fn expected(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Boolean => "a boolean",
            Kind::Decimal => "a number",
            Kind::Integer => "an integer",
            Kind::DateTime => "a dateTime (an RFC 3339 string such as 2026-01-23T04:56:22Z)",
            Kind::Reference => "a reference (a string)",
            Kind::Binary => "binary data (a base64 string)",
            Kind::Complex => "a complex value (an object)",
        }
    }

    /// Whether `value` is a value of this simple type (complex values are walked instead).
    fn accepts(self, value: &Value) -> bool {
        match self {
            Kind::String | Kind::Reference => value.is_string(),
            Kind::Boolean => value.is_boolean(),
            Kind::Decimal => value.is_number(),
            Kind::Integer => value.is_i64() || value.is_u64(),
            Kind::DateTime => value.as_str().is_some_and(is_date_time),
            Kind::Binary => value.as_str().is_some_and(is_base64),
            Kind::Complex => value.is_object(),
        }
    }
}

/// One attribute definition, as `/Schemas` lists it.
#[derive(Debug)]
struct Attribute {
    name: String,
    kind: Kind,
    multi: bool,
    subs: Vec<Attribute>,
}

/// The definitions in a schema's `attributes` (or an attribute's `subAttributes`); entries
/// without a name or with a type the checker does not know are left out, and so unchecked.
fn attributes(list: &Value) -> Vec<Attribute> {
    let Some(list) = list.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|def| {
            Some(Attribute {
                name: def["name"].as_str()?.to_owned(),
                kind: Kind::parse(def["type"].as_str()?)?,
                multi: def["multiValued"].as_bool().unwrap_or(false),
                subs: attributes(&def["subAttributes"]),
            })
        })
        .collect()
}

/// The definition named `name`, ignoring case (RFC 7643 §2.1).
fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The core schema and the schema extensions of one resource type.
#[derive(Debug, Default)]
struct ResourceSchema {
    core: Vec<Attribute>,
    extensions: Vec<(String, Vec<Attribute>)>,
}

impl ResourceSchema {
    fn extension(&self, urn: &str) -> Option<&[Attribute]> {
        self.extensions
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(urn))
            .map(|(_, attributes)| attributes.as_slice())
    }
}

/// The attribute definitions of users and groups, compiled from a sandbox's discovery
/// documents (so quirks that change `/Schemas` change what is checked).
#[derive(Debug)]
pub(crate) struct Types {
    users: ResourceSchema,
    groups: ResourceSchema,
}

impl Types {
    /// From `/ResourceTypes` (which schema and extensions each resource type has) and
    /// `/Schemas` (their attributes).
    pub(crate) fn new(discovery: &Discovery) -> Self {
        let mut types = Types {
            users: ResourceSchema::default(),
            groups: ResourceSchema::default(),
        };
        for resource_type in &discovery.resource_types {
            let target = match resource_type["id"].as_str() {
                Some(id) if id == ResourceKind::User.resource_type() => &mut types.users,
                Some(id) if id == ResourceKind::Group.resource_type() => &mut types.groups,
                _ => continue,
            };
            if let Some(core) = resource_type["schema"]
                .as_str()
                .and_then(|urn| discovery.schema(urn))
            {
                target.core = attributes(&core["attributes"]);
            }
            let extensions = resource_type["schemaExtensions"].as_array();
            for urn in extensions
                .into_iter()
                .flatten()
                .filter_map(|e| e["schema"].as_str())
            {
                if let Some(schema) = discovery.schema(urn) {
                    let defs = attributes(&schema["attributes"]);
                    target.extensions.push((urn.to_owned(), defs));
                }
            }
        }
        types
    }

    fn schema(&self, kind: ResourceKind) -> &ResourceSchema {
        match kind {
            ResourceKind::User => &self.users,
            ResourceKind::Group => &self.groups,
        }
    }

    /// Checks every attribute of a resource about to be created or replaced.
    pub(crate) fn check(
        &self,
        doc: &Map<String, Value>,
        kind: ResourceKind,
    ) -> Result<(), ScimError> {
        self.check_against(doc, None, kind)
    }

    /// Checks what a PATCH changed: the attributes of `new` (and of its extensions) that are
    /// not in `old` with the same value. A value already stored (seeded, or kept from before
    /// the sandbox checked types) does not hold back a PATCH of something else.
    pub(crate) fn check_changes(
        &self,
        new: &Map<String, Value>,
        old: &Map<String, Value>,
        kind: ResourceKind,
    ) -> Result<(), ScimError> {
        self.check_against(new, Some(old), kind)
    }

    fn check_against(
        &self,
        doc: &Map<String, Value>,
        old: Option<&Map<String, Value>>,
        kind: ResourceKind,
    ) -> Result<(), ScimError> {
        let schema = self.schema(kind);
        for (key, value) in doc {
            let before = old.and_then(|old| old.get(key));
            if before == Some(value) {
                continue;
            }
            if is_urn(key) {
                let Some(extension) = schema.extension(key) else {
                    continue;
                };
                match value {
                    Value::Null => {}
                    Value::Object(inner) => {
                        let before = before.and_then(Value::as_object);
                        check_members(extension, inner, before, &format!("{key}:"))?;
                    }
                    other => {
                        return Err(wrong(key, "an object of the extension's attributes", other));
                    }
                }
            } else if let Some(attribute) = find(&schema.core, key) {
                check_value(attribute, value, key)?;
            }
        }
        Ok(())
    }
}

/// Checks the attributes of an extension (named `prefix` + name in messages) that changed.
fn check_members(
    defs: &[Attribute],
    values: &Map<String, Value>,
    before: Option<&Map<String, Value>>,
    prefix: &str,
) -> Result<(), ScimError> {
    for (key, value) in values {
        if before.and_then(|b| b.get(key)) == Some(value) {
            continue;
        }
        if let Some(attribute) = find(defs, key) {
            check_value(attribute, value, &format!("{prefix}{key}"))?;
        }
    }
    Ok(())
}

/// Checks one attribute's value, `path` naming it in messages.
fn check_value(attribute: &Attribute, value: &Value, path: &str) -> Result<(), ScimError> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) if attribute.multi => {
            for (i, item) in items.iter().enumerate() {
                check_one(attribute, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if attribute.multi => Err(ScimError::invalid_value(format!(
            "{path} is multi-valued: it takes an array of {}, not {}",
            attribute.kind.expected(),
            describe(value)
        ))),
        Value::Array(_) => Err(ScimError::invalid_value(format!(
            "{path} is single-valued: it takes {}, not an array",
            attribute.kind.expected()
        ))),
        _ => check_one(attribute, value, path),
    }
}

/// Checks one value (of a multi-valued attribute, or the single value) against the type.
fn check_one(attribute: &Attribute, value: &Value, path: &str) -> Result<(), ScimError> {
    if !attribute.kind.accepts(value) {
        return Err(wrong(path, attribute.kind.expected(), value));
    }
    if let Value::Object(fields) = value {
        for (key, field) in fields {
            if let Some(sub) = find(&attribute.subs, key) {
                check_value(sub, field, &format!("{path}.{key}"))?;
            }
        }
    }
    Ok(())
}

fn wrong(path: &str, expected: &str, value: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "{path} must be {expected}, not {}",
        describe(value)
    ))
}

/// A short description of a JSON value for messages: scalars as written, unless long.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::String(s) if s.chars().count() > 40 => "a string".to_owned(),
        other => other.to_string(),
    }
}

/// An xsd:dateTime as RFC 3339 writes it (RFC 7643 §2.3.5): date, `T`, time, optional
/// fraction, and `Z` or an offset, which xsd lets a value leave out. The day must exist.
fn is_date_time(text: &str) -> bool {
    if parse_rfc3339(text).is_none() && parse_rfc3339(&format!("{text}Z")).is_none() {
        return false;
    }
    // parse_rfc3339 checked the shape; it lets any day up to 31 through.
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// Base64 with the RFC 4648 §4 alphabet, as RFC 7643 §2.3.6 asks: no line breaks or other
/// characters, and padding, when present, to a multiple of four.
fn is_base64(text: &str) -> bool {
    let data = text.trim_end_matches('=');
    let padding = text.len() - data.len();
    data.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && data.len() % 4 != 1
        && padding <= 2
        && (padding == 0 || text.len().is_multiple_of(4))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sandbox::quirks::{Quirk, Quirks};
    use crate::sandbox::resource::{ENTERPRISE_URN, GENESYS_URN};

    fn types(quirks: &Quirks) -> Types {
        Types::new(&Discovery::new("http://x/scim/v2", false, quirks))
    }

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    /// The message of the refusal, asserting it is 400 `invalidValue`.
    fn refused(result: Result<(), ScimError>) -> String {
        let error = result.expect_err("refused");
        assert_eq!((error.status, error.scim_type), (400, Some("invalidValue")));
        error.detail
    }

    fn user(types: &Types, doc: Value) -> Result<(), ScimError> {
        types.check(&obj(doc), ResourceKind::User)
    }

    // Each simple type takes its own values and refuses the others.
    #[test]
    fn simple_types() {
        let cases: [(Kind, &[Value], &[Value]); 7] = [
            (
                Kind::String,
                &[json!("x"), json!("")],
                &[json!(7), json!(true), json!({})],
            ),
            (
                Kind::Boolean,
                &[json!(true), json!(false)],
                &[json!("yes"), json!(1)],
            ),
            (
                Kind::Decimal,
                &[json!(1.5), json!(2), json!(-3)],
                &[json!("1.5"), json!(false)],
            ),
            (
                Kind::Integer,
                &[json!(2), json!(-3), json!(u64::MAX)],
                &[json!(1.5), json!("2")],
            ),
            (
                Kind::DateTime,
                &[
                    json!("2024-02-29T12:34:56Z"),
                    json!("2026-01-23T04:56:22.123+02:00"),
                    json!("2026-01-23T04:56:22"),
                ],
                &[
                    json!("2023-02-29T12:34:56Z"),
                    json!("2026-04-31T00:00:00Z"),
                    json!("2026-01-23"),
                    json!("yesterday"),
                    json!(1_700_000_000),
                ],
            ),
            (
                Kind::Reference,
                &[json!("https://x/Users/1")],
                &[json!(1), json!({"$ref": "x"})],
            ),
            (
                Kind::Binary,
                &[
                    json!("TWFu"),
                    json!("TWE="),
                    json!("TQ=="),
                    json!("TWFuTQ"),
                    json!(""),
                ],
                &[
                    json!("T"),
                    json!("TWFuT"),
                    json!("TQ="),
                    json!("TW=u"),
                    json!("TW\nFu"),
                    json!("a-b_"),
                    json!(3),
                ],
            ),
        ];
        for (kind, good, bad) in cases {
            for value in good {
                assert!(kind.accepts(value), "{kind:?} accepts {value}");
            }
            for value in bad {
                assert!(!kind.accepts(value), "{kind:?} refuses {value}");
            }
        }
        assert_eq!(Kind::parse("DATETIME"), Some(Kind::DateTime));
        assert_eq!(Kind::parse("sometype"), None);
    }

    // Users: right types pass, every wrong one is refused naming where it is.
    #[test]
    fn user_attributes() {
        let t = types(&Quirks::default());
        user(
            &t,
            json!({
                "userName": "a", "active": true, "name": {"givenName": "A", "Custom": 1},
                "emails": [{"value": "a@x", "type": "work", "primary": true}],
                "profileUrl": "https://x/a", "x-unknown": [1, {"a": 2}], "schemas": ["s"],
                "addresses": [{"locality": "Oslo", "primary": false}], "title": null,
            }),
        )
        .expect("valid");
        let cases = [
            (json!({"active": 7}), "active must be a boolean, not 7"),
            (
                json!({"displayName": 7}),
                "displayName must be a string, not 7",
            ),
            (
                json!({"name": "x"}),
                "name must be a complex value (an object), not \"x\"",
            ),
            (
                json!({"name": {"givenName": ["A"]}}),
                "name.givenName is single-valued",
            ),
            (
                json!({"name": {"familyName": false}}),
                "name.familyName must be a string",
            ),
            (json!({"emails": "x"}), "emails is multi-valued"),
            (
                json!({"emails": {"value": "a@x"}}),
                "emails is multi-valued",
            ),
            (
                json!({"emails": ["a@x"]}),
                "emails[0] must be a complex value",
            ),
            (
                json!({"emails": [{"value": "a@x"}, null]}),
                "emails[1] must be",
            ),
            (
                json!({"emails": [{"value": 7}]}),
                "emails[0].value must be a string",
            ),
            (
                json!({"phoneNumbers": [{"value": "1", "primary": "yes"}]}),
                "phoneNumbers[0].primary",
            ),
            (json!({"profileUrl": 3}), "profileUrl must be a reference"),
            (json!({"userName": ["a"]}), "userName is single-valued"),
        ];
        for (doc, message) in cases {
            let detail = refused(user(&t, doc.clone()));
            assert!(detail.starts_with(message), "{doc}: {detail}");
        }
    }

    // Groups: members are complex and multi-valued; the user schema does not apply.
    #[test]
    fn group_attributes() {
        let t = types(&Quirks::default());
        let group = |doc: Value| t.check(&obj(doc), ResourceKind::Group);
        group(
            json!({"displayName": "g", "members": [{"value": "1", "$ref": "u", "type": "User"}],
            "active": "not a group attribute", "description": "d"}),
        )
        .expect("valid");
        assert!(refused(group(json!({"members": [{"value": 1}]}))).starts_with("members[0].value"));
        assert!(refused(group(json!({"description": {}}))).starts_with("description must be"));
    }

    // Extensions are checked against their own schemas; an unknown extension is not.
    #[test]
    fn extensions() {
        let t = types(&Quirks::default());
        user(
            &t,
            json!({
                ENTERPRISE_URN: {"department": "Ops", "manager": {"value": "m"}, "extra": 1},
                GENESYS_URN: {"routingSkills": [{"name": "s", "proficiency": 4.5}]},
                "urn:example:other": {"department": 7},
            }),
        )
        .expect("valid");
        let lower = ENTERPRISE_URN.to_lowercase();
        for (doc, message) in [
            (
                json!({ENTERPRISE_URN: {"department": 7}}),
                format!("{ENTERPRISE_URN}:department must be a string"),
            ),
            (
                json!({lower.clone(): {"manager": "m"}}),
                format!("{lower}:manager must be a complex"),
            ),
            (
                json!({ENTERPRISE_URN: {"manager": {"value": 1}}}),
                format!("{ENTERPRISE_URN}:manager.value"),
            ),
            (
                json!({GENESYS_URN: {"routingSkills": [{"proficiency": "high"}]}}),
                format!("{GENESYS_URN}:routingSkills[0].proficiency must be a number"),
            ),
            (
                json!({ENTERPRISE_URN: "Ops"}),
                format!("{ENTERPRISE_URN} must be an object"),
            ),
        ] {
            let detail = refused(user(&t, doc.clone()));
            assert!(detail.starts_with(&message), "{doc}: {detail}");
        }
        // Groups have no extensions: the enterprise URN is unknown there.
        t.check(
            &obj(json!({ENTERPRISE_URN: {"department": 7}})),
            ResourceKind::Group,
        )
        .expect("unchecked");
    }

    // A PATCH is checked on what it changed; an old value it did not touch is left alone.
    #[test]
    fn changes_only() {
        let t = types(&Quirks::default());
        let old = obj(json!({"userName": "a", "title": 7, ENTERPRISE_URN: {"division": 1}}));
        let mut new = old.clone();
        new.insert("nickName".into(), json!("n"));
        new[ENTERPRISE_URN]["department"] = json!("Ops");
        t.check_changes(&new, &old, ResourceKind::User)
            .expect("untouched values pass");
        new[ENTERPRISE_URN]["department"] = json!(false);
        let detail = refused(t.check_changes(&new, &old, ResourceKind::User));
        assert!(
            detail.starts_with(&format!("{ENTERPRISE_URN}:department")),
            "{detail}"
        );
        new[ENTERPRISE_URN]["department"] = json!("Ops");
        new.insert("title".into(), json!(8));
        assert!(refused(t.check_changes(&new, &old, ResourceKind::User)).starts_with("title"));
        assert!(
            t.check(&old, ResourceKind::User).is_err(),
            "a full check sees the old value"
        );
    }

    // Quirks that change /Schemas change what is checked: with no-email-type an email's type
    // is an unknown sub-attribute, and with no-common-attributes externalId is unlisted.
    #[test]
    fn quirky_schemas() {
        let doc = json!({"emails": [{"value": "a@x", "type": 7}], "externalId": 7});
        let strict = types(&Quirks::default());
        assert!(refused(user(&strict, doc.clone())).starts_with("emails[0].type"));
        let quirky = types(&Quirks::new([
            Quirk::NoEmailType,
            Quirk::NoCommonAttributes,
        ]));
        user(&quirky, doc).expect("unlisted attributes are not checked");
        let bad_value = json!({"emails": [{"value": 7, "type": "work"}]});
        assert!(refused(user(&quirky, bad_value)).starts_with("emails[0].value"));
    }
}
