//! Where a secret or a configurable value comes from: an environment variable, a file, or
//! (for values that are not secret) the YAML itself.
//!
//! Secrets are never written literally in desired state. The deserializers here refuse a
//! literal secret without ever echoing it into the error message.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A secret read at run time: `{fromEnv: VAR}` or `{fromFile: PATH}`.
///
/// `fromFile` paths are relative to the YAML file that names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SecretSource {
    /// Read the secret from this environment variable.
    FromEnv(String),
    /// Read the secret from this file (trailing newline stripped).
    FromFile(String),
}

/// An initial user password: `generate`, `{fromEnv: VAR}` or `{fromFile: PATH}`. Never a literal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PasswordSource {
    /// Generate a random password meeting the complexity policy, set only on create.
    Generate,
    /// Read the password from this environment variable at apply time.
    FromEnv(String),
    /// Read the password from this file at apply time.
    FromFile(String),
}

/// A non-secret value that may still come from the environment: a literal string,
/// `{fromEnv: VAR}` or `{fromFile: PATH}` (for example an OAuth client id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ValueSource {
    /// The value as written.
    Literal(String),
    /// A value read at run time.
    Source(SecretSource),
}

const LITERAL_SECRET: &str = "a literal secret is not allowed here; write {fromEnv: VARIABLE} \
     or {fromFile: PATH}";
const LITERAL_PASSWORD: &str = "a literal password is not allowed; write `generate`, \
     {fromEnv: VARIABLE} or {fromFile: PATH}";

/// Reads the single-key mapping `{fromEnv: X}` / `{fromFile: X}`.
fn visit_source_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<SecretSource, A::Error> {
    let Some(key) = map.next_key::<String>()? else {
        return Err(de::Error::custom(
            "expected {fromEnv: VARIABLE} or {fromFile: PATH}, found {}",
        ));
    };
    let source = match key.as_str() {
        "fromEnv" => SecretSource::FromEnv(map.next_value()?),
        "fromFile" => SecretSource::FromFile(map.next_value()?),
        other => return Err(de::Error::unknown_field(other, &["fromEnv", "fromFile"])),
    };
    if map.next_key::<String>()?.is_some() {
        return Err(de::Error::custom(
            "write exactly one of fromEnv or fromFile",
        ));
    }
    Ok(source)
}

/// A visitor that refuses every scalar with `message` and never prints the scalar.
macro_rules! refuse_scalars {
    ($message:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
    };
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("{fromEnv: VARIABLE} or {fromFile: PATH}")
            }
            refuse_scalars!(LITERAL_SECRET);
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretSource, E> {
                Err(E::custom(LITERAL_SECRET))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
                visit_source_map(map)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for PasswordSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PasswordSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`generate`, {fromEnv: VARIABLE} or {fromFile: PATH}")
            }
            refuse_scalars!(LITERAL_PASSWORD);
            fn visit_str<E: de::Error>(self, value: &str) -> Result<PasswordSource, E> {
                if value == "generate" {
                    Ok(PasswordSource::Generate)
                } else {
                    Err(E::custom(LITERAL_PASSWORD))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PasswordSource, A::Error> {
                Ok(match visit_source_map(map)? {
                    SecretSource::FromEnv(var) => PasswordSource::FromEnv(var),
                    SecretSource::FromFile(path) => PasswordSource::FromFile(path),
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ValueSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, {fromEnv: VARIABLE} or {fromFile: PATH}")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ValueSource, E> {
                Ok(ValueSource::Literal(value.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueSource, A::Error> {
                visit_source_map(map).map(ValueSource::Source)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl PasswordSource {
    /// The secret source behind this password, if it is read rather than generated.
    #[must_use]
    pub fn source(&self) -> Option<SecretSource> {
        match self {
            PasswordSource::Generate => None,
            PasswordSource::FromEnv(var) => Some(SecretSource::FromEnv(var.clone())),
            PasswordSource::FromFile(path) => Some(SecretSource::FromFile(path.clone())),
        }
    }
}
