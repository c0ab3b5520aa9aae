//! Reading YAML: `saphyr-parser` turns text into events with positions; [`parse`] builds a
//! small tree of [`Node`]s that keeps `line:col` for every value, enforcing the limits that
//! make hostile input harmless (size, nesting depth, node count including alias expansion,
//! duplicate keys, a single document); [`parse_streaming`] hands the items of top-level lists
//! out as they are read. Plain scalars resolve under the YAML 1.2 core schema here.

use std::borrow::Cow;
use std::collections::HashSet;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

use crate::model::{FileId, Span};

/// Bounds that keep parsing linear in the input and bounded in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Deepest nesting of lists and mappings.
    pub max_depth: usize,
    /// Most nodes one document may produce, counting every alias expansion.
    pub max_nodes: usize,
}

impl Limits {
    /// 8 MiB per file, 64 levels, half a million values (about 10,000 users per file).
    pub const DEFAULT: Limits = Limits {
        max_file_bytes: 8 << 20,
        max_depth: 64,
        max_nodes: 500_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A YAML syntax problem or a broken limit, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is.
    pub span: Span,
    /// What is wrong, lower case, no trailing period.
    pub message: String,
}

/// A parsed YAML value with the position where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node<'a> {
    /// Where the value starts.
    pub span: Span,
    /// The value.
    pub kind: NodeKind<'a>,
}

/// The shapes of a YAML value.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind<'a> {
    /// A scalar. `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        /// The scalar's text after unescaping.
        text: Cow<'a, str>,
        /// Whether it was written unquoted (and so may be a null, boolean or number).
        plain: bool,
    },
    /// A list.
    Seq(Vec<Node<'a>>),
    /// A mapping, in source order. Keys are scalars and unique.
    Map(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    /// Whether this is a null scalar (`~`, `null`, or nothing at all), per the YAML 1.2 core
    /// schema.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if is_null_text(text))
    }

    /// A short description for messages: "a list", "a mapping", "a string", ...
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Scalar { plain: false, .. } => "a string",
            NodeKind::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Null => "an empty value",
                Plain::Bool(_) => "a boolean",
                Plain::Int(_) | Plain::Uint(_) | Plain::Float(_) => "a number",
                Plain::Str => "a string",
            },
        }
    }
}

pub(super) fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// What a plain scalar means under the YAML 1.2 core schema.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str,
}

pub(super) fn resolve_plain(text: &str) -> Plain {
    match text {
        t if is_null_text(t) => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Plain::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    let bytes = text.as_bytes();
    let digits = bytes
        .strip_prefix(b"-")
        .or_else(|| bytes.strip_prefix(b"+"))
        .unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Ok(n) = text.parse::<u64>() {
            return Plain::Uint(n);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Plain::Int(n);
        }
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(n) = u64::from_str_radix(hex, 16)
    {
        return Plain::Uint(n);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(n) = u64::from_str_radix(oct, 8)
    {
        return Plain::Uint(n);
    }
    let looks_numeric = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.'))
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Plain::Float(f);
    }
    Plain::Str
}

/// Parses one YAML document. `Ok(None)` means the text holds no document (empty or comments
/// only). A leading byte-order mark is ignored.
pub fn parse(file: FileId, text: &str, limits: Limits) -> Result<Option<Node<'_>>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Builder::new(file, limits, None).run(text)
}

/// A receiver of list items from [`parse_streaming`]: the index of the top-level entry the list
/// belongs to, that entry's key, and the item.
pub type ItemSink<'s, 'a> = dyn FnMut(usize, &Node<'a>, Node<'a>) + 's;

/// Parses one document like [`parse`], except that each item of a list that is the value of a
/// top-level key goes to `sink` as soon as it is read, in document order, instead of into the
/// tree, where such lists stay empty. A file of 10,000 users then never holds more than one
/// user's nodes at a time. A list with an anchor is kept whole, since an alias may repeat it.
/// Limits apply exactly as in [`parse`]; on an error, whatever `sink` received is to be
/// discarded, since the file as a whole is invalid.
pub fn parse_streaming<'a>(
    file: FileId,
    text: &'a str,
    limits: Limits,
    sink: &mut ItemSink<'_, 'a>,
) -> Result<Option<Node<'a>>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Builder::new(file, limits, Some(sink)).run(text)
}

