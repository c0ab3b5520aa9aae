//! [`Text`]: the string type of desired-state values.
//!
//! A desired state of 100,000 users holds well over a million strings, and most of them are
//! short and repeated: titles, departments, licenses, role and group names, and a userName
//! that is usually also the work email. `String` gives each its own allocation and takes 24
//! bytes wherever it is stored. `Text` is immutable and shared: cloning it copies a pointer,
//! so the loader keeps one copy of each distinct value of a file, and it takes 8 bytes (one
//! pointer to the length, the reference count and the bytes, allocated together: it wraps
//! `arcstr::ArcStr`).
//!
//! It reads like a `String`: it dereferences to `str`, compares with `str`, `&str` and
//! `String`, hashes like `str` (so a `HashMap<Text, _>` can be queried with `&str`), has the
//! same `AsRef` conversions, displays and serializes as the plain string and documents itself
//! as one in the JSON Schema. `String::from(text)` or `text.to_string()` gives an owned copy.

use std::borrow::{Borrow, Cow};
use std::ffi::OsStr;
use std::fmt;
use std::ops::Deref;
use std::path::Path;

use arcstr::ArcStr;
use schemars::JsonSchema;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// An immutable, cheaply cloned string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(ArcStr);

impl Text {
    /// The text as a `&str`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both values share one allocation (equal values need not).
    #[must_use]
    pub fn shares_with(&self, other: &Text) -> bool {
        ArcStr::ptr_eq(&self.0, &other.0)
    }
}

impl Default for Text {
    fn default() -> Self {
        Text(ArcStr::new())
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl AsRef<OsStr> for Text {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(self.as_str())
    }
}

impl AsRef<Path> for Text {
    fn as_ref(&self) -> &Path {
        Path::new(self.as_str())
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Text(ArcStr::from(value))
    }
}

impl From<&String> for Text {
    fn from(value: &String) -> Self {
        Text::from(value.as_str())
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Text(ArcStr::from(value))
    }
}

impl From<Text> for String {
    fn from(value: Text) -> Self {
        value.as_str().to_owned()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Text, E> {
                Ok(Text::from(value))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Text, E> {
                Ok(Text::from(value))
            }
        }
        deserializer.deserialize_string(V)
    }
}

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        String::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        String::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// Whether a character is unsafe to show a person as it is: a control character (Unicode
/// general category Cc: C0, DEL and C1, which includes ESC and CR), a bidirectional embedding,
/// override or isolate (U+202A–U+202E, U+2066–U+2069), or a zero-width character (U+200B–U+200D,
/// U+2060, U+FEFF). Names holding one fail validation; text output shows them escaped.
#[must_use]
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200d}'
                | '\u{2060}' | '\u{feff}'
        )
}

/// A value from YAML or from the tenant as text output shows it: every character of
/// [`is_unsafe_char`] as `\u{..}` (ESC is `\u{1b}`); everything else as
/// it is, so ordinary values print unchanged. The one escaper of every text renderer (plans,
/// apply reports, explain, diagnostics); JSON output stays raw, JSON escapes for itself.
#[must_use]
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            let _ = fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for text of several lines: each line escaped, the line breaks kept.
#[must_use]
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    // Control, bidi and zero-width characters come out as `\u{..}`; plain text (including non-Latin letters) is borrowed untouched.
    #[test]
    fn escapes_unsafe_characters() {
        assert_eq!(
            escape("joe\r\x1b[1A\x1b[2K"),
            "joe\\u{d}\\u{1b}[1A\\u{1b}[2K"
        );
        assert_eq!(
            escape("a\u{202e}b\u{200b}c\u{feff}\u{9b}"),
            "a\\u{202e}b\\u{200b}c\\u{feff}\\u{9b}"
        );
        assert!(matches!(escape("Zoë Ωμέγα"), Cow::Borrowed(_)));
        assert!(!escape("x\n\ty").contains(['\n', '\t']));
        assert_eq!(escape_lines("a\x1b\nb\r\n"), "a\\u{1b}\nb\\u{d}\n");
    }

    // Text reads like a string: compares, hashes, looks up and prints as one.
    #[test]
    fn reads_like_a_string() {
        let text = Text::from("Support");
        assert_eq!(text, "Support");
        assert_eq!("Support", text);
        assert_eq!(text, String::from("Support"));
        assert_eq!(text.to_lowercase(), "support");
        assert_eq!(format!("{text} {text:?}"), "Support \"Support\"");
        let map: HashMap<Text, u8> = [(text.clone(), 1)].into();
        assert_eq!(map.get("Support"), Some(&1));
        assert_eq!(Path::new("Support"), AsRef::<Path>::as_ref(&text));
        assert_eq!(String::from(text), "Support");
        assert_eq!(Text::default(), "");
        assert_eq!(size_of::<Text>(), 8);
        assert_eq!(size_of::<Option<Text>>(), 8);
    }

    // Clones share the allocation; equal values built apart do not.
    #[test]
    fn clones_share() {
        let a = Text::from("Contact Centre Agent");
        let b = a.clone();
        let c = Text::from("Contact Centre Agent");
        assert!(a.shares_with(&b));
        assert!(!a.shares_with(&c));
        assert_eq!(a, c);
    }
}
