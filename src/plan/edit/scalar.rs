//! [`Scalar`]: the value a [`super::Edit::Set`] writes to a single-valued attribute.
//!
//! Every single-valued attribute scimctl manages is a string or a boolean. Text is a
//! [`Text`], so an edit shares the string desired state already holds instead of copying
//! it: a plan that creates 100,000 users holds half a million of these (issue 21's memory
//! bound). It reads and writes the same JSON as the `serde_json` value it replaces.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::model::Text;

/// A single-valued attribute's value: text or a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// A string.
    Text(Text),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The flag, if it is one.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Text(_) => None,
        }
    }

    /// The text, if it is text.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(t) => Some(t.as_str()),
            Scalar::Bool(_) => None,
        }
    }

    /// As a JSON value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        match self {
            Scalar::Text(t) => Value::from(t.as_str()),
            Scalar::Bool(b) => Value::Bool(*b),
        }
    }
}

impl From<Text> for Scalar {
    fn from(text: Text) -> Scalar {
        Scalar::Text(text)
    }
}

impl From<&Text> for Scalar {
    fn from(text: &Text) -> Scalar {
        Scalar::Text(text.clone())
    }
}

impl From<&str> for Scalar {
    fn from(text: &str) -> Scalar {
        Scalar::Text(Text::from(text))
    }
}

impl From<bool> for Scalar {
    fn from(flag: bool) -> Scalar {
        Scalar::Bool(flag)
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Text(t) => serializer.serialize_str(t.as_str()),
            Scalar::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a boolean")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar::from(value))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(Text::from(value)))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(value))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A single-valued attribute's value: a string or a boolean.",
            "type": ["string", "boolean"]
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_strings_and_booleans_only() {
        for json in [json!("Support Agent"), json!(true), json!(false), json!("")] {
            let s: Scalar = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&s).unwrap(), json);
            assert_eq!(s.to_value(), json);
        }
        for bad in [json!(1), json!(null), json!({"value": "x"}), json!(["x"])] {
            assert!(
                serde_json::from_value::<Scalar>(bad.clone()).is_err(),
                "{bad} is no scalar value"
            );
        }
    }

    #[test]
    fn text_shares_the_string_it_was_made_from() {
        let desired = Text::from("agent@example.com");
        let Scalar::Text(held) = Scalar::from(&desired) else {
            panic!("text")
        };
        assert!(held.shares_with(&desired), "no copy of the string");
        assert_eq!(Scalar::from(true).as_bool(), Some(true));
        assert_eq!(Scalar::from("x").as_str(), Some("x"));
        assert_eq!(Scalar::from("x").as_bool(), None);
    }
}