enum Frame<'a> {
    Seq {
        span: Span,
        anchor: usize,
        first_node: usize,
        items: Vec<Node<'a>>,
    },
    Map {
        span: Span,
        anchor: usize,
        first_node: usize,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
        keys: Option<HashSet<String>>,
    },
}

struct Builder<'a, 's> {
    file: FileId,
    limits: Limits,
    /// Where items of top-level lists go instead of the tree, when streaming.
    sink: Option<&'s mut ItemSink<'s, 'a>>,
    stack: Vec<Frame<'a>>,
    /// Anchored nodes by anchor id, with their size in nodes (for the expansion budget).
    anchors: Vec<Option<(Node<'a>, usize)>>,
    nodes: usize,
    root: Option<Node<'a>>,
    documents: usize,
}

impl<'a, 's> Builder<'a, 's> {
    fn new(
        file: FileId,
        limits: Limits,
        sink: Option<&'s mut ItemSink<'s, 'a>>,
    ) -> Builder<'a, 's> {
        Builder {
            file,
            limits,
            sink,
            stack: Vec::new(),
            anchors: Vec::new(),
            nodes: 0,
            root: None,
            documents: 0,
        }
    }

    fn span(&self, marker: saphyr_parser::Marker) -> Span {
        let line = u32::try_from(marker.line()).unwrap_or(u32::MAX);
        let col = u32::try_from(marker.col() + 1).unwrap_or(u32::MAX);
        Span::at(self.file, line, col)
    }

    #[allow(clippy::unused_self)] // kept a method so every error is built the same way
    fn error(&self, span: Span, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            span,
            message: message.into(),
        }
    }

    fn scan_error(&self, err: &ScanError) -> SyntaxError {
        let span = self.span(*err.marker());
        let info = err.info();
        let message = if info.contains("recursion limit") {
            format!("nesting is deeper than {} levels", self.limits.max_depth)
        } else if info.contains("tab") {
            format!("{info} (YAML does not allow tabs for indentation; use spaces)")
        } else {
            info.to_owned()
        };
        self.error(span, message)
    }

