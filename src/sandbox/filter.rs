//! SCIM filter expressions (RFC 7644 §3.4.2.2) and attribute paths: parsing text into a
//! [`Filter`] tree and evaluating it against one resource held as a JSON object. It also tells
//! the store which index could answer a filter ([`Filter::index_hint`]). It knows nothing about
//! HTTP or storage.
//!
//! Semantics, where the RFC leaves room: attribute names are case-insensitive; string
//! comparison is case-insensitive except for `id`, `externalId`, `$ref`, `meta.version`,
//! `meta.location` and the `value` of `members`/`manager` (identifiers, `caseExact` in RFC 7643);
//! a multi-valued attribute matches when any value matches; `ne` is the negation of `eq`; strings
//! that both parse as RFC 3339 timestamps compare as instants; booleans and numbers compare typed.
//! An attribute the resource lacks matches nothing (the sandbox keeps no schema, so unknown
//! attributes are not an error).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::clock::parse_rfc3339;
use super::error::ScimError;

/// An attribute path: `[urn ":"] attr ["." sub]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttrPath {
    /// The schema URN prefix, if written.
    pub(crate) urn: Option<String>,
    /// The attribute name.
    pub(crate) attr: String,
    /// The sub-attribute name, if written.
    pub(crate) sub: Option<String>,
}

impl AttrPath {
    /// Parses `text` as an attribute path. A `urn:` prefix is everything up to the last `:`.
    pub(crate) fn parse(text: &str) -> Option<AttrPath> {
        let (urn, rest) = if text.len() > 4 && text[..4].eq_ignore_ascii_case("urn:") {
            let cut = text.rfind(':')?;
            (Some(text[..cut].to_owned()), &text[cut + 1..])
        } else {
            (None, text)
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub)),
            None => (rest, None),
        };
        if !valid_name(attr) || sub.is_some_and(|s| !valid_name(s)) {
            return None;
        }
        Some(AttrPath {
            urn,
            attr: attr.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }

    /// Whether this path names a top-level attribute of the resource's core schema (no URN, or
    /// the core URN itself).
    pub(crate) fn is_core(&self, core_urn: &str) -> bool {
        self.urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(core_urn))
    }

    /// Whether this is the plain core attribute `name` (no sub-attribute).
    pub(crate) fn is_core_attr(&self, core_urn: &str, name: &str) -> bool {
        self.sub.is_none() && self.is_core(core_urn) && self.attr.eq_ignore_ascii_case(name)
    }
}

/// RFC 7643 §2.1 ATTRNAME (plus `$ref`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some('$') => name.eq_ignore_ascii_case("$ref"),
        Some(c) if c.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A comparison value, pre-digested for evaluation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Str {
        text: String,
        /// `text` lowercased, for case-insensitive comparison.
        folded: String,
        /// `text` as an instant, when it is an RFC 3339 timestamp.
        instant: Option<i128>,
    },
}

