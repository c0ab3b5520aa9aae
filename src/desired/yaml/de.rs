//! Deserializing: [`from_node`] turns a [`Node`] into any serde type, attaching the position
//! of the innermost failing value to every error (`path:line:col` once the file is known),
//! answering [`Spanned`](crate::model::Spanned)'s request for positions, and hinting at the
//! field or variant meant when a name is misspelt ([`suggest`]).

use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::read::{Node, NodeKind, Plain, is_null_text, resolve_plain};
use crate::model::{SPANNED_FIELDS, SPANNED_NAME, Span};

/// An error from [`from_node`]: a message and the position of the value it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeError {
    /// Where the offending value is, once known.
    pub span: Option<Span>,
    /// What is wrong.
    pub message: String,
}

impl Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl DeError {
    fn at(mut self, span: Span) -> DeError {
        self.span.get_or_insert(span);
        self
    }

    fn new(message: impl Into<String>) -> DeError {
        DeError {
            span: None,
            message: message.into(),
        }
    }
}

fn describe_unexpected(unexp: &de::Unexpected<'_>) -> String {
    match unexp {
        de::Unexpected::Str(_) | de::Unexpected::Char(_) => "a string".into(),
        de::Unexpected::Unsigned(_) | de::Unexpected::Signed(_) | de::Unexpected::Float(_) => {
            "a number".into()
        }
        de::Unexpected::Bool(_) => "a boolean".into(),
        de::Unexpected::Unit | de::Unexpected::Option => "an empty value".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo:
/// at most one edit in four characters of the candidate (names of users, roles, groups).
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    closest(word, candidates, 4)
}

/// As [`suggest`], for the names of keys and fixed values, which are short and few: one edit
/// in three characters (`emial` → `emails`, `grups` → `groups`).
pub(crate) fn suggest_key<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    closest(word, candidates, 3)
}

fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    chars_per_edit: usize,
) -> Option<&'c str> {
    let word_lower = word.to_lowercase();
    candidates
        .into_iter()
        // Optimal string alignment: a swap of two neighbours (`titel`, `emial`) is one edit.
        .map(|c| (strsim::osa_distance(&word_lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / chars_per_edit).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn one_of(expected: &[&str]) -> String {
    expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl de::Error for DeError {
    fn custom<T: Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!(
            "expected {exp}, found {}",
            describe_unexpected(&unexp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!(
            "invalid value: expected {exp}, found {}",
            describe_unexpected(&unexp)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = match suggest_key(field, expected.iter().copied()) {
            Some(s) => format!(" (did you mean `{s}`?)"),
            None => format!("; expected one of {}", one_of(expected)),
        };
        DeError::new(format!("unknown key `{field}`{hint}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = match suggest_key(variant, expected.iter().copied()) {
            Some(s) => format!(" (did you mean `{s}`?)"),
            None => String::new(),
        };
        DeError::new(format!(
            "unknown value `{variant}`; expected one of {}{hint}",
            one_of(expected)
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("{MISSING} `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(format!("duplicate key `{field}`"))
    }
}

/// Deserializes `T` from a node. Errors carry the position of the innermost offending value.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &Node<'_>) -> Result<T, DeError> {
    T::deserialize(NodeDe { node }).map_err(|e: DeError| e.at(node.span))
}

thread_local! {
    /// While [`from_node_all`] runs on this thread: the keys (by position) to read as if they
    /// were not written.
    static SKIP: std::cell::RefCell<Option<Vec<(u32, u32)>>> = const { std::cell::RefCell::new(None) };
}

/// Whether the key at `span` is left out by the [`from_node_all`] running on this thread.
fn skipped(span: Span) -> bool {
    SKIP.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|skip| skip.contains(&(span.line, span.col)))
    })
}

/// The start of the error for a required key that is not written.
const MISSING: &str = "missing required key";

/// At most this many attempts per node: each finds one wrong value.
const MAX_ATTEMPTS: usize = 32;

/// Deserializes `T` from a mapping node and reports every problem of it, not only the first:
/// after each error (an unknown key, a wrong value), the node is read again without the key
/// of its own that holds the error, until it reads or nothing more can be learnt. The value read without the wrong keys comes
/// back too, so later checks (cross-references, formats) can still look at the rest of it;
/// it is only ever used when the problems make the whole load fail.
///
/// A "missing required key" caused by leaving out a wrong key is not reported again.
#[must_use]
pub fn from_node_all<'de, T: de::Deserialize<'de>>(node: &Node<'_>) -> (Option<T>, Vec<DeError>) {
    let NodeKind::Map(entries) = &node.kind else {
        return match from_node(node) {
            Ok(v) => (Some(v), Vec::new()),
            Err(e) => (None, vec![e]),
        };
    };
    let previous = SKIP.with(|s| s.replace(Some(Vec::new())));
    let mut errors: Vec<DeError> = Vec::new();
    let mut left_out: Vec<&str> = Vec::new();
    let mut value = None;
    for _ in 0..MAX_ATTEMPTS {
        match from_node::<T>(node) {
            Ok(v) => {
                value = Some(v);
                break;
            }
            Err(e) => {
                let missing_left_out = left_out
                    .iter()
                    .any(|k| e.message == format!("{MISSING} `{k}`"));
                // A missing key is about the whole mapping, whose position is its first key's:
                // it is held by no entry.
                let holder = if e.message.starts_with(MISSING) {
                    None
                } else {
                    e.span.and_then(|span| holding_entry(entries, span))
                };
                if !missing_left_out {
                    errors.push(e);
                }
                let Some(index) = holder else { break };
                let (key, _) = &entries[index];
                let pos = (key.span.line, key.span.col);
                let fresh = SKIP.with(|s| {
                    let mut s = s.borrow_mut();
                    let skip = s.get_or_insert_with(Vec::new);
                    let fresh = !skip.contains(&pos);
                    skip.push(pos);
                    fresh
                });
                if !fresh || missing_left_out {
                    break;
                }
                if let NodeKind::Scalar { text, .. } = &key.kind {
                    left_out.push(text);
                }
            }
        }
    }
    SKIP.with(|s| s.replace(previous));
    (value, errors)
}

/// Which of a mapping's entries holds the position `span`: the last whose key starts at or
/// before it.
fn holding_entry(entries: &[(Node<'_>, Node<'_>)], span: Span) -> Option<usize> {
    let at = (span.line, span.col);
    entries
        .iter()
        .rposition(|(key, _)| (key.span.line, key.span.col) <= at)
}

struct NodeDe<'n, 'a> {
    node: &'n Node<'a>,
}

impl NodeDe<'_, '_> {
    fn scalar(&self) -> Option<(&str, bool)> {
        match &self.node.kind {
            NodeKind::Scalar { text, plain } => Some((text, *plain)),
            _ => None,
        }
    }

    fn mismatch(&self, expected: &str) -> DeError {
        DeError::new(format!(
            "expected {expected}, found {}",
            self.node.describe()
        ))
        .at(self.node.span)
    }

    fn integer<T: TryFrom<i64> + TryFrom<u64>>(&self, what: &str) -> Result<T, DeError> {
        let value = match self.scalar() {
            Some((text, true)) => match resolve_plain(text) {
                Plain::Uint(n) => T::try_from(n).ok(),
                Plain::Int(n) => T::try_from(n).ok(),
                _ => return Err(self.mismatch(what)),
            },
            _ => return Err(self.mismatch(what)),
        };
        value.ok_or_else(|| {
            DeError::new(format!("number out of range for {what}")).at(self.node.span)
        })
    }

    fn float(&self) -> Result<f64, DeError> {
        match self.scalar() {
            Some((text, true)) => match resolve_plain(text) {
                #[allow(clippy::cast_precision_loss)] // proficiencies and similar small values
                Plain::Uint(n) => Ok(n as f64),
                #[allow(clippy::cast_precision_loss)]
                Plain::Int(n) => Ok(n as f64),
                Plain::Float(f) => Ok(f),
                _ => Err(self.mismatch("a number")),
            },
            _ => Err(self.mismatch("a number")),
        }
    }
}

macro_rules! deserialize_integer {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: $ty = self.integer("a whole number")?;
            visitor.$visit(n).map_err(|e: DeError| e.at(self.node.span))
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let result = match &self.node.kind {
            NodeKind::Scalar { text, plain: false } => visitor.visit_str(text),
            NodeKind::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Int(n) => visitor.visit_i64(n),
                Plain::Uint(n) => visitor.visit_u64(n),
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str => visitor.visit_str(text),
            },
            NodeKind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
            }),
            NodeKind::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e: DeError| e.at(span))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some((text, true)) => match resolve_plain(text) {
                Plain::Bool(b) => visitor.visit_bool(b).map_err(|e: DeError| e.at(self.node.span)),
                _ if matches!(text, "yes" | "no" | "Yes" | "No" | "YES" | "NO" | "on" | "off" | "y" | "n") => Err(
                    DeError::new(format!("expected `true` or `false`, found `{text}` (YAML 1.2 booleans are only true and false)"))
                        .at(self.node.span),
                ),
                _ => Err(self.mismatch("`true` or `false`")),
            },
            _ => Err(self.mismatch("`true` or `false`")),
        }
    }

    deserialize_integer!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        visitor
            .visit_f64(f)
            .map_err(|e: DeError| e.at(self.node.span))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// Any scalar other than null reads as its source text when a string is wanted, so
    /// `employeeNumber: 0042` keeps its leading zeros instead of becoming the number 42.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some((text, plain)) if !(plain && is_null_text(text)) => visitor
                .visit_str(text)
                .map_err(|e: DeError| e.at(self.node.span)),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.mismatch("bytes (not supported)"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    /// A present key always holds a value: `key:` with nothing after it is an error rather
    /// than "unmanaged", so that an accidental blank never silently stops managing something.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        visitor.visit_some(self).map_err(|e: DeError| e.at(span))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor
                .visit_unit()
                .map_err(|e: DeError| e.at(self.node.span))
        } else {
            Err(self.mismatch("an empty value"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(items) => visitor
                .visit_seq(SeqDe {
                    items: items.iter(),
                })
                .map_err(|e: DeError| e.at(self.node.span)),
            _ => Err(self.mismatch("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(entries) => visitor
                .visit_map(MapDe {
                    entries: entries.iter(),
                    value: None,
                })
                .map_err(|e: DeError| e.at(self.node.span)),
            _ => Err(self.mismatch("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED_NAME && fields == SPANNED_FIELDS {
            return visitor.visit_map(SpannedDe {
                node: self.node,
                step: 0,
            });
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.kind {
            NodeKind::Scalar { text, plain } if !(*plain && is_null_text(text)) => visitor
                .visit_enum(EnumDe {
                    variant: text,
                    variant_span: span,
                    content: None,
                })
                .map_err(|e: DeError| e.at(span)),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                let NodeKind::Scalar { text, .. } = &key.kind else {
                    return Err(self.mismatch("a name or a single-key mapping"));
                };
                visitor
                    .visit_enum(EnumDe {
                        variant: text,
                        variant_span: key.span,
                        content: Some(value),
                    })
                    .map_err(|e: DeError| e.at(span))
            }
            _ => Err(self.mismatch("a name or a single-key mapping")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<'n, 'a> {
    items: std::slice::Iter<'n, Node<'a>>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => seed
                .deserialize(NodeDe { node })
                .map(Some)
                .map_err(|e: DeError| e.at(node.span)),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'n, 'a> {
    entries: std::slice::Iter<'n, (Node<'a>, Node<'a>)>,
    value: Option<&'n Node<'a>>,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        loop {
            let Some((key, value)) = self.entries.next() else {
                return Ok(None);
            };
            if skipped(key.span) {
                continue;
            }
            self.value = Some(value);
            return seed
                .deserialize(NodeDe { node: key })
                .map(Some)
                .map_err(|e: DeError| e.at(key.span));
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| DeError::new("value requested before key"))?;
        seed.deserialize(NodeDe { node })
            .map_err(|e: DeError| e.at(node.span))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Answers [`Spanned`](crate::model::Spanned)'s handshake: file, line, column, then the value.
struct SpannedDe<'n, 'a> {
    node: &'n Node<'a>,
    step: usize,
}

impl<'de> MapAccess<'de> for SpannedDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match SPANNED_FIELDS.get(self.step) {
            None => Ok(None),
            Some(name) => seed.deserialize((*name).into_deserializer()).map(Some),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let span = self.node.span;
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize(span.file.0.into_deserializer()),
            1 => seed.deserialize(span.line.into_deserializer()),
            2 => seed.deserialize(span.col.into_deserializer()),
            _ => seed
                .deserialize(NodeDe { node: self.node })
                .map_err(|e: DeError| e.at(span)),
        }
    }
}

struct EnumDe<'n, 'a> {
    variant: &'n str,
    variant_span: Span,
    content: Option<&'n Node<'a>>,
}

impl<'de, 'n, 'a> EnumAccess<'de> for EnumDe<'n, 'a> {
    type Error = DeError;
    type Variant = VariantDe<'n, 'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDe<'n, 'a>), DeError> {
        let value = seed
            .deserialize(self.variant.into_deserializer())
            .map_err(|e: DeError| e.at(self.variant_span))?;
        Ok((
            value,
            VariantDe {
                span: self.variant_span,
                content: self.content,
            },
        ))
    }
}

struct VariantDe<'n, 'a> {
    span: Span,
    content: Option<&'n Node<'a>>,
}

impl<'de> VariantAccess<'de> for VariantDe<'_, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.content {
            None => Ok(()),
            Some(node) if node.is_null() => Ok(()),
            Some(node) => {
                Err(DeError::new("this value takes no settings; write just its name").at(node.span))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.content {
            Some(node) => seed
                .deserialize(NodeDe { node })
                .map_err(|e: DeError| e.at(node.span)),
            None => {
                Err(DeError::new("this value needs settings: write it as a mapping").at(self.span))
            }
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.content {
            Some(node) => NodeDe { node }.deserialize_seq(visitor),
            None => Err(DeError::new("this value needs a list").at(self.span)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.content {
            Some(node) => NodeDe { node }.deserialize_map(visitor),
            None => {
                Err(DeError::new("this value needs settings: write it as a mapping").at(self.span))
            }
        }
    }
}
