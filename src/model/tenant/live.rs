//! A live resource as a snapshot holds it: the server's JSON, kept as received, with the few
//! keys that matching needs read out of it.
//!
//! A snapshot of 100,000 users parsed into [`User`](super::User) values costs about
//! three times the JSON it came from (a `String` per attribute, vectors per multi-valued
//! attribute, allocator overhead on each). The planner needs every resource's id, natural
//! key, `externalId` and version to match, but the full attributes only of the resources
//! that desired state names, one at a time. So a [`Live`] keeps the raw JSON and parses it on
//! demand with [`Live::parse`], which has the same tolerance as the wire types. A resource
//! scimctl never looks at is never parsed, so an odd value in an unmanaged object cannot
//! break a plan.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::resource::{Group, Resource, User};
use crate::model::Kind;

/// A live resource of type `R` (a [`User`](super::User) or a
/// [`Group`](super::Group)) as listed by the server.
pub struct Live<R> {
    id: Option<Box<str>>,
    key: Box<str>,
    external_id: Option<Box<str>>,
    version: Option<Box<str>>,
    raw: Box<RawValue>,
    kind: PhantomData<fn() -> R>,
}

impl<R: Resource> Live<R> {
    /// Reads the keys out of one resource's JSON and drops what scimctl never reads, in one
    /// pass over its top-level attributes.
    pub fn from_raw(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        if !raw.get().trim_start().starts_with('{') {
            return Err(de::Error::custom("a resource must be a JSON object"));
        }
        let (id, key, external_id, version, compacted) = {
            let fields: Fields<'_> = serde_json::from_str(raw.get())?;
            let text = |name: &str| -> Result<Option<Box<str>>, serde_json::Error> {
                let value = fields
                    .get(name)
                    .map(|v| serde_json::from_str::<KeyText<'_>>(v.get()));
                Ok(value.transpose()?.and_then(KeyText::into_box))
            };
            let meta = fields
                .get("meta")
                .map(|m| serde_json::from_str::<Option<MetaKeys<'_>>>(m.get()));
            let version = meta
                .transpose()?
                .flatten()
                .and_then(|m| m.version)
                .and_then(KeyText::into_box);
            let compacted = compact(&fields, R::KIND, version.as_deref())?;
            (
                text("id")?,
                text(R::KIND.natural_key())?,
                text("externalId")?,
                version,
                compacted,
            )
        };
        Ok(Live {
            id,
            key: key.unwrap_or_default(),
            external_id,
            version,
            raw: compacted.unwrap_or(raw),
            kind: PhantomData,
        })
    }

    /// A live resource from a typed one (tests, and objects the applier just wrote).
    pub fn from_resource(resource: &R) -> Result<Self, serde_json::Error> {
        let mut value = serde_json::to_value(resource)?;
        if let (Some(version), Some(object)) = (resource.version(), value.as_object_mut()) {
            object.insert("meta".to_owned(), serde_json::json!({ "version": version }));
        }
        Self::from_raw(serde_json::value::to_raw_value(&value)?)
    }

    /// The full resource, parsed with the wire types' tolerance.
    pub fn parse(&self) -> Result<R, serde_json::Error> {
        serde_json::from_str(self.raw.get())
    }

    /// The JSON as the server sent it, less `schemas`, a user's read-only `groups`, and
    /// everything of `meta` but `version`.
    #[must_use]
    pub fn raw(&self) -> &str {
        self.raw.get()
    }

    /// Takes the JSON out, leaving `null` and the keys read out of it: for a reader done with
    /// the resource itself but not with its id and name (export frees each user's JSON as soon
    /// as it is converted).
    pub fn take_raw(&mut self) -> Box<RawValue> {
        std::mem::replace(&mut self.raw, RawValue::NULL.to_owned())
    }

    /// `externalId`, if set.
    #[must_use]
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }
}

impl<R> Clone for Live<R> {
    fn clone(&self) -> Self {
        Live {
            id: self.id.clone(),
            key: self.key.clone(),
            external_id: self.external_id.clone(),
            version: self.version.clone(),
            raw: self.raw.clone(),
            kind: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Live<R> {
    // Never the raw JSON: a server could echo something that should not be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("external_id", &self.external_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<R> PartialEq for Live<R> {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get()
    }
}

impl<R: Resource> Resource for Live<R> {
    const KIND: Kind = R::KIND;
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
    fn natural_key(&self) -> &str {
        &self.key
    }
}

impl<'de, R: Resource> Deserialize<'de> for Live<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Live::from_raw(raw).map_err(de::Error::custom)
    }
}

impl<R> Serialize for Live<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

/// A resource's top-level attributes, each still as JSON text.
type Fields<'a> = std::collections::BTreeMap<std::borrow::Cow<'a, str>, &'a RawValue>;

/// `meta.version`, borrowed from the JSON where it has no escapes; the rest of `meta` is
/// skipped without being built.
#[derive(Deserialize)]
struct MetaKeys<'a> {
    #[serde(default, borrow)]
    version: Option<KeyText<'a>>,
}

/// A key as servers send it: a string, or (ids on some servers) a number; `null` is absent.
enum KeyText<'a> {
    Text(std::borrow::Cow<'a, str>),
    Number(String),
    Null,
}

