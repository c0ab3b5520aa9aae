//! [`Complex`]: one value of a multi-valued attribute (an email, a phone number, a role, a
//! routing skill), held compactly.
//!
//! A plan that creates 100,000 users holds one of these per email. As a `serde_json` map each
//! took a B-tree node of about 640 bytes and three more allocations for the sub-attribute
//! names; here it is one small sorted slice, and the names scimctl writes are static
//! (issue 21's memory bound). It reads and writes exactly the JSON object the map did, keys
//! in the same sorted order, so saved plans and requests are unchanged.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Sub-attribute names scimctl writes and servers commonly return: held without an
/// allocation. Any other name is kept as read.
const KNOWN: [&str; 8] = [
    "$ref",
    "display",
    "id",
    "name",
    "primary",
    "proficiency",
    "type",
    "value",
];

/// A sub-attribute's name.
fn name_of(name: &str) -> Cow<'static, str> {
    KNOWN
        .iter()
        .find(|k| **k == name)
        .map_or_else(|| Cow::Owned(name.to_owned()), |k| Cow::Borrowed(*k))
}

/// One complex value: its sub-attributes, sorted by name, each name once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Complex(Box<[(Cow<'static, str>, Value)]>);

impl Complex {
    /// The value with these sub-attributes; of a name given twice, the last counts (as in a
    /// JSON object).
    pub fn new<N: AsRef<str>>(fields: impl IntoIterator<Item = (N, Value)>) -> Complex {
        let mut fields: Vec<(Cow<'static, str>, Value)> = fields
            .into_iter()
            .map(|(n, v)| (name_of(n.as_ref()), v))
            .collect();
        // Stable, so that of equal names the last given comes last and is kept.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Cow<'static, str>, Value)> = Vec::with_capacity(fields.len());
        for field in fields {
            match kept.last_mut() {
                Some(last) if last.0 == field.0 => *last = field,
                _ => kept.push(field),
            }
        }
        Complex(kept.into_boxed_slice())
    }

    /// The sub-attribute `name` (exact, as a JSON object's key).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// The sub-attributes, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// As a JSON object.
    #[must_use]
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.iter()
                .map(|(n, v)| (n.to_owned(), v.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
impl Complex {
    /// Test shorthand: the complex value the JSON object `json` writes.
    pub(crate) fn of(json: Value) -> Complex {
        match json {
            Value::Object(map) => map.into(),
            other => panic!("not an object: {other}"),
        }
    }
}

impl From<Map<String, Value>> for Complex {
    fn from(map: Map<String, Value>) -> Complex {
        Complex::new(map)
    }
}

impl std::ops::Index<&str> for Complex {
    type Output = Value;

    /// The sub-attribute `name`, or `null` when it is absent (as indexing a JSON value).
    fn index(&self, name: &str) -> &Value {
        static ABSENT: Value = Value::Null;
        self.get(name).unwrap_or(&ABSENT)
    }
}

impl Serialize for Complex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (n, v) in self.iter() {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Complex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Complex, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Complex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a complex value (an object of sub-attributes)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Complex, A::Error> {
                let mut fields: Vec<(Cow<'de, str>, Value)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<Cow<'de, str>, Value>()? {
                    fields.push((name, value));
                }
                Ok(Complex::new(fields))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl schemars::JsonSchema for Complex {
    fn schema_name() -> Cow<'static, str> {
        "Complex".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A complex value: an object of sub-attributes (`value`, `type`, \
                `primary`, ...).",
            "type": "object"
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_the_same_json_as_a_map() {
        let json = json!({"value": "a@example.com", "type": "work", "primary": true, "x-y": 1});
        let c: Complex = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), json);
        assert_eq!(c.to_value(), json);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&json).unwrap(),
            "keys in the map's order"
        );
        assert_eq!(c["type"], json!("work"));
        assert_eq!(c["display"], Value::Null);
        assert_eq!(c.get("x-y"), Some(&json!(1)));
        assert_eq!(c.get("Type"), None, "names are exact, as JSON keys");
    }

    #[test]
    fn the_last_of_a_name_given_twice_counts_and_order_does_not_matter() {
        let c = Complex::new([
            ("value", json!("a")),
            ("type", json!("x")),
            ("value", json!("b")),
        ]);
        assert_eq!(c.to_value(), json!({"value": "b", "type": "x"}));
        let parsed: Complex = serde_json::from_str(r#"{"value":"a","value":"b","type":"x"}"#)
            .expect("duplicate keys read as serde_json reads them");
        assert_eq!(parsed, c);
        assert_eq!(
            Complex::new([("type", json!("x")), ("value", json!("b"))]),
            c,
            "equal whatever order the names came in"
        );
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for bad in [json!("a@example.com"), json!(["a"]), json!(null), json!(1)] {
            assert!(
                serde_json::from_value::<Complex>(bad.clone()).is_err(),
                "{bad} is no complex value"
            );
        }
    }
}
