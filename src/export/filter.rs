//! `--include` and `--exclude`: which live users and groups an export writes.
//!
//! A filter is `[user.|group.]ATTRIBUTE=GLOB`. Without a prefix it applies to users. The glob
//! matches the whole value, case-insensitively; `*` stands for any run of characters and `?`
//! for one. An object without the attribute matches only an empty pattern (`department=`).
//! An object is exported when it matches at least one `--include` of its kind (or there is
//! none) and no `--exclude` of its kind. Pure: parsing and matching only.

use std::fmt;
use std::str::FromStr;

use crate::model::Kind;

/// A user attribute a filter can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAttr {
    /// `userName`.
    UserName,
    /// `displayName`.
    DisplayName,
    /// `externalId`.
    ExternalId,
    /// `title`.
    Title,
    /// `department` (enterprise extension).
    Department,
    /// `division` (enterprise extension).
    Division,
    /// `employeeNumber` (enterprise extension).
    EmployeeNumber,
    /// `active`, as `true` or `false`.
    Active,
}

/// A group attribute a filter can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupAttr {
    /// `displayName`.
    DisplayName,
    /// `externalId`.
    ExternalId,
}

/// What a filter tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// A user attribute.
    User(UserAttr),
    /// A group attribute.
    Group(GroupAttr),
}

const USER_ATTRS: [(&str, UserAttr); 8] = [
    ("userName", UserAttr::UserName),
    ("displayName", UserAttr::DisplayName),
    ("externalId", UserAttr::ExternalId),
    ("title", UserAttr::Title),
    ("department", UserAttr::Department),
    ("division", UserAttr::Division),
    ("employeeNumber", UserAttr::EmployeeNumber),
    ("active", UserAttr::Active),
];

const GROUP_ATTRS: [(&str, GroupAttr); 2] = [
    ("displayName", GroupAttr::DisplayName),
    ("externalId", GroupAttr::ExternalId),
];

/// One `--include` or `--exclude` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The attribute tested.
    pub attribute: Attribute,
    /// The glob, lower-cased.
    pattern: Vec<char>,
    /// As written, for messages.
    text: String,
}

impl Filter {
    /// The kind of object this filter applies to.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self.attribute {
            Attribute::User(_) => Kind::User,
            Attribute::Group(_) => Kind::Group,
        }
    }

    /// Whether `value` (the attribute's value, `None` when absent) matches the glob.
    #[must_use]
    pub fn matches(&self, value: Option<&str>) -> bool {
        match value {
            None => self.pattern.is_empty(),
            Some(v) => glob(&self.pattern, &v.to_lowercase().chars().collect::<Vec<_>>()),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Filter, String> {
        let names = || {
            let users: Vec<&str> = USER_ATTRS.iter().map(|(n, _)| *n).collect();
            let groups: Vec<String> = GROUP_ATTRS
                .iter()
                .map(|(n, _)| format!("group.{n}"))
                .collect();
            format!("{}, {}", users.join(", "), groups.join(", "))
        };
        let Some((attr, pattern)) = s.split_once('=') else {
            return Err(format!(
                "`{s}` is not ATTRIBUTE=GLOB, e.g. department=Support or userName=*@contractor.example"
            ));
        };
        let attr = attr.trim();
        let attribute = if let Some(name) = attr.strip_prefix("group.") {
            GROUP_ATTRS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, a)| Attribute::Group(*a))
        } else {
            let name = attr.strip_prefix("user.").unwrap_or(attr);
            USER_ATTRS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, a)| Attribute::User(*a))
        };
        let Some(attribute) = attribute else {
            return Err(format!(
                "`{attr}` is not a filterable attribute (one of {})",
                names()
            ));
        };
        Ok(Filter {
            attribute,
            pattern: pattern.to_lowercase().chars().collect(),
            text: s.to_owned(),
        })
    }
}

/// Whether `text` matches `pattern` as a whole (`*` any run, `?` one character). Linear in
/// practice: the classic backtracking over the last `*` only.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Every `--include` and `--exclude` of one export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// `--include` values.
    pub include: Vec<Filter>,
    /// `--exclude` values.
    pub exclude: Vec<Filter>,
}

impl Filters {
    /// Whether any filter was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether an object of `kind` whose attributes `value` answers is exported.
    pub fn keeps(&self, kind: Kind, value: impl Fn(Attribute) -> Option<String>) -> bool {
        let hit = |f: &Filter| f.matches(value(f.attribute).as_deref());
        let mut wanted = self.include.iter().filter(|f| f.kind() == kind).peekable();
        let chosen = wanted.peek().is_none() || wanted.any(hit);
        chosen && !self.exclude.iter().filter(|f| f.kind() == kind).any(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Filter {
        s.parse().unwrap()
    }

    // Globs match whole values case-insensitively; absent values match only empty patterns.
    #[test]
    fn globs() {
        let contractor = f("userName=*@contractor.example");
        assert!(contractor.matches(Some("Bo@Contractor.example")));
        assert!(!contractor.matches(Some("bo@contractor.example.org")));
        assert!(!contractor.matches(None));
        assert!(f("department=Sup?ort").matches(Some("support")));
        assert!(f("department=*").matches(Some("")));
        assert!(!f("department=*").matches(None));
        assert!(f("department=").matches(None));
        assert!(f("title=*a*b*c").matches(Some("xaxbxbc")));
        assert!(!f("title=a*b").matches(Some("ab c")));
    }

    // Prefixes choose the kind; unknown attributes and missing `=` are explained.
    #[test]
    fn parsing() {
        assert_eq!(
            f("group.displayName=Team *").attribute,
            Attribute::Group(GroupAttr::DisplayName)
        );
        assert_eq!(
            f("user.department=x").attribute,
            Attribute::User(UserAttr::Department)
        );
        assert_eq!(
            f("DEPARTMENT=x").attribute,
            Attribute::User(UserAttr::Department)
        );
        let err = "dept=x".parse::<Filter>().unwrap_err();
        assert!(err.contains("not a filterable attribute"), "{err}");
        assert!(err.contains("group.externalId"), "{err}");
        assert!(
            "department"
                .parse::<Filter>()
                .unwrap_err()
                .contains("ATTRIBUTE=GLOB")
        );
    }

    // Includes of a kind are alternatives, excludes win, and filters of one kind leave the
    // other kind alone.
    #[test]
    fn keeping() {
        let filters = Filters {
            include: vec![f("department=Support"), f("department=Sales")],
            exclude: vec![f("userName=*@contractor.example")],
        };
        let user = |dept: &'static str, name: &'static str| {
            move |a: Attribute| match a {
                Attribute::User(UserAttr::Department) => Some(dept.to_owned()),
                Attribute::User(UserAttr::UserName) => Some(name.to_owned()),
                _ => None,
            }
        };
        assert!(filters.keeps(Kind::User, user("support", "a@x.example")));
        assert!(filters.keeps(Kind::User, user("Sales", "a@x.example")));
        assert!(!filters.keeps(Kind::User, user("Ops", "a@x.example")));
        assert!(!filters.keeps(Kind::User, user("Sales", "a@contractor.example")));
        assert!(filters.keeps(Kind::Group, |_| None));
    }
}
