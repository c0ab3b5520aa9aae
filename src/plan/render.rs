//! Plans for people and machines: text for a terminal, Markdown for a pull-request comment,
//! and the versioned JSON document (also the saved-plan format, see [`super::saved`]). Every
//! renderer writes to any writer and depends only on the plan, so the output is stable.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::{Action, AttrDiff, Change, Plan};
use crate::model::escape;

/// The version of the JSON plan document.
pub const JSON_VERSION: u32 = 1;

/// GitHub refuses comments over 65,536 characters; Markdown plans stay below this.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// The symbol and verb a change shows with.
fn marker(change: &Change) -> (&'static str, &'static str) {
    if change.blocked.is_some() {
        return ("!", "BLOCKED");
    }
    match change.action {
        Action::Create => ("+", "create"),
        Action::Restore => ("+", "restore"),
        Action::Patch => ("~", "patch"),
        Action::Deactivate => ("-", "deactivate"),
        Action::Delete => ("-", "delete"),
    }
}

/// How a change is named in Markdown: its verb, and for a blocked change also what it would
/// have done (`BLOCKED deactivate`).
fn md_verb(change: &Change) -> String {
    let (_, verb) = marker(change);
    if change.blocked.is_some() {
        format!("{verb} {}", change.action.name())
    } else {
        verb.to_owned()
    }
}

/// One warning as a Markdown quote line, with where it comes from.
fn md_warning(w: &super::Warning) -> String {
    match &w.source {
        Some(src) => format!(
            "> **warning** ({}): {}\n",
            md_cell(&src.to_string()),
            md_cell(&w.message)
        ),
        None => format!("> **warning:** {}\n", md_cell(&w.message)),
    }
}

/// The one-line summary: `3 to create, 1 to patch, ...`.
#[must_use]
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    if plan.is_empty() {
        return format!("No changes. {} object(s) already as desired.", s.noop);
    }
    let mut line = format!("Plan: {} to create", s.create);
    if s.restore > 0 {
        let _ = write!(line, ", {} to restore", s.restore);
    }
    let _ = write!(
        line,
        ", {} to patch, {} to deactivate, {} to delete",
        s.patch, s.deactivate, s.delete
    );
    if s.blocked > 0 {
        let _ = write!(line, ", {} blocked", s.blocked);
    }
    let _ = write!(line, " ({} unchanged).", s.noop);
    line
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The lines an attribute diff contributes to the before and after pictures of its object.
fn picture(diff: &AttrDiff, before: &mut String, after: &mut String) {
    let name = escape(&diff.attribute);
    if let Some(b) = &diff.before {
        let _ = writeln!(before, "{name}: {}", show(b));
    }
    if let Some(a) = &diff.after {
        let _ = writeln!(after, "{name}: {}", show(a));
    }
    for r in &diff.removed {
        let _ = writeln!(before, "{name}: {}", escape(r));
    }
    for a in &diff.added {
        let _ = writeln!(after, "{name}: {}", escape(a));
    }
}

/// The attribute-level diff of a change as `-`/`+` lines (computed with `similar`).
#[must_use]
pub fn diff_lines(change: &Change) -> Vec<(char, String)> {
    let (mut before, mut after) = (String::new(), String::new());
    let rows = change.rows();
    for d in rows.iter() {
        picture(d, &mut before, &mut after);
    }
    let diff = TextDiff::from_lines(&before, &after);
    let mut lines: Vec<(char, String)> = diff
        .iter_all_changes()
        .filter_map(|c| {
            let sign = match c.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => return None,
            };
            Some((sign, c.value().trim_end_matches('\n').to_owned()))
        })
        .collect();
    // Changes shown without values (a rotated password): `~ password (changed at source)`.
    lines.extend(rows.iter().filter_map(|d| {
        d.note
            .as_ref()
            .map(|note| ('~', format!("{} ({})", escape(&d.attribute), escape(note))))
    }));
    lines
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Text for a terminal or a log: one block per object, the warnings, then the summary line.
/// `color` adds ANSI colours (only ever on a terminal).
pub fn text(plan: &Plan, out: &mut dyn Write, color: bool) -> io::Result<()> {
    changes_text(plan, out, color)?;
    warnings(plan, out)?;
    summary_text(plan, out)
}

/// [`text`] without the warnings, for stdout when [`warnings`] go to stderr (the CLI keeps
/// diagnostics off stdout, and `-q` hides them).
pub fn text_without_warnings(plan: &Plan, out: &mut dyn Write, color: bool) -> io::Result<()> {
    changes_text(plan, out, color)?;
    summary_text(plan, out)
}

