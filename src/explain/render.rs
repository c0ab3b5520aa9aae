//! The text form of an [`Explanation`]: sections with headings, each chain one link per
//! line, the `path:line` that writes the link aligned on the right. No colour, so the output
//! reads the same in a terminal, a log and a pull-request comment.

use std::io::{self, Write};

use super::{
    EffectivePermission, Explanation, GroupExplanation, LicenseFit, Link, LinkKind, LiveDiff,
    Membership, Origin, RoleExplanation, UserExplanation, UserLicenses,
};

/// Writes the report as text.
pub fn text(explanation: &Explanation, out: &mut dyn Write) -> io::Result<()> {
    match explanation {
        Explanation::User(user) => user_text(user, out),
        Explanation::Group(group) => group_text(group, out),
        Explanation::Role(role) => role_text(role, out),
    }
}

/// Direction of a chain between groups: up to the groups holding a member, or down to the
/// members of a group.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

fn header(
    out: &mut dyn Write,
    kind: &str,
    name: &str,
    extra: Option<&str>,
    source: Option<&Origin>,
) -> io::Result<()> {
    match extra {
        Some(extra) => writeln!(out, "{kind} {name} ({extra})")?,
        None => writeln!(out, "{kind} {name}")?,
    }
    if let Some(source) = source {
        writeln!(out, "  defined at {source}")?;
    }
    Ok(())
}

fn section(out: &mut dyn Write, title: &str, count: usize) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{title} ({count})")
}

/// The words for a link, given the link before it.
fn label(previous: Option<&Link>, link: &Link, direction: Direction) -> String {
    let kind = match link.kind {
        LinkKind::User => "user",
        LinkKind::Group => "group",
        LinkKind::Role => "role",
        LinkKind::Permission => "permission",
    };
    let Some(previous) = previous else {
        return format!("{kind} {}", link.name);
    };
    match (previous.kind, link.kind, direction) {
        (LinkKind::Group, LinkKind::User | LinkKind::Group, Direction::Down) => {
            format!("→ has member {kind} {}", link.name)
        }
        (_, LinkKind::Group, _) => format!("→ member of group {}", link.name),
        (LinkKind::User, LinkKind::Role, _) => format!("→ holds role {}", link.name),
        (LinkKind::Role, LinkKind::Role, _) => format!("→ inherits role {}", link.name),
        (_, LinkKind::Permission, _) => format!("→ grants {}", link.name),
        _ => format!("→ {kind} {}", link.name),
    }
}

/// A chain, one link per line at `indent`, with sources aligned. The first link's source
/// is left out when it is the object the report is about (the header names it).
fn chain(
    out: &mut dyn Write,
    links: &[Link],
    indent: usize,
    direction: Direction,
    subject_first: bool,
) -> io::Result<()> {
    let labels: Vec<String> = links
        .iter()
        .enumerate()
        .map(|(i, link)| {
            let previous = i.checked_sub(1).and_then(|p| links.get(p));
            // The first link has no arrow; indent it under the arrows' text.
            let text = label(previous, link, direction);
            if i == 0 { format!("  {text}") } else { text }
        })
        .collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    for (i, (text, link)) in labels.iter().zip(links).enumerate() {
        let source = if i == 0 && subject_first {
            None
        } else {
            link.source.as_ref()
        };
        match source {
            Some(source) => writeln!(out, "{:indent$}{text:<width$}  {source}", "")?,
            None => writeln!(out, "{:indent$}{text}", "")?,
        }
    }
    Ok(())
}

fn permissions(out: &mut dyn Write, list: &[EffectivePermission]) -> io::Result<()> {
    section(out, "Effective permissions", list.len())?;
    for permission in list {
        writeln!(out, "  {}", permission.permission)?;
        chain(out, &permission.chain, 4, Direction::Up, true)?;
        if !permission.also_via.is_empty() {
            writeln!(out, "    also via: {}", permission.also_via.join(", "))?;
        }
    }
    Ok(())
}