    #[allow(clippy::too_many_lines)] // one arm per parser event
    fn run(mut self, text: &'a str) -> Result<Option<Node<'a>>, SyntaxError> {
        for item in Parser::new_from_str(text) {
            let (event, range) = item.map_err(|e| self.scan_error(&e))?;
            let span = self.span(range.start);
            match event {
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(self.error(
                            span,
                            "a file may hold only one YAML document (found a second `---`)",
                        ));
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    if let Some(tag) = tag {
                        let core_str = (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:")
                            && tag.suffix == "str";
                        if !core_str {
                            return Err(self.error(
                                span,
                                format!(
                                    "YAML tags are not supported (found `{}{}`)",
                                    tag.handle, tag.suffix
                                ),
                            ));
                        }
                        let node = Node {
                            span,
                            kind: NodeKind::Scalar { text, plain: false },
                        };
                        self.finish(node, anchor, 1)?;
                    } else {
                        let plain = style == ScalarStyle::Plain;
                        let node = Node {
                            span,
                            kind: NodeKind::Scalar { text, plain },
                        };
                        self.finish(node, anchor, 1)?;
                    }
                }
                Event::SequenceStart(anchor, tag) => {
                    self.reject_tag(span, tag.as_deref())?;
                    self.open(span)?;
                    self.stack.push(Frame::Seq {
                        span,
                        anchor,
                        first_node: self.nodes,
                        items: Vec::new(),
                    });
                }
                Event::MappingStart(anchor, tag) => {
                    self.reject_tag(span, tag.as_deref())?;
                    self.open(span)?;
                    self.stack.push(Frame::Map {
                        span,
                        anchor,
                        first_node: self.nodes,
                        entries: Vec::new(),
                        key: None,
                        keys: None,
                    });
                }
                Event::SequenceEnd => match self.stack.pop() {
                    Some(Frame::Seq {
                        span,
                        anchor,
                        first_node,
                        items,
                    }) => {
                        let size = self.nodes - first_node;
                        self.finish(
                            Node {
                                span,
                                kind: NodeKind::Seq(items),
                            },
                            anchor,
                            size,
                        )?;
                    }
                    _ => return Err(self.error(span, "unbalanced list")),
                },
                Event::MappingEnd => match self.stack.pop() {
                    Some(Frame::Map {
                        span,
                        anchor,
                        first_node,
                        entries,
                        ..
                    }) => {
                        let size = self.nodes - first_node;
                        self.finish(
                            Node {
                                span,
                                kind: NodeKind::Map(entries),
                            },
                            anchor,
                            size,
                        )?;
                    }
                    _ => return Err(self.error(span, "unbalanced mapping")),
                },
                Event::Alias(id) => {
                    let Some(Some((node, size))) = self.anchors.get(id) else {
                        return Err(self.error(span, "alias refers to an unknown anchor"));
                    };
                    let (mut node, size) = (node.clone(), *size);
                    // The alias is reported where it is used; its content keeps its own spans.
                    node.span = span;
                    self.count(size, span)?;
                    self.attach(node)?;
                }
            }
        }
        Ok(self.root)
    }

    fn reject_tag(&self, span: Span, tag: Option<&saphyr_parser::Tag>) -> Result<(), SyntaxError> {
        match tag {
            None => Ok(()),
            Some(tag) => Err(self.error(
                span,
                format!(
                    "YAML tags are not supported (found `{}{}`)",
                    tag.handle, tag.suffix
                ),
            )),
        }
    }

    fn open(&mut self, span: Span) -> Result<(), SyntaxError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error(
                span,
                format!("nesting is deeper than {} levels", self.limits.max_depth),
            ));
        }
        self.count(1, span)
    }

    fn count(&mut self, nodes: usize, span: Span) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > self.limits.max_nodes {
            return Err(self.error(
                span,
                format!(
                    "document expands to more than {} values (an alias bomb, or a file to split)",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    /// Records a completed node: registers its anchor and hands it to its parent.
    fn finish(&mut self, node: Node<'a>, anchor: usize, size: usize) -> Result<(), SyntaxError> {
        if matches!(node.kind, NodeKind::Scalar { .. }) {
            self.count(1, node.span)?;
        }
        if anchor > 0 {
            if self.anchors.len() <= anchor {
                self.anchors.resize_with(anchor + 1, || None);
            }
            self.anchors[anchor] = Some((node.clone(), size.max(1)));
        }
        self.attach(node)
    }

    fn attach(&mut self, node: Node<'a>) -> Result<(), SyntaxError> {
        if let (Some(sink), [top, list]) = (&mut self.sink, self.stack.as_slice())
            && let (
                Frame::Map {
                    entries,
                    key: Some(key),
                    ..
                },
                Frame::Seq { anchor: 0, .. },
            ) = (top, list)
        {
            sink(entries.len(), key, node);
            return Ok(());
        }
        let file = self.file;
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries, key, keys, ..
            }) => match key.take() {
                None => {
                    let NodeKind::Scalar { text, .. } = &node.kind else {
                        return Err(SyntaxError {
                            span: node.span,
                            message: "mapping keys must be plain strings".into(),
                        });
                    };
                    let duplicate = if let Some(set) = keys {
                        !set.insert(text.to_string())
                    } else {
                        entries.iter().any(|(k, _)| matches!(&k.kind, NodeKind::Scalar { text: t, .. } if t == text))
                    };
                    if duplicate {
                        let first = entries
                            .iter()
                            .find(|(k, _)| matches!(&k.kind, NodeKind::Scalar { text: t, .. } if t == text))
                            .map_or(node.span, |(k, _)| k.span);
                        return Err(SyntaxError {
                            span: node.span,
                            message: format!(
                                "duplicate key `{text}` (first at line {}:{})",
                                first.line, first.col
                            ),
                        });
                    }
                    // Switch to a hash set once a mapping is large, so duplicate checks stay
                    // linear on hostile input.
                    if keys.is_none() && entries.len() >= 32 {
                        let mut set: HashSet<String> = entries
                            .iter()
                            .filter_map(|(k, _)| match &k.kind {
                                NodeKind::Scalar { text, .. } => Some(text.to_string()),
                                _ => None,
                            })
                            .collect();
                        set.insert(text.to_string());
                        *keys = Some(set);
                    }
                    let _ = file;
                    *key = Some(node);
                    Ok(())
                }
                Some(k) => {
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: FileId = FileId(0);

    fn text<'n>(node: &'n Node<'_>) -> &'n str {
        match &node.kind {
            NodeKind::Scalar { text, .. } => text,
            _ => "",
        }
    }

    /// (entry, key, item) as a sink received them.
    type Received = Vec<(usize, String, String)>;

    /// Streams `yaml`, returning what the sink received and the tree left over.
    fn stream(yaml: &str) -> (Received, Result<Option<Node<'_>>, SyntaxError>) {
        let mut got = Vec::new();
        let mut sink = |entry: usize, key: &Node<'_>, item: Node<'_>| {
            let item = match &item.kind {
                NodeKind::Map(entries) => format!("{{{}}}", text(&entries[0].1)),
                _ => text(&item).to_owned(),
            };
            got.push((entry, text(key).to_owned(), item));
        };
        let root = parse_streaming(F, yaml, Limits::DEFAULT, &mut sink);
        (got, root)
    }

    // Items of top-level lists arrive in order with their entry and key, and leave their lists
    // empty; nested lists and other values stay in the tree.
    #[test]
    fn streams_top_level_list_items() {
        let (got, root) = stream("a: [x, {k: y}]\nb: 1\nc:\n  - z\n  - [n, m]\nd: {e: [p]}\n");
        let got: Vec<(usize, &str, &str)> = got
            .iter()
            .map(|(e, k, i)| (*e, k.as_str(), i.as_str()))
            .collect();
        assert_eq!(
            got,
            [(0, "a", "x"), (0, "a", "{y}"), (2, "c", "z"), (2, "c", "")]
        );
        let root = root.unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("{root:?}")
        };
        assert!(matches!(&entries[0].1.kind, NodeKind::Seq(items) if items.is_empty()));
        assert_eq!(entries[0].1.span, Span::at(F, 1, 4));
        assert!(matches!(&entries[3].1.kind, NodeKind::Map(inner) if inner.len() == 1));
    }

    // An anchored list is kept whole so that an alias can repeat it; aliases inside a streamed
    // list arrive expanded, at the alias's position.
    #[test]
    fn anchored_lists_stay_and_aliases_expand() {
        let (got, root) = stream("a: &l [x, &i y]\nb: [*i, z]\nc: *l\n");
        let got: Vec<(usize, &str)> = got.iter().map(|(e, _, i)| (*e, i.as_str())).collect();
        assert_eq!(got, [(1, "y"), (1, "z")]);
        let root = root.unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("{root:?}")
        };
        for (_, value) in [&entries[0], &entries[2]] {
            assert!(matches!(&value.kind, NodeKind::Seq(items) if items.len() == 2));
        }
    }

    // A later error still fails the whole parse, after items were already handed over.
    #[test]
    fn errors_after_streaming_still_fail() {
        let (got, root) = stream("a: [x]\na: [y]\n");
        assert_eq!(got.len(), 1);
        assert_eq!(
            root.unwrap_err().message,
            "duplicate key `a` (first at line 1:1)"
        );
        // A document that is not a mapping streams nothing.
        let (got, root) = stream("- [x]\n- y\n");
        assert!(got.is_empty());
        assert!(root.unwrap().is_some());
    }
}
