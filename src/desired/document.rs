//! One file's top level: which lists it holds, and each entry read on its own so that a
//! mistake in one user does not hide mistakes in the next. Pure: takes bytes, returns values
//! and diagnostics.

use crate::model::{Config, FileId, Group, License, Role, Span, Spanned, User};

use super::diagnostic::Diagnostic;
use super::intern::{Intern, Interner};
use super::yaml::{self, Limits, Node, NodeKind};

/// What one resource file contributed.
#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    pub(crate) users: Vec<Spanned<User>>,
    pub(crate) groups: Vec<Spanned<Group>>,
    pub(crate) roles: Vec<Spanned<Role>>,
    pub(crate) licenses: Vec<Spanned<License>>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// SHA-256 of the file's bytes, when it could be read.
    pub(crate) digest: Option<[u8; 32]>,
}

/// What `scimctl.yaml` contributed: the config (defaults where a section failed) and where
/// each top-level section was written.
#[derive(Debug, Default)]
pub(crate) struct ParsedConfig {
    pub(crate) config: Config,
    pub(crate) target_span: Option<Span>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// Most problems reported for one file; past this the rest of the file is summarised, so that
/// one broken generator cannot bury every other file's messages.
pub(crate) const MAX_PROBLEMS_PER_FILE: usize = 50;

const RESOURCE_KEYS: &[&str] = &["users", "groups", "roles", "licenses"];
const CONFIG_KEYS: &[&str] = &[
    "target",
    "ownership",
    "collections",
    "prune",
    "safety",
    "protected",
    "policy",
    "watch",
    "secrets",
    "matchBy",
];

/// Decodes UTF-8, pointing at the first invalid byte otherwise.
pub(crate) fn decode(file: FileId, bytes: &[u8]) -> Result<&str, Diagnostic> {
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        #[allow(clippy::naive_bytecount)] // error path only, on at most one file
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let byte = bytes[err.valid_up_to()];
        Diagnostic::error(
            Span::at(
                file,
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(col).unwrap_or(u32::MAX),
            ),
            format!("file is not valid UTF-8 (byte 0x{byte:02X}); save it as UTF-8"),
        )
    })
}

fn parse_root<'t>(
    file: FileId,
    text: &'t str,
    limits: Limits,
    what: &str,
) -> Result<Option<Node<'t>>, Diagnostic> {
    check_root(file, yaml::parse(file, text, limits), what)
}

/// Turns a parse result into the root node, or the diagnostic for a file without data.
fn check_root<'t>(
    file: FileId,
    parsed: Result<Option<Node<'t>>, yaml::SyntaxError>,
    what: &str,
) -> Result<Option<Node<'t>>, Diagnostic> {
    match parsed {
        Err(e) => Err(Diagnostic::error(e.span, e.message)),
        Ok(None) => Err(Diagnostic::error(
            Span::file(file),
            format!("file is empty; expected a mapping with {what}"),
        )),
        Ok(Some(root)) if root.is_null() => Err(Diagnostic::error(
            root.span,
            format!("file holds no data; expected a mapping with {what}"),
        )),
        Ok(Some(root)) => Ok(Some(root)),
    }
}

fn key_text<'n>(key: &'n Node<'_>) -> &'n str {
    match &key.kind {
        NodeKind::Scalar { text, .. } => text,
        _ => "",
    }
}

