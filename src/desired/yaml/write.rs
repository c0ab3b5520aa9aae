//! Writing: [`Writer`] and [`item`] write desired-state files in block style (what
//! `scimctl export` produces), with comments, one-line lists and mappings where they read
//! better, and quoting decided here so that every string reads back as the same string.

use std::borrow::Cow;

/// Renders a serde value as a YAML document through `serde_yaml`, a writer independent of
/// [`Writer`]: the loader's tests read its output back, a cross-check of the reader by
/// another implementation. Tests only; nothing at run time writes YAML this way.
#[cfg(test)]
pub(crate) fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(value)
}

/// A value for the block-style writer ([`Writer`], [`item`]): the few shapes desired-state
/// files are made of.
#[derive(Clone, Debug, PartialEq)]
pub enum Emit<'a> {
    /// A string: written plain when no YAML reader could take it for anything else, else
    /// double-quoted (so `"00123"`, `"yes"`, `"2023-04-17"` and `"+14155550123"` stay strings
    /// for every reader, not only for scimctl's).
    Str(Cow<'a, str>),
    /// `true` or `false`.
    Bool(bool),
    /// A number, in its shortest form that reads back as the same `f64`.
    Number(f64),
    /// A list, one item per line (`[]` when empty).
    List(Vec<Emit<'a>>),
    /// A mapping, one key per line, in the order given.
    Map(Vec<(&'a str, Emit<'a>)>),
    /// A list on one line: `[a, b]`.
    FlowList(Vec<Emit<'a>>),
    /// A mapping on one line: `{value: x, type: work}`.
    FlowMap(Vec<(&'a str, Emit<'a>)>),
}

impl<'a> Emit<'a> {
    /// A string value.
    pub fn str(s: impl Into<Cow<'a, str>>) -> Emit<'a> {
        Emit::Str(s.into())
    }
}

/// Builds one YAML document in block style: comments, top-level keys and list items.
/// Deterministic: the same calls give the same bytes.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// An empty document.
    #[must_use]
    pub fn new() -> Writer {
        Writer::default()
    }

    /// `# text`, one comment line per line of `text`; characters YAML does not allow in a
    /// file become U+FFFD.
    pub fn comment(&mut self, text: &str) {
        for line in text.split('\n') {
            self.out.push('#');
            if !line.is_empty() {
                self.out.push(' ');
                self.out.extend(
                    line.chars()
                        .map(|c| if needs_escape(c) { '\u{fffd}' } else { c }),
                );
            }
            self.out.push('\n');
        }
    }

    /// An empty line.
    pub fn blank(&mut self) {
        self.out.push('\n');
    }

    /// A top-level `key: value`, the value in block style where it is a block list or
    /// mapping.
    pub fn entry(&mut self, key: &str, value: &Emit<'_>) {
        entry(&mut self.out, 0, key, value);
    }

    /// A top-level `key:` whose list items follow with [`Writer::items`].
    pub fn list_key(&mut self, key: &str) {
        self.out.push_str(key);
        self.out.push_str(":\n");
    }

    /// List items rendered by [`item`], appended as they are.
    pub fn items(&mut self, rendered: &str) {
        self.out.push_str(rendered);
    }

    /// The document so far, in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The document.
    #[must_use]
    pub fn finish(self) -> String {
        self.out
    }
}

/// One item of a top-level list (`  - key: value` and its continuation lines), rendered on
/// its own so that callers can size files before assembling them with [`Writer::items`].
#[must_use]
pub fn item(value: &Emit<'_>) -> String {
    let mut out = String::new();
    push_item(&mut out, value);
    out
}

/// [`item`], appended to `out`: many items kept in one string cost no allocation each.
pub fn push_item(out: &mut String, value: &Emit<'_>) {
    list_item(out, 2, value);
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn entry(out: &mut String, at: usize, key: &str, value: &Emit<'_>) {
    indent(out, at);
    out.push_str(key);
    out.push(':');
    match value {
        Emit::List(items) if !items.is_empty() => {
            out.push('\n');
            for v in items {
                list_item(out, at + 2, v);
            }
        }
        Emit::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            for (k, v) in entries {
                entry(out, at + 2, k, v);
            }
        }
        _ => {
            out.push(' ');
            inline(out, value, false);
            out.push('\n');
        }
    }
}

fn list_item(out: &mut String, at: usize, value: &Emit<'_>) {
    indent(out, at);
    out.push_str("- ");
    match value {
        Emit::Map(entries) if !entries.is_empty() => {
            // The first key shares the dash's line; the rest line up under it.
            let (k, v) = &entries[0];
            let mut first = String::new();
            entry(&mut first, 0, k, v);
            out.push_str(&first);
            for (k, v) in &entries[1..] {
                entry(out, at + 2, k, v);
            }
        }
        // A nested list item (not used by desired state) is written on one line.
        v => {
            inline(out, v, false);
            out.push('\n');
        }
    }
}

/// A value on one line; `flow` when inside `[...]` or `{...}`, where `,` and brackets end a
/// plain scalar.
fn inline(out: &mut String, value: &Emit<'_>, flow: bool) {
    match value {
        Emit::Str(s) => scalar(out, s, flow),
        Emit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Emit::Number(n) => number(out, *n),
        Emit::List(items) | Emit::FlowList(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                inline(out, v, true);
            }
            out.push(']');
        }
        Emit::Map(entries) | Emit::FlowMap(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                inline(out, v, true);
            }
            out.push('}');
        }
    }
}

