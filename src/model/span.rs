//! Source locations: where in the desired-state YAML a value came from.
//!
//! Every value loaded from YAML keeps the file, line and column it was written at, so that
//! validation errors now, and plan provenance later, can point at the exact place to edit.
//! This module owns only the location types; it does no I/O.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Serialize, Serializer};

/// Index of a source file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

impl FileId {
    /// The id of values that were not read from any file (built in code, or defaults).
    pub const NONE: FileId = FileId(u32::MAX);
}

/// A position in a source file: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// The file the value was read from.
    pub file: FileId,
    /// 1-based line; 0 when the position refers to the whole file.
    pub line: u32,
    /// 1-based column in characters; 0 when the position refers to the whole file.
    pub col: u32,
}

impl Span {
    /// The span of values that did not come from a file.
    pub const UNKNOWN: Span = Span {
        file: FileId::NONE,
        line: 0,
        col: 0,
    };

    /// A span naming a whole file rather than a position in it.
    #[must_use]
    pub fn file(file: FileId) -> Span {
        Span {
            file,
            line: 0,
            col: 0,
        }
    }

    /// A position in a file.
    #[must_use]
    pub fn at(file: FileId, line: u32, col: u32) -> Span {
        Span { file, line, col }
    }

    /// Whether this span points at a file at all.
    #[must_use]
    pub fn is_known(&self) -> bool {
        self.file != FileId::NONE
    }
}

impl Default for Span {
    fn default() -> Self {
        Span::UNKNOWN
    }
}

/// The table of files a desired state was loaded from, indexed by [`FileId`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    files: Vec<PathBuf>,
    /// Each path as shown (a plan's every change names its file: shared, not made anew).
    shown: Vec<crate::model::Text>,
    /// SHA-256 of each file's bytes as read, once it has been read.
    digests: Vec<Option<[u8; 32]>>,
}

impl SourceMap {
    /// An empty table.
    #[must_use]
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Registers a file and returns its id.
    ///
    /// # Panics
    /// Never in practice: more than four billion files cannot be loaded.
    pub fn add(&mut self, path: PathBuf) -> FileId {
        let id = u32::try_from(self.files.len()).unwrap_or(u32::MAX - 1);
        self.shown.push(path.display().to_string().into());
        self.files.push(path);
        self.digests.push(None);
        FileId(id)
    }

    /// Records the SHA-256 of the bytes read for `id` (the loader computes it as it reads,
    /// so that a plan can name the exact desired state without reading the files again).
    pub fn set_digest(&mut self, id: FileId, digest: [u8; 32]) {
        if let Some(slot) = self.digests.get_mut(id.0 as usize) {
            *slot = Some(digest);
        }
    }

    /// Every file with the SHA-256 of what was read from it (`None` if it could not be read).
    pub fn files(&self) -> impl Iterator<Item = (&Path, Option<&[u8; 32]>)> {
        self.files
            .iter()
            .zip(&self.digests)
            .map(|(p, d)| (p.as_path(), d.as_ref()))
    }

    /// The path of a file as shown to people, if the id is known.
    #[must_use]
    pub fn shown(&self, id: FileId) -> Option<&crate::model::Text> {
        self.shown.get(id.0 as usize)
    }

    /// The path of a file, if the id is known.
    #[must_use]
    pub fn path(&self, id: FileId) -> Option<&Path> {
        self.files.get(id.0 as usize).map(PathBuf::as_path)
    }

    /// Number of files registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// A displayable `path:line:col` (or `path` for whole-file spans, `<unknown>` without file).
    #[must_use]
    pub fn locate(&self, span: Span) -> Location<'_> {
        Location {
            path: self.path(span.file),
            span,
        }
    }
}

/// A span resolved against its [`SourceMap`]; displays as `path:line:col`.
#[derive(Clone, Copy, Debug)]
pub struct Location<'a> {
    path: Option<&'a Path>,
    span: Span,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path {
            None => f.write_str("<unknown>"),
            Some(path) if self.span.line == 0 => write!(f, "{}", path.display()),
            Some(path) => write!(f, "{}:{}:{}", path.display(), self.span.line, self.span.col),
        }
    }
}