fn unknown_key(key: &str, known: &[&str], span: Span, file_kind: &str) -> Diagnostic {
    let hint = if let Some(s) = yaml::suggest_key(key, known.iter().copied()) {
        format!(" (did you mean `{s}`?)")
    } else if file_kind == "resource" && CONFIG_KEYS.contains(&key) {
        " (this belongs in scimctl.yaml)".to_owned()
    } else if file_kind == "config" && RESOURCE_KEYS.contains(&key) {
        " (users, groups, roles and licenses belong in other files of the directory)".to_owned()
    } else {
        format!(
            "; expected one of {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Diagnostic::error(span, format!("unknown top-level key `{key}`{hint}"))
}

fn items<'n, 'a>(
    value: &'n Node<'a>,
    key: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> &'n [Node<'a>] {
    if let NodeKind::Seq(items) = &value.kind {
        items
    } else {
        diagnostics.push(Diagnostic::error(
            value.span,
            format!(
                "`{key}` must be a list, found {} (write `{key}: []` for none)",
                value.describe()
            ),
        ));
        &[]
    }
}

fn collect<T: for<'de> serde::Deserialize<'de> + Intern>(
    list: &[Node<'_>],
    out: &mut Vec<Spanned<T>>,
    interner: &mut Interner,
    diagnostics: &mut Vec<Diagnostic>,
) {
    out.reserve(list.len());
    for node in list {
        one(node, out, interner, diagnostics);
    }
}

/// Keeps the first [`MAX_PROBLEMS_PER_FILE`] diagnostics of a file and counts the rest.
fn cap(file: FileId, diagnostics: &mut Vec<Diagnostic>) {
    if diagnostics.len() > MAX_PROBLEMS_PER_FILE {
        let hidden = diagnostics.len() - MAX_PROBLEMS_PER_FILE;
        diagnostics.truncate(MAX_PROBLEMS_PER_FILE);
        diagnostics.push(Diagnostic::error(
            Span::file(file),
            format!("{hidden} more problems in this file are not shown; fix the ones above first"),
        ));
    }
}

/// Deserializes one entry of a top-level list into `out`, or reports why it cannot be read.
fn one<T: for<'de> serde::Deserialize<'de> + Intern>(
    node: &Node<'_>,
    out: &mut Vec<Spanned<T>>,
    interner: &mut Interner,
    diagnostics: &mut Vec<Diagnostic>,
) {
    // Every problem of the entry, not only the first; what could be read of a wrong entry is
    // kept for the cross-file checks (the problems fail the load, so it is never planned).
    let (item, errors) = yaml::from_node_all::<Spanned<T>>(node);
    for e in errors {
        diagnostics.push(Diagnostic::error(e.span.unwrap_or(node.span), e.message));
    }
    if let Some(mut item) = item {
        item.intern(interner);
        out.push(item);
    }
}

/// Reads a resource file: any of the top-level lists `users`, `groups`, `roles`, `licenses`.
///
/// Entries are read while the file is parsed, one at a time (see [`yaml::parse_streaming`]),
/// so a large file never holds the nodes of all its users at once. Their problems wait in
/// `streamed` until the file has parsed: a syntax error anywhere makes the file's only
/// problem that error, and the rest are reported in document order with those found on the
/// top-level keys.
pub(crate) fn parse_resource_file(file: FileId, bytes: &[u8], limits: Limits) -> ParsedFile {
    let mut parsed = ParsedFile::default();
    let text = match decode(file, bytes) {
        Ok(text) => text,
        Err(d) => {
            parsed.diagnostics.push(d);
            return parsed;
        }
    };
    let what = "`users`, `groups`, `roles` or `licenses` lists";
    let interner = &mut Interner::default();
    // (top-level entry, problem) for entries read while parsing.
    let mut streamed: Vec<(usize, Diagnostic)> = Vec::new();
    let mut sink = |entry: usize, key: &Node<'_>, item: Node<'_>| {
        let mut found = Vec::new();
        match key_text(key) {
            "users" => one(&item, &mut parsed.users, interner, &mut found),
            "groups" => one(&item, &mut parsed.groups, interner, &mut found),
            "roles" => one(&item, &mut parsed.roles, interner, &mut found),
            "licenses" => one(&item, &mut parsed.licenses, interner, &mut found),
            // Reported below, once, for the key.
            _ => {}
        }
        streamed.extend(found.into_iter().map(|d| (entry, d)));
    };
    let root = yaml::parse_streaming(file, text, limits, &mut sink);
    let root = match check_root(file, root, what) {
        Ok(Some(root)) => root,
        Ok(None) => return parsed,
        Err(d) => {
            // Nothing read from a file that does not parse is kept.
            parsed = ParsedFile::default();
            parsed.diagnostics.push(d);
            return parsed;
        }
    };
    let NodeKind::Map(entries) = &root.kind else {
        parsed.diagnostics.push(Diagnostic::error(
            root.span,
            format!(
                "expected a mapping with {what} at the top level, found {}",
                root.describe()
            ),
        ));
        return parsed;
    };
    let mut streamed = streamed.into_iter().peekable();
    for (entry, (key, value)) in entries.iter().enumerate() {
        let name = key_text(key);
        let diagnostics = &mut parsed.diagnostics;
        while let Some((_, d)) = streamed.next_if(|(e, _)| *e == entry) {
            diagnostics.push(d);
        }
        // Lists that were not streamed (anchored, or repeated by an alias) are read here.
        match name {
            "users" => collect(
                items(value, name, diagnostics),
                &mut parsed.users,
                interner,
                diagnostics,
            ),
            "groups" => collect(
                items(value, name, diagnostics),
                &mut parsed.groups,
                interner,
                diagnostics,
            ),
            "roles" => collect(
                items(value, name, diagnostics),
                &mut parsed.roles,
                interner,
                diagnostics,
            ),
            "licenses" => collect(
                items(value, name, diagnostics),
                &mut parsed.licenses,
                interner,
                diagnostics,
            ),
            other => diagnostics.push(unknown_key(other, RESOURCE_KEYS, key.span, "resource")),
        }
    }
    cap(file, &mut parsed.diagnostics);
    parsed
}

fn section<T: for<'de> serde::Deserialize<'de>>(
    value: &Node<'_>,
    slot: &mut T,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match yaml::from_node::<T>(value) {
        Ok(v) => *slot = v,
        Err(e) => diagnostics.push(Diagnostic::error(e.span.unwrap_or(value.span), e.message)),
    }
}

/// Reads `scimctl.yaml`, section by section so that one bad section does not hide another.
pub(crate) fn parse_config_file(file: FileId, bytes: &[u8], limits: Limits) -> ParsedConfig {
    let mut parsed = ParsedConfig::default();
    let text = match decode(file, bytes) {
        Ok(text) => text,
        Err(d) => {
            parsed.diagnostics.push(d);
            return parsed;
        }
    };
    let what = "sections such as `target`, `ownership` or `policy`";
    let root = match parse_root(file, text, limits, what) {
        Ok(Some(root)) => root,
        Ok(None) => return parsed,
        Err(d) => {
            parsed.diagnostics.push(d);
            return parsed;
        }
    };
    let NodeKind::Map(entries) = &root.kind else {
        parsed.diagnostics.push(Diagnostic::error(
            root.span,
            format!("expected a mapping with {what}, found {}", root.describe()),
        ));
        return parsed;
    };
    let config = &mut parsed.config;
    let diagnostics = &mut parsed.diagnostics;
    for (key, value) in entries {
        match key_text(key) {
            "target" => {
                parsed.target_span = Some(value.span);
                let mut target = None;
                section(value, &mut target, diagnostics);
                config.target = target;
            }
            "ownership" => section(value, &mut config.ownership, diagnostics),
            "collections" => section(value, &mut config.collections, diagnostics),
            "prune" => section(value, &mut config.prune, diagnostics),
            "safety" => section(value, &mut config.safety, diagnostics),
            "protected" => section(value, &mut config.protected, diagnostics),
            "policy" => section(value, &mut config.policy, diagnostics),
            "watch" => section(value, &mut config.watch, diagnostics),
            "secrets" => section(value, &mut config.secrets, diagnostics),
            "matchBy" => section(value, &mut config.match_by, diagnostics),
            other => diagnostics.push(unknown_key(other, CONFIG_KEYS, key.span, "config")),
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: FileId = FileId(0);

    fn messages(parsed: &ParsedFile) -> Vec<String> {
        parsed
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.span.line, d.span.col, d.message))
            .collect()
    }

    // A clean file yields values with the position of each entry and field.
    #[test]
    fn reads_users_with_positions() {
        let text = "users:\n  - userName: a@example.com\n    displayName: A\n    roles: [Agent, {name: Sup, divisions: [Home]}]\n";
        let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let user = &parsed.users[0];
        assert_eq!((user.span.line, user.span.col), (2, 5));
        assert_eq!((user.user_name.span.line, user.user_name.span.col), (2, 15));
        let roles = user.roles.as_ref().unwrap();
        assert_eq!(roles[1].name, "Sup");
        assert_eq!(
            roles[1].divisions.as_deref(),
            Some(&[crate::model::Text::from("Home")][..])
        );
        assert_eq!((roles[1].span.line, roles[1].span.col), (4, 20));
    }

    // One broken entry does not hide a broken neighbour: both are reported.
    #[test]
    fn reports_each_entry() {
        let text = "users:\n  - userName: a\n    usrName: x\n  - displayName: B\n";
        let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
        assert_eq!(
            messages(&parsed),
            [
                "3:5: unknown key `usrName` (did you mean `userName`?)",
                "4:5: missing required key `userName`"
            ]
        );
    }

    // Strings keep their source text; a blank value is an error, not "unmanaged".
    #[test]
    fn scalars_are_schema_directed() {
        let text = "users:\n  - userName: a\n    employeeNumber: 0042\n    active: yes\n  - userName: b\n    title:\n";
        let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
        assert_eq!(
            messages(&parsed),
            [
                "4:13: expected `true` or `false`, found `yes` (YAML 1.2 booleans are only true and false)",
                "6:10: expected a string, found an empty value"
            ]
        );
        let text = "users:\n  - userName: a\n    employeeNumber: 0042\n";
        let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
        assert_eq!(
            parsed.users[0]
                .employee_number
                .as_deref()
                .map(crate::model::Text::as_str),
            Some("0042")
        );
    }

    // A literal password is refused without echoing it.
    #[test]
    fn literal_password_is_not_echoed() {
        let text = "users:\n  - userName: a\n    password: hunter2-Secret\n";
        let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
        let all = messages(&parsed).join("\n");
        assert!(all.contains("a literal password is not allowed"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }

    // Top-level shape problems name the key and suggest the fix.
    #[test]
    fn top_level_shapes() {
        let parsed = parse_resource_file(F, b"user: []\ntarget: {}\n", Limits::DEFAULT);
        assert_eq!(
            messages(&parsed),
            [
                "1:1: unknown top-level key `user` (did you mean `users`?)",
                "2:1: unknown top-level key `target` (this belongs in scimctl.yaml)"
            ]
        );
        let parsed = parse_resource_file(F, b"- a\n- b\n", Limits::DEFAULT);
        assert!(messages(&parsed)[0].starts_with("1:1: expected a mapping"));
        let parsed = parse_resource_file(F, b"# nothing here\n", Limits::DEFAULT);
        assert_eq!(
            messages(&parsed),
            [
                "0:0: file is empty; expected a mapping with `users`, `groups`, `roles` or `licenses` lists"
            ]
        );
    }

    // Invalid UTF-8 is located at the first bad byte.
    #[test]
    fn non_utf8_is_located() {
        let parsed = parse_resource_file(F, b"users:\n  - userName: ab\xff\n", Limits::DEFAULT);
        assert_eq!(
            messages(&parsed),
            ["2:17: file is not valid UTF-8 (byte 0xFF); save it as UTF-8"]
        );
    }

    // Config sections are read independently and keep defaults where they fail.
    #[test]
    fn config_sections() {
        let text =
            "policy:\n  maxGroupDepth: 3\nsafety:\n  maxDeletePercnt: 5\nprune:\n  users: delete\n";
        let parsed = parse_config_file(F, text.as_bytes(), Limits::DEFAULT);
        assert_eq!(parsed.config.policy.max_group_depth.value, 3);
        assert_eq!(parsed.config.prune.users, crate::model::UserPrune::Delete);
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(parsed.diagnostics[0].span.line, 4);
        let text =
            "target:\n  kind: scim\n  url: https://x.example/scim/v2\n  token: {fromEnv: TOKEN}\n";
        let parsed = parse_config_file(F, text.as_bytes(), Limits::DEFAULT);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        assert!(matches!(
            parsed.config.target,
            Some(crate::model::Target::Scim { .. })
        ));
        let text = "target:\n  kind: sandbox\n  path: x.json\n  url: nope\nownership:\n  users: {selector: {nameSuffix: '@x.example'}}\n";
        let parsed = parse_config_file(F, text.as_bytes(), Limits::DEFAULT);
        assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
        assert!(
            parsed.diagnostics[0].message.contains("unknown"),
            "{:?}",
            parsed.diagnostics
        );
    }

    mod fuzz {
        use std::fmt::Write as _;

        use proptest::prelude::*;

        use super::super::*;
        use super::F;
        use crate::model::{
            Email, EmailType, PasswordSource, Proficiency, ResourceFile, RoleGrant, Spanned, User,
        };

        /// Fragments of YAML syntax, including the awkward ones, to build hostile documents from.
        const FRAGMENTS: &[&str] = &[
            "users:",
            "groups:",
            "roles:",
            "\n",
            "  ",
            "    ",
            "- ",
            "userName: ",
            "members: ",
            "a@b.example",
            "&x ",
            "*x",
            "[",
            "]",
            "{",
            "}",
            ", ",
            ": ",
            "\t",
            "'",
            "\"",
            "# c",
            "---",
            "...",
            "? ",
            "|",
            ">",
            "!!str ",
            "!x ",
            "\u{feff}",
            "é",
            "~",
            "null",
            "yes",
            "0x1F",
            "1e9",
            "\\",
            "%YAML 1.2",
            "<<: *x",
            "\r\n",
        ];

        fn soup() -> impl Strategy<Value = String> {
            proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..80)
                .prop_map(|parts| parts.concat())
        }

        fn name() -> impl Strategy<Value = String> {
            "[a-z][a-z0-9.]{0,12}"
        }

        fn user() -> impl Strategy<Value = User> {
            (
                name(),
                proptest::option::of("[A-Za-z0-9 '-]{1,20}"),
                proptest::option::of("[0-9]{1,6}"),
                proptest::option::of(any::<bool>()),
                proptest::option::of(proptest::collection::vec(name(), 0..3)),
                proptest::option::of(proptest::collection::vec((name(), 0_u8..=5), 0..3)),
                any::<bool>(),
            )
                .prop_map(
                    |(local, display, number, active, roles, skills, generate)| User {
                        user_name: Spanned::unspanned(format!("{local}@example.com").into()),
                        display_name: display.map(|d| Spanned::unspanned(d.into())),
                        external_id: None,
                        active: active.map(Spanned::unspanned),
                        title: None,
                        emails: Some(vec![Spanned::unspanned(Email {
                            value: format!("{local}@example.com").into(),
                            kind: Some(EmailType::Work),
                            primary: Some(true),
                        })]),
                        phone_numbers: None,
                        department: None,
                        division: None,
                        employee_number: number.map(|n| Spanned::unspanned(n.into())),
                        date_hire: None,
                        manager: None,
                        routing_skills: skills.map(|s| {
                            s.into_iter()
                                .map(|(name, p)| {
                                    Spanned::unspanned(Proficiency {
                                        name: name.into(),
                                        proficiency: f64::from(p),
                                    })
                                })
                                .collect()
                        }),
                        routing_languages: None,
                        roles: roles.map(|r| {
                            r.into_iter()
                                .map(|n| Spanned::unspanned(RoleGrant::named(n)))
                                .collect()
                        }),
                        groups: None,
                        license: None,
                        password: generate.then(|| Spanned::unspanned(PasswordSource::Generate)),
                        previously: Vec::new(),
                    },
                )
        }

        /// The loader before entries were read while parsing: the whole tree first, then each
        /// entry. Reading while parsing must give exactly the same values and problems.
        fn whole_tree(file: FileId, bytes: &[u8], limits: Limits) -> ParsedFile {
            let mut parsed = ParsedFile::default();
            let text = match decode(file, bytes) {
                Ok(text) => text,
                Err(d) => {
                    parsed.diagnostics.push(d);
                    return parsed;
                }
            };
            let what = "`users`, `groups`, `roles` or `licenses` lists";
            let root = match parse_root(file, text, limits, what) {
                Ok(Some(root)) => root,
                Ok(None) => return parsed,
                Err(d) => {
                    parsed.diagnostics.push(d);
                    return parsed;
                }
            };
            let NodeKind::Map(entries) = &root.kind else {
                parsed.diagnostics.push(Diagnostic::error(
                    root.span,
                    format!(
                        "expected a mapping with {what} at the top level, found {}",
                        root.describe()
                    ),
                ));
                return parsed;
            };
            let interner = &mut Interner::default();
            for (key, value) in entries {
                let name = key_text(key);
                let d = &mut parsed.diagnostics;
                match name {
                    "users" => collect(items(value, name, d), &mut parsed.users, interner, d),
                    "groups" => collect(items(value, name, d), &mut parsed.groups, interner, d),
                    "roles" => collect(items(value, name, d), &mut parsed.roles, interner, d),
                    "licenses" => {
                        collect(items(value, name, d), &mut parsed.licenses, interner, d);
                    }
                    other => d.push(unknown_key(other, RESOURCE_KEYS, key.span, "resource")),
                }
            }
            cap(file, &mut parsed.diagnostics);
            parsed
        }

        /// Everything a parse produced, spans included.
        fn outcome(parsed: &ParsedFile) -> String {
            format!(
                "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                parsed.diagnostics, parsed.users, parsed.groups, parsed.roles, parsed.licenses
            )
        }

        /// Top-level entries built from lists, anchors, aliases, wrong shapes and broken entries:
        /// mostly documents that parse, some that do not (an alias before its anchor).
        fn entries() -> impl Strategy<Value = String> {
            let keys = proptest::sample::subsequence(
                vec!["users", "groups", "roles", "licenses", "user", "target"],
                1..=6,
            )
            .prop_shuffle();
            let item = prop_oneof![
                8 => Just("{userName: a@x.example}"),
                4 => Just("{userName: b@x.example, title: Agent, roles: [Agent, agent]}"),
                2 => Just("{userName: c@x.example, bogus: 1}"),
                2 => Just("{displayName: Team, members: [a@x.example]}"),
                2 => Just("{name: Agent, permissions: ['a:b:c']}"),
                2 => Just("{name: Std, allowedRoles: [Agent]}"),
                2 => Just("&i {userName: d@x.example}"),
                1 => Just("*i"),
                1 => Just("{userName: e@x.example, roles: [Agent], title: Agent}"),
                1 => Just("5"),
                1 => Just("[1, 2]"),
                1 => Just("{}"),
            ];
            let value = (
                proptest::collection::vec(item, 0..5),
                prop_oneof![4 => Just(""), 1 => Just("&l ")],
                prop_oneof![1 => Just(0_u8), 1 => Just(1), 6 => Just(2), 12 => Just(3)],
            )
                .prop_map(|(items, anchor, shape)| match shape {
                    0 => " *l".to_owned(),
                    1 => " 7".to_owned(),
                    2 => format!(" {anchor}[{}]", items.join(", ")),
                    _ => items.iter().fold(format!(" {anchor}\n"), |mut out, i| {
                        let _ = writeln!(out, "  - {i}");
                        out
                    }),
                });
            keys.prop_flat_map(move |keys| {
                let n = keys.len();
                (Just(keys), proptest::collection::vec(value.clone(), n))
            })
            .prop_map(|(keys, values)| {
                keys.into_iter()
                    .zip(values)
                    .fold(String::new(), |mut out, (k, v)| {
                        let _ = writeln!(out, "{k}:{v}");
                        out
                    })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            // Arbitrary bytes never panic the loader, and every error points into the file.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let parsed = parse_resource_file(F, &bytes, Limits::DEFAULT);
                for d in &parsed.diagnostics {
                    prop_assert_eq!(d.span.file, F);
                }
            }

            // Documents assembled from YAML's sharp edges never panic, and errors are located.
            #[test]
            fn yaml_soup_never_panics(text in soup()) {
                let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
                for d in &parsed.diagnostics {
                    prop_assert_eq!(d.span.file, F);
                    prop_assert!(!d.message.is_empty());
                }
            }

            // Reading entries while parsing changes nothing: same values, spans and problems, in
            // the same order, as reading the whole tree first (also for hostile soup).
            #[test]
            fn streaming_matches_whole_tree(text in entries(), soup in soup()) {
                for text in [&text, &soup] {
                    let streamed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
                    let whole = whole_tree(F, text.as_bytes(), Limits::DEFAULT);
                    prop_assert_eq!(outcome(&streamed), outcome(&whole), "{}", text);
                }
            }

            // Whatever the writer emits, the loader reads back as the same users, with no errors.
            #[test]
            fn written_users_read_back(users in proptest::collection::vec(user(), 0..6)) {
                let file = ResourceFile { users: users.clone(), ..ResourceFile::default() };
                let text = crate::desired::yaml::to_string(&file).unwrap();
                let parsed = parse_resource_file(F, text.as_bytes(), Limits::DEFAULT);
                prop_assert!(parsed.diagnostics.is_empty(), "{:?}\n{}", parsed.diagnostics, text);
                let read: Vec<User> = parsed.users.into_iter().map(Spanned::into_inner).collect();
                prop_assert_eq!(read, users);
            }
        }
    }
}