impl Literal {
    fn string(text: String) -> Literal {
        Literal::Str {
            folded: text.to_lowercase(),
            instant: parse_rfc3339(&text),
            text,
        }
    }
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    /// Any of these (never fewer than two).
    Or(Vec<Filter>),
    /// All of these (never fewer than two).
    And(Vec<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Literal,
    },
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`.
    Elements {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// Where an index can find every resource a filter may match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IndexKey {
    Id(String),
    /// `userName` / `displayName`, already lowercased.
    Name(String),
    ExternalId(String),
    /// Groups having a member with this `value`.
    Member(String),
}

impl Filter {
    /// Parses a filter; any syntax error is a 400 `invalidFilter`.
    pub(crate) fn parse(text: &str) -> Result<Filter, ScimError> {
        let tokens = tokenize(text).map_err(ScimError::invalid_filter)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            depth: 0,
            terms: 0,
        };
        let filter = parser.or_expr().map_err(ScimError::invalid_filter)?;
        if parser.pos != parser.tokens.len() {
            return Err(ScimError::invalid_filter(format!(
                "unexpected {} in filter",
                parser.tokens[parser.pos]
            )));
        }
        Ok(filter)
    }

    /// Whether the resource `doc` (whose core schema is `core_urn`) matches.
    pub(crate) fn matches(&self, doc: &Map<String, Value>, core_urn: &str) -> bool {
        eval(
            self,
            doc,
            &Scope {
                core_urn,
                parent: None,
            },
        )
    }

    /// Whether one value of the multi-valued attribute `parent` matches (PATCH value filters).
    pub(crate) fn matches_element(&self, element: &Value, parent: &str) -> bool {
        match element {
            Value::Object(map) => eval(
                self,
                map,
                &Scope {
                    core_urn: "",
                    parent: Some(parent),
                },
            ),
            // A multi-valued attribute of simple values: the filter's `value` is the value.
            other => {
                let mut wrapper = Map::new();
                wrapper.insert("value".to_owned(), other.clone());
                eval(
                    self,
                    &wrapper,
                    &Scope {
                        core_urn: "",
                        parent: Some(parent),
                    },
                )
            }
        }
    }

    /// Index keys whose union holds every resource this filter can match, or `None` when only
    /// a full scan can tell. `name_attr` is `userName` or `displayName`; `core_urn` the
    /// resource's core schema.
    pub(crate) fn index_hint(&self, core_urn: &str, name_attr: &str) -> Option<Vec<IndexKey>> {
        match self {
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: Literal::Str { text, folded, .. },
            } => {
                if path.is_core_attr(core_urn, "id") {
                    Some(vec![IndexKey::Id(text.clone())])
                } else if path.is_core_attr(core_urn, "externalId") {
                    Some(vec![IndexKey::ExternalId(text.clone())])
                } else if path.is_core_attr(core_urn, name_attr) {
                    Some(vec![IndexKey::Name(folded.clone())])
                } else if path.is_core(core_urn)
                    && path.attr.eq_ignore_ascii_case("members")
                    && path
                        .sub
                        .as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case("value"))
                {
                    Some(vec![IndexKey::Member(text.clone())])
                } else {
                    None
                }
            }
            Filter::Elements { path, filter } if path.is_core_attr(core_urn, "members") => {
                member_hint(filter)
            }
            // Any conjunct's keys will do; take the fewest.
            Filter::And(all) => all
                .iter()
                .filter_map(|f| f.index_hint(core_urn, name_attr))
                .min_by_key(Vec::len),
            // Every disjunct needs keys.
            Filter::Or(any) => any.iter().try_fold(Vec::new(), |mut keys, f| {
                keys.extend(f.index_hint(core_urn, name_attr)?);
                Some(keys)
            }),
            _ => None,
        }
    }
}

/// Index keys for the inner filter of `members[...]`.
fn member_hint(inner: &Filter) -> Option<Vec<IndexKey>> {
    match inner {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::Str { text, .. },
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.attr.eq_ignore_ascii_case("value") =>
        {
            Some(vec![IndexKey::Member(text.clone())])
        }
        Filter::And(all) => all.iter().filter_map(member_hint).min_by_key(Vec::len),
        Filter::Or(any) => any.iter().try_fold(Vec::new(), |mut keys, f| {
            keys.extend(member_hint(f)?);
            Some(keys)
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens and parser

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    Str(String),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::OpenBracket => f.write_str("`[`"),
            Token::CloseBracket => f.write_str("`]`"),
            Token::Word(w) => write!(f, "`{w}`"),
            Token::Str(s) => write!(f, "string {s:?}"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'[' => {
                tokens.push(Token::OpenBracket);
                i += 1;
            }
            b']' => {
                tokens.push(Token::CloseBracket);
                i += 1;
            }
            b'"' => {
                let end = string_end(bytes, i).ok_or("unterminated string in filter")?;
                let literal: String = serde_json::from_str(&text[i..=end])
                    .map_err(|e| format!("bad string literal in filter: {e}"))?;
                tokens.push(Token::Str(literal));
                i = end + 1;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'[' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                tokens.push(Token::Word(text[start..i].to_owned()));
            }
        }
    }
    Ok(tokens)
}

/// The index of the quote closing the string that opens at `start`.
pub(crate) fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Deepest nesting of parentheses, `not` and value filters accepted.
const MAX_DEPTH: usize = 32;
/// Most comparisons in one filter.
const MAX_TERMS: usize = 1000;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Current nesting, bounded by [`MAX_DEPTH`] so hostile input cannot exhaust the stack.
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(ref got) if got == want => Ok(()),
            Some(got) => Err(format!("expected {want}, found {got}")),
            None => Err(format!("expected {want} at end of filter")),
        }
    }

    fn or_expr(&mut self) -> Result<Filter, String> {
        let mut any = vec![self.and_expr()?];
        while self.peek_keyword("or") {
            self.pos += 1;
            any.push(self.and_expr()?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Filter::Or(any)
        })
    }

    fn and_expr(&mut self) -> Result<Filter, String> {
        let mut all = vec![self.unary()?];
        while self.peek_keyword("and") {
            self.pos += 1;
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Filter::And(all)
        })
    }

    /// Parses something nested one level deeper.
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("filter nested deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_keyword("not") && matches!(self.tokens.get(self.pos + 1), Some(Token::Open)) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.nested(Self::unary)?)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.nested(Self::or_expr)?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Some(Token::Word(word)) => self.attr_expr(&word),
            Some(other) => Err(format!("expected an attribute path, found {other}")),
            None => Err("empty filter expression".to_owned()),
        }
    }

    fn attr_expr(&mut self, word: &str) -> Result<Filter, String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("filter has more than {MAX_TERMS} comparisons"));
        }
        let path =
            AttrPath::parse(word).ok_or_else(|| format!("invalid attribute path `{word}`"))?;
        if matches!(self.peek(), Some(Token::OpenBracket)) {
            self.pos += 1;
            let inner = self.nested(Self::or_expr)?;
            self.expect(&Token::CloseBracket)?;
            return Ok(Filter::Elements {
                path,
                filter: Box::new(inner),
            });
        }
        let op_word = match self.next() {
            Some(Token::Word(w)) => w,
            Some(other) => {
                return Err(format!(
                    "expected an operator after `{word}`, found {other}"
                ));
            }
            None => return Err(format!("expected an operator after `{word}`")),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op =
            CompareOp::parse(&op_word).ok_or_else(|| format!("unknown operator `{op_word}`"))?;
        let value = match self.next() {
            Some(Token::Str(s)) => Literal::string(s),
            Some(Token::Word(w)) => literal_word(&w)?,
            Some(other) => {
                return Err(format!("expected a value after `{op_word}`, found {other}"));
            }
            None => return Err(format!("expected a value after `{op_word}`")),
        };
        let string_only = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
        let ordered = matches!(
            op,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        );
        match value {
            Literal::Null | Literal::Bool(_) if string_only || ordered => {
                Err(format!("`{op_word}` cannot compare with a boolean or null"))
            }
            Literal::Number(_) if string_only => Err(format!("`{op_word}` needs a string")),
            value => Ok(Filter::Compare { path, op, value }),
        }
    }
}

fn literal_word(word: &str) -> Result<Literal, String> {
    match word.to_ascii_lowercase().as_str() {
        "true" => Ok(Literal::Bool(true)),
        "false" => Ok(Literal::Bool(false)),
        "null" => Ok(Literal::Null),
        _ => serde_json::from_str::<serde_json::Number>(word)
            .ok()
            .and_then(|n| n.as_f64())
            .map(Literal::Number)
            .ok_or_else(|| format!("`{word}` is not a value (strings need double quotes)")),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

struct Scope<'a> {
    core_urn: &'a str,
    /// The multi-valued attribute whose values a value filter is looking at.
    parent: Option<&'a str>,
}

/// Case-insensitive lookup of an attribute (RFC 7643 §2.1: attribute names are
/// case-insensitive).
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The object holding the attributes of `path`'s schema: the resource itself or an extension.
fn container<'a>(
    doc: &'a Map<String, Value>,
    path: &AttrPath,
    scope: &Scope<'_>,
) -> Option<&'a Map<String, Value>> {
    match &path.urn {
        None => Some(doc),
        Some(urn) if urn.eq_ignore_ascii_case(scope.core_urn) => Some(doc),
        Some(urn) => get_ci(doc, urn)?.as_object(),
    }
}

/// The raw value of `path` without its sub-attribute.
fn attribute<'a>(
    doc: &'a Map<String, Value>,
    path: &AttrPath,
    scope: &Scope<'_>,
) -> Option<&'a Value> {
    get_ci(container(doc, path, scope)?, &path.attr)
}

/// Every simple value `path` designates, multi-valued attributes flattened; complex values
/// without a sub-attribute stand for their `value` sub-attribute.
pub(crate) fn leaves<'a>(
    doc: &'a Map<String, Value>,
    path: &AttrPath,
    core_urn: &str,
) -> Vec<&'a Value> {
    leaves_in(
        doc,
        path,
        &Scope {
            core_urn,
            parent: None,
        },
    )
}

fn leaves_in<'a>(
    doc: &'a Map<String, Value>,
    path: &AttrPath,
    scope: &Scope<'_>,
) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(value) = attribute(doc, path, scope) else {
        return out;
    };
    let push_flat = |out: &mut Vec<&'a Value>, v: &'a Value| match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    };
    match (&path.sub, value) {
        (Some(sub), Value::Array(items)) => {
            for item in items {
                if let Some(v) = item.as_object().and_then(|o| get_ci(o, sub)) {
                    push_flat(&mut out, v);
                }
            }
        }
        (Some(sub), Value::Object(obj)) => {
            if let Some(v) = get_ci(obj, sub) {
                push_flat(&mut out, v);
            }
        }
        (Some(_), _) => {}
        (None, Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Object(obj) => out.extend(get_ci(obj, "value")),
                    other => out.push(other),
                }
            }
        }
        (None, Value::Object(obj)) => out.extend(get_ci(obj, "value")),
        (None, other) => out.push(other),
    }
    out
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(map) => map.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Identifiers compare case-exactly (RFC 7643 `caseExact: true`); everything else does not.
fn case_exact(path: &AttrPath, scope: &Scope<'_>) -> bool {
    let (parent, leaf) = match &path.sub {
        Some(sub) => (Some(path.attr.as_str()), sub.as_str()),
        None => (scope.parent, path.attr.as_str()),
    };
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let parent_is = |name: &str| parent.is_some_and(|p| is(p, name));
    (is(leaf, "id") && parent.is_none())
        || is(leaf, "externalId")
        || is(leaf, "$ref")
        || (is(leaf, "value") && (parent_is("members") || parent_is("manager")))
        || (parent_is("meta") && (is(leaf, "version") || is(leaf, "location")))
        || (path.sub.is_none()
            && scope.parent.is_none()
            && (is(leaf, "members") || is(leaf, "manager")))
}

fn eval(filter: &Filter, doc: &Map<String, Value>, scope: &Scope<'_>) -> bool {
    match filter {
        Filter::Or(any) => any.iter().any(|f| eval(f, doc, scope)),
        Filter::And(all) => all.iter().all(|f| eval(f, doc, scope)),
        Filter::Not(inner) => !eval(inner, doc, scope),
        Filter::Present(path) => {
            if path.sub.is_none() {
                attribute(doc, path, scope).is_some_and(is_present)
            } else {
                leaves_in(doc, path, scope).into_iter().any(is_present)
            }
        }
        Filter::Compare { path, op, value } => {
            let values = leaves_in(doc, path, scope);
            compare_any(&values, *op, value, case_exact(path, scope))
        }
        Filter::Elements { path, filter } => {
            let inner = Scope {
                core_urn: "",
                parent: Some(&path.attr),
            };
            let target = if path.sub.is_some() {
                leaves_in(doc, path, scope)
            } else {
                attribute(doc, path, scope).into_iter().collect()
            };
            target.into_iter().any(|value| match value {
                Value::Array(items) => items.iter().any(|item| {
                    item.as_object()
                        .is_some_and(|obj| eval(filter, obj, &inner))
                }),
                Value::Object(obj) => eval(filter, obj, &inner),
                _ => false,
            })
        }
    }
}

fn compare_any(values: &[&Value], op: CompareOp, literal: &Literal, exact: bool) -> bool {
    match op {
        CompareOp::Eq => match literal {
            Literal::Null => values.iter().all(|v| v.is_null()),
            _ => values.iter().any(|v| equals(v, literal, exact)),
        },
        CompareOp::Ne => !compare_any(values, CompareOp::Eq, literal, exact),
        _ => values.iter().any(|v| ordered(v, op, literal, exact)),
    }
}

fn fold_eq(a: &str, b_text: &str, b_folded: &str, exact: bool) -> bool {
    if exact {
        a == b_text
    } else if a.is_ascii() && b_text.is_ascii() {
        a.eq_ignore_ascii_case(b_text)
    } else {
        a.to_lowercase() == b_folded
    }
}

fn equals(value: &Value, literal: &Literal, exact: bool) -> bool {
    match (value, literal) {
        (
            Value::String(s),
            Literal::Str {
                text,
                folded,
                instant,
            },
        ) => {
            if let (Some(want), Some(got)) = (instant, parse_rfc3339(s)) {
                return *want == got;
            }
            fold_eq(s, text, folded, exact)
        }
        (Value::Bool(a), Literal::Bool(b)) => a == b,
        (Value::Number(n), Literal::Number(want)) => {
            n.as_f64().and_then(|got| got.partial_cmp(want)) == Some(Ordering::Equal)
        }
        (Value::Null, Literal::Null) => true,
        _ => false,
    }
}

fn ordered(value: &Value, op: CompareOp, literal: &Literal, exact: bool) -> bool {
    let ordering = match (value, literal) {
        (
            Value::String(s),
            Literal::Str {
                text,
                folded,
                instant,
            },
        ) => {
            let (have, want) = if exact {
                (s.clone(), text.as_str())
            } else {
                (s.to_lowercase(), folded.as_str())
            };
            match op {
                CompareOp::Co => return have.contains(want),
                CompareOp::Sw => return have.starts_with(want),
                CompareOp::Ew => return have.ends_with(want),
                _ => {}
            }
            match (instant, parse_rfc3339(s)) {
                (Some(want_at), Some(got_at)) => got_at.cmp(want_at),
                _ => have.as_str().cmp(want),
            }
        }
        (Value::Number(n), Literal::Number(want)) => {
            match n.as_f64().and_then(|got| got.partial_cmp(want)) {
                Some(ordering) => ordering,
                None => return false,
            }
        }
        _ => return false,
    };
    match op {
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn alice() -> Map<String, Value> {
        let doc = json!({
            "schemas": [USER, ENTERPRISE],
            "id": "abc123",
            "externalId": "HR-1",
            "userName": "Alice@Example.com",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [
                {"value": "alice@work.example", "type": "work", "primary": true},
                {"value": "alice@home.example", "type": "home"}
            ],
            "x-count": 7,
            "meta": {"created": "2026-01-02T03:04:05.000Z", "lastModified": "2026-03-01T00:00:00.000Z"},
            ENTERPRISE: {"employeeNumber": "0042", "manager": {"value": "boss1"}}
        });
        match doc {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn check(filter: &str) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&alice(), USER)
    }

    // Each operator, against strings, numbers, booleans and timestamps.
    #[test]
    fn operators() {
        for (filter, want) in [
            (r#"userName eq "alice@example.com""#, true),
            (r#"USERNAME EQ "ALICE@EXAMPLE.COM""#, true),
            (r#"userName ne "alice@example.com""#, false),
            (r#"userName ne "bob""#, true),
            (r#"userName co "EXAMPLE""#, true),
            (r#"userName sw "ali""#, true),
            (r#"userName ew ".com""#, true),
            (r#"userName ew ".org""#, false),
            (r#"userName gt "a""#, true),
            (r#"userName lt "a""#, false),
            (r#"userName ge "alice@example.com""#, true),
            (r#"userName le "alice@example.com""#, true),
            ("userName pr", true),
            ("title pr", false),
            ("active eq true", true),
            ("active eq false", false),
            ("x-count gt 6", true),
            ("x-count eq 7.0", true),
            ("x-count le 6", false),
            ("title eq null", true),
            ("userName eq null", false),
            ("userName ne null", true),
            (r#"meta.lastModified gt "2026-02-01T00:00:00Z""#, true),
            (r#"meta.created gt "2026-01-02T03:04:05Z""#, false),
            (r#"meta.created eq "2026-01-02T04:04:05+01:00""#, true),
        ] {
            assert_eq!(check(filter), want, "{filter}");
        }
    }

    // Identifiers compare case-exactly; the rest ignore case.
    #[test]
    fn case_exactness() {
        assert!(check(r#"externalId eq "HR-1""#));
        assert!(!check(r#"externalId eq "hr-1""#));
        assert!(check(r#"id eq "abc123""#));
        assert!(!check(r#"id eq "ABC123""#));
        assert!(check(r#"name.familyName eq "LIDDELL""#));
    }

    // and/or/not, precedence and parentheses.
    #[test]
    fn logic() {
        assert!(check(r#"userName sw "a" and active eq true"#));
        assert!(!check(r#"userName sw "b" and active eq true"#));
        assert!(check(r#"userName sw "b" or active eq true"#));
        assert!(check(r#"not (userName sw "b")"#));
        assert!(!check(r#"not(userName sw "a")"#));
        // and binds tighter than or
        assert!(check(
            r#"userName sw "b" and active eq false or name.givenName eq "alice""#
        ));
        assert!(!check(
            r#"userName sw "b" and (active eq false or name.givenName eq "alice")"#
        ));
    }

    // Sub-attributes, multi-valued attributes, value filters and extension URNs.
    #[test]
    fn paths() {
        assert!(check(r#"name.givenName eq "alice""#));
        assert!(check(r#"emails.value eq "alice@home.example""#));
        assert!(check(r#"emails eq "alice@home.example""#));
        assert!(check(r#"emails[type eq "work" and value co "work"]"#));
        assert!(!check(r#"emails[type eq "home" and primary eq true]"#));
        assert!(check(r#"emails[not (type eq "work")]"#));
        assert!(check(&format!(r#"{ENTERPRISE}:employeeNumber eq "0042""#)));
        assert!(check(&format!(r#"{ENTERPRISE}:manager.value eq "boss1""#)));
        assert!(check(&format!(r#"{USER}:userName eq "alice@example.com""#)));
        assert!(!check(r#"nope eq "x""#));
    }

    // Syntax errors are invalidFilter, with a message.
    #[test]
    fn syntax_errors() {
        for bad in [
            "",
            "userName",
            "userName eq",
            r#"userName xx "a""#,
            r#"userName eq "a" and"#,
            r#"(userName eq "a""#,
            r#"emails[type eq "work""#,
            "userName eq alice",
            r#"userName eq "unterminated"#,
            r#"1bad eq "x""#,
            "active gt true",
            "x co 5",
            r#"userName eq "a" )"#,
        ] {
            let err = Filter::parse(bad).expect_err(bad);
            assert_eq!(err.status, 400, "{bad}");
            assert_eq!(err.scim_type, Some("invalidFilter"), "{bad}");
        }
    }

    // Hostile nesting and length are refused instead of exhausting the stack; long flat
    // or-chains (batch lookups) are fine.
    #[test]
    fn limits() {
        let deep = format!("{}userName pr{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            Filter::parse(&deep).expect_err("deep").scim_type,
            Some("invalidFilter")
        );
        let nots = format!("{}userName pr{}", "not (".repeat(40), ")".repeat(40));
        assert!(Filter::parse(&nots).is_err());
        let ok = format!("{}userName pr{}", "(".repeat(30), ")".repeat(30));
        assert!(Filter::parse(&ok).is_ok());
        let ids: Vec<String> = (0..1000).map(|i| format!("id eq \"{i}\"")).collect();
        let many = Filter::parse(&ids.join(" or ")).expect("1000 terms");
        assert_eq!(
            many.index_hint(USER, "userName").map(|k| k.len()),
            Some(1000)
        );
        assert!(Filter::parse(&format!("{} or id eq \"x\"", ids.join(" or "))).is_err());
    }

    // The store can answer indexed equality filters without a scan.
    #[test]
    fn index_hints() {
        let hint = |f: &str, name: &str| Filter::parse(f).expect("parses").index_hint(USER, name);
        assert_eq!(
            hint(r#"userName eq "Bob""#, "userName"),
            Some(vec![IndexKey::Name("bob".into())])
        );
        assert_eq!(
            hint(r#"externalId eq "X" and active eq true"#, "userName"),
            Some(vec![IndexKey::ExternalId("X".into())])
        );
        assert_eq!(
            hint(r#"id eq "a" or id eq "b""#, "userName"),
            Some(vec![IndexKey::Id("a".into()), IndexKey::Id("b".into())])
        );
        assert_eq!(hint(r#"id eq "a" or active eq true"#, "userName"), None);
        assert_eq!(
            hint(r#"members[value eq "u1"]"#, "displayName"),
            Some(vec![IndexKey::Member("u1".into())])
        );
        assert_eq!(hint(r#"userName co "b""#, "userName"), None);
    }
}