fn memberships(out: &mut dyn Write, title: &str, list: &[Membership]) -> io::Result<()> {
    section(out, title, list.len())?;
    for membership in list {
        let how = if membership.direct {
            "direct"
        } else {
            "nested"
        };
        writeln!(out, "  {} ({how})", membership.group)?;
        chain(out, &membership.chain, 4, Direction::Up, true)?;
    }
    Ok(())
}

fn license(out: &mut dyn Write, fit: &LicenseFit) -> io::Result<()> {
    writeln!(out)?;
    write!(out, "License {}", fit.name)?;
    match (&fit.assigned, &fit.source) {
        (Some(assigned), Some(source)) => {
            writeln!(out, "  (assigned at {assigned}, defined at {source})")?;
        }
        _ => writeln!(out)?,
    }
    writeln!(out, "  allows roles: {}", fit.allowed_roles.join(", "))?;
    if fit.fits {
        writeln!(out, "  the user's roles fit it")
    } else {
        writeln!(out, "  does not allow: {}", fit.not_allowed.join(", "))
    }
}

fn user_text(user: &UserExplanation, out: &mut dyn Write) -> io::Result<()> {
    let mut extra = user.display_name.clone();
    if user.active == Some(false) {
        extra = Some(extra.map_or_else(|| "inactive".to_owned(), |d| format!("{d}, inactive")));
    }
    header(
        out,
        "user",
        &user.name,
        extra.as_deref(),
        user.source.as_ref(),
    )?;
    section(out, "Roles", user.roles.len())?;
    if !user.roles_managed {
        writeln!(
            out,
            "  none written (`roles` absent: the user's roles are not managed)"
        )?;
    }
    let mut lines = Vec::new();
    for role in &user.roles {
        let mut line = match &role.via_group {
            Some(group) => format!("{} via group {group}", role.role),
            None => role.role.clone(),
        };
        if let Some(divisions) = &role.divisions {
            line = format!("{line} (divisions: {})", divisions.join(", "));
        }
        if role.allowed_by_license == Some(false) {
            line.push_str(" [not allowed by the license]");
        }
        lines.push((line, role.chain.last().and_then(|l| l.source.as_ref())));
    }
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, source) in lines {
        match source {
            Some(source) => writeln!(out, "  {line:<width$}  {source}")?,
            None => writeln!(out, "  {line}")?,
        }
    }
    if let Some(fit) = &user.license {
        license(out, fit)?;
    } else {
        writeln!(out)?;
        writeln!(out, "License: none")?;
    }
    memberships(out, "Groups", &user.groups)?;
    permissions(out, &user.permissions)?;
    if let Some(diff) = &user.live {
        live(out, diff)?;
    }
    Ok(())
}

fn group_text(group: &GroupExplanation, out: &mut dyn Write) -> io::Result<()> {
    header(
        out,
        "group",
        &group.name,
        group.description.as_deref(),
        group.source.as_ref(),
    )?;
    if !group.settings.is_empty() {
        section(out, "Settings", group.settings.len())?;
        for s in &group.settings {
            match &s.source {
                Some(at) => writeln!(out, "  {}: {} ({at})", s.name, s.value)?,
                None => writeln!(out, "  {}: {}", s.name, s.value)?,
            }
        }
    }
    section(out, "Members", group.members.len())?;
    if !group.membership_managed {
        writeln!(
            out,
            "  none written (no `members`, and no user lists the group: membership is not managed)"
        )?;
    }
    for member in &group.members {
        let how = if member.direct { "direct" } else { "nested" };
        let kind = match member.kind {
            LinkKind::Group => "group",
            _ => "user",
        };
        writeln!(out, "  {kind} {} ({how})", member.name)?;
        chain(out, &member.chain, 4, Direction::Down, true)?;
    }
    memberships(out, "Member of", &group.parents)?;
    if group.roles.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Roles: none granted to the group (Genesys Cloud groups may grant roles)"
        )?;
    } else {
        section(out, "Roles", group.roles.len())?;
        for role in &group.roles {
            let mut line = role.role.clone();
            if let Some(divisions) = &role.divisions {
                line = format!("{line} (divisions: {})", divisions.join(", "));
            }
            match role.chain.last().and_then(|l| l.source.as_ref()) {
                Some(at) => writeln!(out, "  {line} ({at})")?,
                None => writeln!(out, "  {line}")?,
            }
        }
    }
    if let Some(diff) = &group.live {
        live(out, diff)?;
    }
    Ok(())
}