/// The plan's warnings, one `warning: [source: ]message` line each.
pub fn warnings(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    for w in &plan.warnings {
        match &w.source {
            Some(s) => writeln!(
                out,
                "warning: {}: {}",
                escape(&s.to_string()),
                escape(&w.message)
            )?,
            None => writeln!(out, "warning: {}", escape(&w.message))?,
        }
    }
    Ok(())
}

/// The blank line after a non-empty plan, and the summary line.
fn summary_text(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    if !plan.changes.is_empty() {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(plan))
}

/// One block per change.
fn changes_text(plan: &Plan, out: &mut dyn Write, color: bool) -> io::Result<()> {
    let paint = |code: &'static str| if color { code } else { "" };
    for change in &plan.changes {
        let (mark, verb) = marker(change);
        let tint = match mark {
            "+" => GREEN,
            "~" => YELLOW,
            _ => RED,
        };
        writeln!(
            out,
            "{}{mark} {verb}{} {} {}{}{}  ({})",
            paint(tint),
            change
                .blocked
                .as_ref()
                .map(|_| format!(" {}", change.action.name()))
                .unwrap_or_default(),
            change.kind,
            paint(BOLD),
            escape(&change.key),
            paint(RESET),
            escape(&change.source.to_string())
        )?;
        if let Some(reason) = &change.blocked {
            let reason = escape(reason);
            writeln!(out, "    {}reason: {reason}{}", paint(RED), paint(RESET))?;
        }
        for (sign, line) in diff_lines(change) {
            let tint = match sign {
                '+' => GREEN,
                '~' => YELLOW,
                _ => RED,
            };
            writeln!(out, "    {}{sign} {line}{}", paint(tint), paint(RESET))?;
        }
    }
    Ok(())
}