fn number(out: &mut String, n: f64) {
    use std::fmt::Write as _;
    if n.is_nan() {
        out.push_str(".nan");
    } else if n.is_infinite() {
        out.push_str(if n > 0.0 { ".inf" } else { "-.inf" });
    } else {
        // Rust prints the shortest decimal that reads back as the same f64, never with an
        // exponent, which YAML readers all take as a number.
        let _ = write!(out, "{n}");
    }
}

/// Whether `s` can be written without quotes and still read back as this very string by any
/// YAML reader (1.1 or 1.2). Deliberately narrow: a string starting with a digit, a sign or a
/// dot (numbers, dates, phone numbers, `00123`), a boolean or null word of either YAML
/// version, and anything with a character that is syntax somewhere (`:`, `#`, quotes,
/// brackets, ...) is quoted.
fn plain_ok(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_alphabetic() || matches!(first, '_' | '/' | '(')) || s.ends_with(' ') {
        return false;
    }
    // In a flow collection the loader's scanner refuses a `-` just before the closing
    // bracket or separator (`[a -]`, `{k: b-}`), so such a string is quoted there.
    if flow && s.ends_with('-') {
        return false;
    }
    let allowed = |c: char| {
        c.is_alphanumeric()
            || matches!(
                c,
                ' ' | '.' | '_' | '-' | '@' | '+' | '/' | '(' | ')' | '&' | '\''
            )
            || (c == ',' && !flow)
    };
    if !s.chars().all(allowed) {
        return false;
    }
    !["null", "true", "false", "yes", "no", "on", "off", "y", "n"]
        .iter()
        .any(|word| s.eq_ignore_ascii_case(word))
}

/// Characters a YAML file may not hold literally (outside the printable set of YAML 1.2
/// §5.1), plus line and paragraph separators and the byte-order mark, which some readers
/// treat specially.
fn needs_escape(c: char) -> bool {
    let u = u32::from(c);
    u < 0x20
        || (0x7f..=0x9f).contains(&u)
        || matches!(u, 0x2028 | 0x2029 | 0xfeff | 0xfffe | 0xffff)
}