fn role_text(role: &RoleExplanation, out: &mut dyn Write) -> io::Result<()> {
    header(
        out,
        "role",
        &role.name,
        role.description.as_deref(),
        role.source.as_ref(),
    )?;
    for (title, list) in [
        ("Inherits", &role.inherits),
        ("Inherited by", &role.inherited_by),
    ] {
        section(out, title, list.len())?;
        for related in list {
            let how = if related.direct { "direct" } else { "nested" };
            writeln!(out, "  {} ({how})", related.role)?;
            chain(out, &related.chain, 4, Direction::Up, false)?;
        }
    }
    permissions(out, &role.permissions)?;
    section(out, "Held by", role.holders.len())?;
    for holder in &role.holders {
        let how = if holder.direct {
            "direct"
        } else {
            "through inheritance"
        };
        writeln!(out, "  {} ({how})", holder.user)?;
        chain(out, &holder.chain, 4, Direction::Up, false)?;
    }
    section(out, "Allowed by licenses", role.licenses.len())?;
    for license in &role.licenses {
        match &license.source {
            Some(source) => writeln!(out, "  {}  {source}", license.license)?,
            None => writeln!(out, "  {}", license.license)?,
        }
    }
    if let Some(diff) = &role.live {
        live(out, diff)?;
    }
    Ok(())
}

/// A live user's licenses: what it holds, whether it holds its license's definition, and
/// what a plan would change.
fn live_licenses(out: &mut dyn Write, licenses: &UserLicenses) -> io::Result<()> {
    let labels = |list: &[crate::plan::licenses::LicenseRef]| {
        list.iter()
            .map(crate::plan::licenses::LicenseRef::label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if licenses.held.is_empty() {
        writeln!(out, "  licenses held: none")?;
    } else {
        writeln!(out, "  licenses held: {}", labels(&licenses.held))?;
    }
    if let Some(mapped) = &licenses.mapped {
        let held = if licenses.mapped_held == Some(true) {
            "held"
        } else {
            "not held"
        };
        writeln!(out, "  its license maps {}: {held}", mapped.label())?;
    }
    if licenses.managed {
        let mut changes = Vec::new();
        if !licenses.add.is_empty() {
            changes.push(format!("assign {}", labels(&licenses.add)));
        }
        if !licenses.remove.is_empty() {
            changes.push(format!("remove {}", labels(&licenses.remove)));
        }
        if changes.is_empty() {
            writeln!(out, "  a plan changes no license")?;
        } else {
            writeln!(out, "  a plan would {}", changes.join(" and "))?;
        }
    }
    Ok(())
}

fn live(out: &mut dyn Write, diff: &LiveDiff) -> io::Result<()> {
    writeln!(out)?;
    match &diff.id {
        Some(id) => writeln!(out, "Live on {} (id {id})", diff.target)?,
        None => writeln!(out, "Live on {}", diff.target)?,
    }
    if diff.found {
        if diff.differences.is_empty() {
            writeln!(out, "  same as desired: {}", diff.compared.join(", "))?;
        } else {
            writeln!(out, "  compared: {}", diff.compared.join(", "))?;
        }
    }
    for d in &diff.differences {
        let mut parts = Vec::new();
        if let (Some(want), Some(have)) = (&d.desired, &d.live) {
            parts.push(format!("desired {want}, live {have}"));
        }
        if !d.only_desired.is_empty() {
            parts.push(format!("desired only: {}", d.only_desired.join(", ")));
        }
        if !d.only_live.is_empty() {
            parts.push(format!("live only: {}", d.only_live.join(", ")));
        }
        writeln!(out, "  ~ {}: {}", d.attribute, parts.join("; "))?;
    }
    if let Some(licenses) = &diff.licenses {
        live_licenses(out, licenses)?;
    }
    for note in &diff.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}