fn md_cell(text: &str) -> String {
    escape(&text.replace('\n', " "))
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html(text: &str) -> String {
    escape(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A fenced code block whose fence no line inside can close.
fn fenced(lang: &str, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{body}{fence}\n")
}

/// Markdown for a pull-request comment: the summary, a table of destructive and blocked
/// changes first, then every change as a collapsed block. Stays under [`MARKDOWN_LIMIT`]
/// characters, cutting whole entries and saying how many were cut.
pub fn markdown(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    let s = plan.summary();
    let mut doc = String::new();
    let _ = writeln!(doc, "### scimctl plan\n\n{}\n", summary_line(plan));
    if plan.is_empty() {
        let warnings_cut = md_warnings(&mut doc, plan, MARKDOWN_LIMIT - 400);
        if warnings_cut > 0 {
            let _ = writeln!(
                doc,
                "\n_Truncated to stay under {MARKDOWN_LIMIT} characters: {warnings_cut} \
                 warning(s) not shown. Run `scimctl plan --format json` for all of them._"
            );
        }
        return out.write_all(doc.as_bytes());
    }
    if s.restore > 0 {
        let _ = writeln!(
            doc,
            "| create | restore | patch | deactivate | delete | blocked |\n|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n",
            s.create, s.restore, s.patch, s.deactivate, s.delete, s.blocked
        );
    } else {
        let _ = writeln!(
            doc,
            "| create | patch | deactivate | delete | blocked |\n|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} |\n",
            s.create, s.patch, s.deactivate, s.delete, s.blocked
        );
    }
    // Reserve room for the closing note.
    let budget = MARKDOWN_LIMIT - 400;
    let destructive: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.blocked.is_some() || c.action.is_destructive())
        .collect();
    let cut = md_destructive_table(&mut doc, &destructive, budget / 2);
    let mut warnings_cut = 0usize;
    if !plan.warnings.is_empty() {
        warnings_cut = md_warnings(&mut doc, plan, budget / 2);
        doc.push('\n');
    }
    let _ = writeln!(doc, "#### Changes\n");
    let mut ordered: Vec<&Change> = destructive.clone();
    ordered.extend(
        plan.changes
            .iter()
            .filter(|c| !(c.blocked.is_some() || c.action.is_destructive())),
    );
    let mut details_cut = 0usize;
    for c in ordered {
        let block = md_details(c);
        if doc.len() + block.len() > budget {
            details_cut += 1;
            continue;
        }
        doc.push_str(&block);
    }
    if cut > 0 || warnings_cut > 0 || details_cut > 0 {
        let _ = writeln!(
            doc,
            "_Truncated to stay under {MARKDOWN_LIMIT} characters: {cut} table row(s), \
             {warnings_cut} warning(s) and {details_cut} change detail(s) not shown. Run \
             `scimctl plan --format json` for the whole plan._"
        );
    }
    out.write_all(doc.as_bytes())
}

/// The plan's warnings, while `doc` stays under `limit`; returns how many did not fit.
fn md_warnings(doc: &mut String, plan: &Plan, limit: usize) -> usize {
    let mut cut = 0usize;
    for w in &plan.warnings {
        let line = md_warning(w);
        if doc.len() + line.len() < limit {
            doc.push_str(&line);
        } else {
            cut += 1;
        }
    }
    cut
}

/// The table of destructive and blocked changes, rows while `doc` stays within `limit`;
/// returns how many rows did not fit.
fn md_destructive_table(doc: &mut String, destructive: &[&Change], limit: usize) -> usize {
    if destructive.is_empty() {
        return 0;
    }
    let _ = writeln!(
        doc,
        "#### Destructive and blocked changes\n\n| action | kind | name | from | reason |\n|---|---|---|---|---|"
    );
    let mut cut = 0usize;
    for c in destructive {
        let row = format!(
            "| {} | {} | `{}` | {} | {} |\n",
            md_verb(c),
            c.kind,
            md_cell(&c.key).replace('`', "'"),
            md_cell(&c.source.to_string()),
            md_cell(c.blocked.as_deref().unwrap_or(""))
        );
        if doc.len() + row.len() > limit {
            cut += 1;
            continue;
        }
        doc.push_str(&row);
    }
    doc.push('\n');
    cut
}

/// One change as a collapsed block with its diff.
fn md_details(c: &Change) -> String {
    let mut body = String::new();
    for (sign, line) in diff_lines(c) {
        let _ = writeln!(body, "{sign} {line}");
    }
    format!(
        "<details><summary>{} {} <code>{}</code> ({})</summary>\n\n{}\n</details>\n\n",
        html(&md_verb(c)),
        c.kind,
        html(&c.key),
        html(&c.source.to_string()),
        if body.is_empty() {
            String::from("(no attribute changes)\n")
        } else {
            fenced("diff", &body)
        }
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::saved::{PlanDocument, desired_hash};
    use crate::plan::tests::{empty_plan, mixed_plan};
    use crate::plan::{Edit, Kind, Source};

    fn text_of(plan: &Plan) -> String {
        let mut out = Vec::new();
        text(plan, &mut out, false).expect("renders");
        String::from_utf8(out).expect("utf-8")
    }

    fn markdown_of(plan: &Plan) -> String {
        let mut out = Vec::new();
        markdown(plan, &mut out).expect("renders");
        String::from_utf8(out).expect("utf-8")
    }

    fn json_of(plan: &Plan) -> String {
        let hash = desired_hash(
            std::path::Path::new("org"),
            [(
                std::path::Path::new("org/org.yaml"),
                b"users: []\n".as_slice(),
            )],
        );
        serde_json::to_string_pretty(&PlanDocument::new(plan, hash)).expect("json")
    }

    // The three renderings of a plan with every kind of row, reviewed as snapshot files.
    #[test]
    fn mixed_plan_renders() {
        let plan = mixed_plan();
        insta::assert_snapshot!("text_mixed", text_of(&plan));
        insta::assert_snapshot!("markdown_mixed", markdown_of(&plan));
        insta::assert_snapshot!("json_mixed", json_of(&plan));
    }

    // Colour is only escape codes around the same text.
    #[test]
    fn colour_adds_only_escape_codes() {
        let plan = mixed_plan();
        let mut out = Vec::new();
        text(&plan, &mut out, true).expect("renders");
        let coloured = String::from_utf8(out).expect("utf-8");
        assert!(
            coloured.contains("\x1b[31m! BLOCKED deactivate"),
            "{coloured}"
        );
        let mut stripped = coloured.clone();
        for code in [RED, GREEN, YELLOW, BOLD, RESET] {
            stripped = stripped.replace(code, "");
        }
        assert_eq!(stripped, text_of(&plan));
    }

    // A plan without changes says so in one line, and still shows its warnings.
    #[test]
    fn empty_plan_renders() {
        let plan = empty_plan();
        insta::assert_snapshot!("text_empty", text_of(&plan));
        insta::assert_snapshot!("markdown_empty", markdown_of(&plan));
        insta::assert_snapshot!("json_empty", json_of(&plan));
    }

    // A plan too big for a pull-request comment is cut to whole entries under the limit,
    // and the note says how much is missing and where the rest is.
    #[test]
    fn huge_markdown_is_truncated() {
        let change = |action, i: usize| Change {
            action,
            kind: Kind::User,
            key: format!("user{i:04}@x.example").into(),
            id: (action != Action::Create).then(|| format!("id-{i}")),
            version: None,
            source: if action == Action::Create {
                Source::Yaml {
                    file: "users/all.yaml".into(),
                    line: u32::try_from(i).expect("small") * 3 + 1,
                }
            } else {
                Source::Absent
            },
            diff: vec![AttrDiff {
                attribute: "title".into(),
                before: (action != Action::Create).then(|| json!("Agent")),
                after: Some(json!(format!("Agent {i}"))),
                ..AttrDiff::default()
            }],
            edits: vec![Edit::Set {
                attr: crate::plan::Attr::Title,
                value: crate::plan::Scalar::from(format!("Agent {i}").as_str()),
            }],
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        };
        let plan = Plan {
            changes: (0..1500)
                .map(|i| change(Action::Create, i))
                .chain((1500..2500).map(|i| change(Action::Delete, i)))
                .collect(),
            warnings: Vec::new(),
            unchanged: 7,
        };
        let md = markdown_of(&plan);
        assert!(md.len() <= MARKDOWN_LIMIT, "{} characters", md.len());
        assert!(
            md.len() > MARKDOWN_LIMIT - 2_000,
            "the budget is used: {}",
            md.len()
        );
        let note = md.lines().last().expect("a last line");
        assert!(
            note.starts_with("_Truncated to stay under 60000 characters: ")
                && note
                    .ends_with("not shown. Run `scimctl plan --format json` for the whole plan._"),
            "{note}"
        );
        let numbers: Vec<usize> = note.split(' ').filter_map(|w| w.parse().ok()).collect();
        let shown_rows = md
            .lines()
            .filter(|l| l.starts_with("| delete | user |"))
            .count();
        let shown_details = md.matches("<details>").count();
        assert_eq!(numbers[1], 1000 - shown_rows, "table rows cut: {note}");
        assert_eq!(numbers[2], 0, "no warning cut: {note}");
        assert_eq!(numbers[3], 2500 - shown_details, "details cut: {note}");
        assert!(shown_rows > 0 && shown_details > 0);
        // Entries are whole: every details block that opens also closes.
        assert_eq!(md.matches("</details>").count(), shown_details);
        let head: Vec<&str> = md.lines().take(12).collect();
        insta::assert_snapshot!("markdown_huge_head", head.join("\n"));
    }

    // Warnings count against the limit too, in a plan with changes or without, and the
    // note says how many were left out.
    #[test]
    fn many_warnings_are_truncated() {
        let warnings: Vec<super::super::Warning> = (0..3000)
            .map(|i| super::super::Warning {
                message: format!("user \"u{i:04}@x.example\" is protected: not changed, though live differs in title"),
                source: Some(Source::Yaml {
                    file: "users.yaml".into(),
                    line: i + 1,
                }),
            })
            .collect();
        let empty = Plan {
            warnings: warnings.clone(),
            ..Plan::default()
        };
        let md = markdown_of(&empty);
        assert!(md.len() <= MARKDOWN_LIMIT, "{} characters", md.len());
        let shown = md.matches("> **warning** (users.yaml:").count();
        assert!(shown > 100, "{shown}");
        assert!(
            md.ends_with(&format!(
                "_Truncated to stay under 60000 characters: {} warning(s) not shown. Run \
                 `scimctl plan --format json` for all of them._\n",
                3000 - shown
            )),
            "{}",
            &md[md.len() - 300..]
        );
        let mut busy = mixed_plan();
        busy.warnings = warnings;
        let md = markdown_of(&busy);
        assert!(md.len() <= MARKDOWN_LIMIT, "{} characters", md.len());
        let shown = md.matches("> **warning** (users.yaml:").count();
        assert!(md.contains(&format!(
            "0 table row(s), {} warning(s) and 0 change detail(s) not shown",
            3000 - shown
        )));
    }

    // Text a reviewer cannot mistake: Markdown cells escape pipes and angle brackets, and a
    // diff fence is longer than any run of backticks inside it.
    #[test]
    fn markdown_escapes() {
        assert_eq!(md_cell("a|b <c>\nd\\"), "a\\|b &lt;c&gt; d\\\\");
        assert_eq!(fenced("diff", "x\n"), "```diff\nx\n```\n");
        assert_eq!(fenced("diff", "a ```` b\n"), "`````diff\na ```` b\n`````\n");
    }
}