/// The struct name by which [`Spanned`] asks the YAML deserializer for a value's position.
///
/// Only `crate::desired::yaml` answers it; any other deserializer sees an ordinary struct.
pub(crate) const SPANNED_NAME: &str = "$__scimctl_private_Spanned";
/// Field names of the position handshake, in the order the YAML deserializer yields them.
pub(crate) const SPANNED_FIELDS: &[&str] = &["$__file", "$__line", "$__col", "$__value"];

/// A value together with the place in the YAML it was read from.
///
/// Equality, ordering and hashing look at the value only, so two equal values written in
/// different files compare equal. Serializes and documents itself (JSON Schema) as the bare
/// value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spanned<T> {
    /// Where the value was written.
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// Wraps a value with a span.
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { span, value }
    }

    /// Wraps a value that did not come from a file.
    pub fn unspanned(value: T) -> Spanned<T> {
        Spanned {
            span: Span::UNKNOWN,
            value,
        }
    }

    /// The value, dropping the span.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Spanned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: std::hash::Hash> std::hash::Hash for Spanned<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(
            SPANNED_NAME,
            SPANNED_FIELDS,
            SpannedVisitor(std::marker::PhantomData),
        )
    }
}

struct SpannedVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value with its source position")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
        let mut position = [0_u32; 3];
        for (slot, name) in position.iter_mut().zip(SPANNED_FIELDS) {
            match map.next_key_seed(HandshakeKey(name))? {
                Some(true) => *slot = map.next_value()?,
                _ => {
                    return Err(de::Error::custom(
                        "spanned values can only be read from YAML",
                    ));
                }
            }
        }
        match map.next_key_seed(HandshakeKey(SPANNED_FIELDS[3]))? {
            Some(true) => {}
            _ => {
                return Err(de::Error::custom(
                    "spanned values can only be read from YAML",
                ));
            }
        }
        let value = map.next_value()?;
        let span = Span::at(FileId(position[0]), position[1], position[2]);
        Ok(Spanned { span, value })
    }
}

/// Reads one key of the position handshake and tells whether it is the expected one, without
/// allocating: every spanned value goes through four of these, so a `String` per key would be
/// most of the loader's allocations.
struct HandshakeKey(&'static str);

impl<'de> DeserializeSeed<'de> for HandshakeKey {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for HandshakeKey {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the key `{}`", self.0)
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }

    fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<bool, E> {
        Ok(key == self.0.as_bytes())
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Equality ignores where a value was written: the planner compares values, not places.
    #[test]
    fn equality_ignores_span() {
        let a = Spanned::new("x".to_owned(), Span::at(FileId(0), 1, 1));
        let b = Spanned::new("x".to_owned(), Span::at(FileId(3), 9, 4));
        assert_eq!(a, b);
    }

    // Only the YAML loader answers the position handshake; other deserializers are refused
    // plainly, even when they imitate its keys.
    #[test]
    fn other_deserializers_are_refused() {
        for json in [r#"{"$__file": 0}"#, r#"{"name": "x"}"#, "{}"] {
            let err = serde_json::from_str::<Spanned<String>>(json).unwrap_err();
            assert!(
                err.to_string()
                    .contains("spanned values can only be read from YAML"),
                "{json}: {err}"
            );
        }
    }

    // Locations print as path:line:col, or just the path for whole-file spans.
    #[test]
    fn location_display() {
        let mut map = SourceMap::new();
        let id = map.add(PathBuf::from("desired-state/users.yaml"));
        assert_eq!(
            map.locate(Span::at(id, 3, 7)).to_string(),
            "desired-state/users.yaml:3:7"
        );
        assert_eq!(
            map.locate(Span::file(id)).to_string(),
            "desired-state/users.yaml"
        );
        assert_eq!(map.locate(Span::UNKNOWN).to_string(), "<unknown>");
    }
}