impl KeyText<'_> {
    fn into_box(self) -> Option<Box<str>> {
        match self {
            KeyText::Text(s) => Some(Box::from(s.as_ref())),
            KeyText::Number(n) => Some(n.into_boxed_str()),
            KeyText::Null => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for KeyText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = KeyText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyText::Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyText::Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(KeyText::Number(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(KeyText::Number(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(KeyText::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(KeyText::Null)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Drops what scimctl never reads from a listed resource: `schemas` (the extensions present
/// say the same), `meta` apart from `version`, and a user's read-only `groups`. On a typical
/// server that is a third of each user's JSON (`meta.location` alone is a full URL), which
/// at 100,000 users is the difference between fitting the plan's memory bound or not.
/// Attributes are otherwise kept byte for byte; their order becomes sorted.
fn compact(
    fields: &Fields<'_>,
    kind: Kind,
    version: Option<&str>,
) -> Result<Option<Box<RawValue>>, serde_json::Error> {
    let dropped =
        |key: &str| matches!(key, "schemas" | "meta") || (kind == Kind::User && key == "groups");
    if !fields.keys().any(|k| dropped(k)) {
        return Ok(None);
    }
    let mut out = String::new();
    out.push('{');
    for (key, value) in fields.iter().filter(|(k, _)| !dropped(k)) {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key)?);
        out.push(':');
        out.push_str(value.get());
    }
    if let Some(v) = version {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str("\"meta\":{\"version\":");
        out.push_str(&serde_json::to_string(v)?);
        out.push('}');
    }
    out.push('}');
    RawValue::from_string(out).map(Some)
}

/// A live user.
pub type LiveUser = Live<User>;
/// A live group.
pub type LiveGroup = Live<Group>;

#[cfg(test)]
mod tests {
    use super::*;

    // Keys come out of any spelling servers use; the rest is parsed only on demand, with the
    // wire types' tolerance.
    #[test]
    fn keys_and_lazy_parse() {
        let json = r#"{"id": 42, "userName": "a\u0040x.example", "externalId": null,
            "active": "True", "meta": {"version": "W/\"3\"", "created": "x"},
            "emails": [{"value": "a@x.example", "primary": "true"}], "odd": {"deep": [1, 2]}}"#;
        let live: LiveUser = serde_json::from_str(json).expect("parses");
        assert_eq!(live.id(), Some("42"));
        assert_eq!(live.natural_key(), "a@x.example");
        assert_eq!(live.external_id(), None);
        assert_eq!(live.version(), Some("W/\"3\""));
        let user = live.parse().expect("typed");
        assert_eq!(user.active, Some(true));
        assert_eq!(user.emails[0].primary, Some(true));
        // a listing holds them as they came
        let list: Vec<LiveGroup> = serde_json::from_str(
            r#"[{"id": "g", "displayName": "Ops", "members": [{"value": "u"}]}]"#,
        )
        .expect("list");
        let group: Group = list[0].parse().expect("group");
        assert_eq!(group.members[0].value, "u");
        assert_eq!(list[0].natural_key(), "Ops");
        // and a typed resource converts, keeping its version
        let mut typed = User {
            id: Some("u1".into()),
            user_name: "b".into(),
            ..User::default()
        };
        typed.meta.version = Some("W/\"9\"".into());
        let live = LiveUser::from_resource(&typed).expect("converts");
        assert_eq!((live.id(), live.version()), (Some("u1"), Some("W/\"9\"")));
        assert!(!format!("{live:?}").contains("meta"));
    }

    // What scimctl never reads is dropped from what a snapshot keeps; the rest is as sent.
    #[test]
    fn compacted() {
        let json = r#"{"schemas": ["urn:x"], "id": "u1", "userName": "a",
            "groups": [{"value": "g"}], "nickName": "K\u00e9",
            "meta": {"version": "W/\"3\"", "created": "2024", "location": "http://x/Users/u1"}}"#;
        let live: LiveUser = serde_json::from_str(json).expect("parses");
        let kept: serde_json::Value = serde_json::from_str(live.raw()).expect("json");
        assert_eq!(
            kept,
            serde_json::json!({"id": "u1", "userName": "a", "nickName": "Ké",
                "meta": {"version": "W/\"3\""}})
        );
        assert_eq!(live.version(), Some("W/\"3\""));
        assert!(
            live.raw().contains(r#""nickName":"K\u00e9""#),
            "values byte for byte"
        );
        // A group keeps its members; nothing to drop leaves the JSON untouched.
        let group: LiveGroup = serde_json::from_str(
            r#"{"id": "g", "displayName": "G", "members": [{"value": "u1"}]}"#,
        )
        .expect("parses");
        assert_eq!(
            group.raw(),
            r#"{"id": "g", "displayName": "G", "members": [{"value": "u1"}]}"#
        );
    }

    // A resource that is not an object is refused when listed; a bad attribute elsewhere is
    // only found by whoever parses it.
    #[test]
    fn errors() {
        assert!(serde_json::from_str::<LiveUser>("[1]").is_err());
        let live: LiveUser =
            serde_json::from_str(r#"{"id": "x", "userName": "u", "title": [7]}"#).expect("keys");
        assert_eq!(live.natural_key(), "u");
        assert!(live.parse().is_err(), "a list is no title");
    }
}