fn scalar(out: &mut String, s: &str, flow: bool) {
    use std::fmt::Write as _;
    if plain_ok(s, flow) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::yaml::Limits;
    use crate::desired::yaml::read::{NodeKind, Plain, parse, resolve_plain};
    use crate::model::FileId;

    const F: FileId = FileId(0);

    /// The scalar a document `k: <value>` holds, and whether it was written plain.
    fn read_back(doc: &str) -> (String, bool) {
        let root = parse(F, doc, Limits::DEFAULT)
            .unwrap_or_else(|e| panic!("{doc:?}: {e:?}"))
            .unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("{root:?}")
        };
        match &entries[0].1.kind {
            NodeKind::Scalar { text, plain } => (text.to_string(), *plain),
            other => panic!("{other:?}"),
        }
    }

    // Strings YAML readers would take for something else are quoted; ordinary names, emails
    // and titles stay plain.
    #[test]
    fn quoting_decisions() {
        let write = |s: &str| {
            let mut w = Writer::new();
            w.entry("k", &Emit::str(s));
            w.finish()
        };
        for s in [
            "00123",
            "yes",
            "No",
            "null",
            "~",
            "",
            "2023-04-17",
            "+14155550123",
            "true",
            "1e3",
            ".5",
            "-x",
            "a: b",
            "a #b",
            "'q",
            "\"q",
            "x ",
            " x",
            "@home",
            "*ref",
            "&a",
            "!tag",
            "---",
            "tel:+1-415-555-0142;ext=42",
            "a\nb",
            "tab\there",
            "\u{85}",
            "\u{feff}x",
        ] {
            let doc = write(s);
            assert!(doc.starts_with("k: \""), "{s:?} must be quoted: {doc}");
            assert_eq!(read_back(&doc), (s.to_owned(), false), "{doc}");
        }
        for s in [
            "maria.lopez@northwind.example",
            "Senior Agent",
            "Sales & Billing",
            "O'Brien",
            "Zoë Ångström",
            "VP, Sales",
            "_x",
        ] {
            assert_eq!(write(s), format!("k: {s}\n"));
            assert_eq!(read_back(&write(s)), (s.to_owned(), true));
        }
        // In flow context a comma ends a plain scalar, so there it is quoted.
        let mut w = Writer::new();
        w.entry(
            "k",
            &Emit::FlowList(vec![Emit::str("VP, Sales"), Emit::str("x")]),
        );
        assert_eq!(w.finish(), "k: [\"VP, Sales\", x]\n");
    }

    // The block layout: items with their first key on the dash's line, nested lists and
    // mappings, one-line lists and mappings, empty lists, numbers and comments.
    #[test]
    fn block_layout() {
        let user = Emit::Map(vec![
            ("userName", Emit::str("a@x.example")),
            ("active", Emit::Bool(true)),
            (
                "emails",
                Emit::List(vec![Emit::FlowMap(vec![
                    ("value", Emit::str("a@x.example")),
                    ("primary", Emit::Bool(true)),
                ])]),
            ),
            (
                "routingSkills",
                Emit::List(vec![Emit::FlowMap(vec![
                    ("name", Emit::str("Billing")),
                    ("proficiency", Emit::Number(4.0)),
                ])]),
            ),
            ("roles", Emit::FlowList(vec![Emit::str("Agent")])),
            ("members", Emit::List(vec![])),
        ]);
        let mut w = Writer::new();
        w.comment("Users.\n\nbell \u{7}");
        w.list_key("users");
        w.items(&item(&user));
        w.blank();
        w.entry(
            "ownership",
            &Emit::FlowMap(vec![("users", Emit::str("listed"))]),
        );
        w.entry(
            "policy",
            &Emit::Map(vec![("maxGroupDepth", Emit::Number(7.0))]),
        );
        let doc = w.finish();
        assert_eq!(
            doc,
            "# Users.\n#\n# bell \u{fffd}\nusers:\n  - userName: a@x.example\n    active: true\n    \
             emails:\n      - {value: a@x.example, primary: true}\n    routingSkills:\n      \
             - {name: Billing, proficiency: 4}\n    roles: [Agent]\n    members: []\n\n\
             ownership: {users: listed}\npolicy:\n  maxGroupDepth: 7\n"
        );
        assert!(parse(F, &doc, Limits::DEFAULT).unwrap().is_some());
        let mut n = String::new();
        for x in [0.1 + 0.2, 3.5, 5.0, 1e-7, f64::INFINITY] {
            n.clear();
            number(&mut n, x);
            assert_eq!(
                read_back(&format!("k: {n}\n")).0.parse::<f64>().ok(),
                (x.is_finite()).then_some(x)
            );
        }
    }

    /// Writes `s` under a key (in a flow list when `flow`) and reads it back through the
    /// loader's parser: the text read, whether it was plain, and the document.
    fn written_and_read(s: &str, flow: bool) -> (String, bool, String) {
        let mut w = Writer::new();
        if flow {
            w.entry("k", &Emit::FlowList(vec![Emit::str(s)]));
        } else {
            w.entry("k", &Emit::str(s));
        }
        let doc = w.finish();
        let root = parse(F, &doc, Limits::DEFAULT)
            .unwrap_or_else(|e| panic!("{e:?} in {doc:?}"))
            .unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("{root:?}")
        };
        let node = match &entries[0].1.kind {
            NodeKind::Seq(items) => &items[0],
            _ => &entries[0].1,
        };
        let NodeKind::Scalar { text, plain } = &node.kind else {
            panic!("{node:?}")
        };
        (text.to_string(), *plain, doc)
    }

    #[test]
    fn a_trailing_dash_in_a_flow_list_is_quoted() {
        // Found by `any_string_reads_back` in CI: `[a -]` is refused by the loader's scanner.
        for (s, flow) in [("a -", true), ("a-", true), ("a -", false), ("b - c", true)] {
            let (text, plain, doc) = written_and_read(s, flow);
            assert_eq!(text, s, "{doc}");
            assert_eq!(plain, !(flow && s.ends_with('-')), "{doc}");
        }
    }

    proptest::proptest! {
        // Any string, in block or flow context, reads back through the loader's parser as
        // itself; when written plain, it resolves to a string, not a number, boolean or null.
        #[test]
        fn any_string_reads_back(s in "\\PC*|[ -~]{0,12}|[0-9a-z:#,'\" .+-]{0,8}", flow in proptest::bool::ANY) {
            let (text, plain, doc) = written_and_read(&s, flow);
            proptest::prop_assert_eq!(text.as_str(), s.as_str(), "{}", doc);
            if plain {
                proptest::prop_assert_eq!(resolve_plain(&text), Plain::Str);
            }
        }
    }
}
