//! Look-alike names (issue 14, item 7): names that differ as written but that a server or a
//! person takes for one another.
//!
//! - Two names equal once NFKC-normalized and lower-cased (`ﬁona` and `fiona`, fullwidth
//!   `ＡＢＣ` and `abc`): SCIM compares `userName` case-insensitively (RFC 7643 §4.1.1) and
//!   servers normalize, so they are one name there. [`Finding::Same`]; validation makes it an
//!   error.
//! - Two names whose UTS #39 confusable skeletons are equal but that are not NFKC-equal
//!   (Cyrillic `а` for Latin `a`): [`Finding::Confusable`], a warning. Pairs of ASCII names are
//!   left alone: `l`/`1`/`I` and `rn`/`m` are skeleton-equal, and generated ASCII userNames
//!   would drown the warnings that matter.
//! - One name mixing scripts inside a label (`pаypal`, Latin with one Cyrillic letter; labels
//!   split at whitespace and ASCII punctuation, so `иван@x.example` is fine; Common and
//!   Inherited characters such as digits belong to every script), or holding an invisible
//!   format character (general category Cf) that [`crate::model::is_unsafe_char`] does not
//!   already refuse (soft hyphen, left-to-right mark, ...): [`Finding::MixedScripts`] and
//!   [`Finding::Invisible`], warnings.
//!
//! One pass over the names with hash maps keyed by the normalized form and by the skeleton,
//! never a comparison of every pair. A list of ASCII names, the usual case, is answered by one
//! scan: ASCII names cannot hold any of these problems except ASCII-only confusables, which
//! are left alone, and their case-insensitive duplicates are reported as duplicates already.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;

use unicode_normalization::UnicodeNormalization;
use unicode_security::mixed_script::AugmentedScriptSet;
use unicode_security::{MixedScript, skeleton};

use super::names::fold_eq;

/// One look-alike problem, by position in the list of names checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The name at `position` equals the one at `first` after NFKC normalization and case
    /// folding, but not as written (nor case-insensitively: that is a plain duplicate).
    Same {
        /// The later name.
        position: usize,
        /// The earlier name it collides with.
        first: usize,
    },
    /// The name at `position` has the confusable skeleton of the one at `first`.
    Confusable {
        /// The later name.
        position: usize,
        /// The earlier name it looks like.
        first: usize,
    },
    /// The name at `position` mixes these scripts inside one label.
    MixedScripts {
        /// The name.
        position: usize,
        /// The scripts, in order of appearance (Unicode names, such as `Latin`, `Cyrillic`).
        scripts: Vec<String>,
    },
    /// The name at `position` holds this invisible format character.
    Invisible {
        /// The name.
        position: usize,
        /// The first such character.
        character: char,
    },
}

/// Every look-alike problem among the names `0..count` (`name(i)`), in position order for each
/// kind of finding. Names that [`fold_eq`] an earlier one are plain duplicates, reported
/// elsewhere, and are not reported again here.
pub(crate) fn find<'n>(count: usize, name: impl Fn(usize) -> &'n str) -> Vec<Finding> {
    let mut found = Vec::new();
    if (0..count).all(|i| name(i).is_ascii()) {
        return found;
    }
    // Normalized form → first position; skeleton → first position.
    let mut normalized: HashMap<String, usize> = HashMap::with_capacity(count);
    let mut skeletons: HashMap<String, usize> = HashMap::with_capacity(count);
    for position in 0..count {
        let text = name(position);
        let key = normalize(text);
        let skeleton_key: String = skeleton(&key).collect();
        match normalized.entry(key) {
            Entry::Occupied(first) => {
                let first = *first.get();
                if !fold_eq(name(first), text) {
                    found.push(Finding::Same { position, first });
                }
                // Equal once normalized: looking alike says nothing more.
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(position);
            }
        }
        match skeletons.entry(skeleton_key) {
            Entry::Occupied(first) => {
                let first = *first.get();
                if !(text.is_ascii() && name(first).is_ascii()) {
                    found.push(Finding::Confusable { position, first });
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(position);
            }
        }
        if text.is_ascii() {
            continue;
        }
        if let Some(character) = text.chars().find(|c| is_invisible_format(*c)) {
            found.push(Finding::Invisible {
                position,
                character,
            });
        }
        if let Some(scripts) = mixed_scripts(text) {
            found.push(Finding::MixedScripts { position, scripts });
        }
    }
    found
}

/// The name as a server compares it: NFKC, lower-cased, NFKC again (lower-casing can undo
/// normalization, as `NFKC_Casefold` accounts for). ASCII is only lower-cased.
fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let nfkc: String = text.nfkc().collect();
    nfkc.to_lowercase().nfkc().collect()
}

/// The scripts of the first label of `text` that is not single-script (UTS #39 resolved script
/// set empty), or `None`. Labels are split at whitespace and ASCII punctuation (`@`, `.`, `-`,
/// `_`, ...).
fn mixed_scripts(text: &str) -> Option<Vec<String>> {
    let label = text
        .split(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .find(|label| !label.is_single_script())?;
    let mut scripts: Vec<String> = Vec::new();
    for c in label.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if set.is_all() {
            continue;
        }
        let script = set.to_string();
        if !scripts.contains(&script) {
            scripts.push(script);
        }
    }
    Some(scripts)
}

/// Whether `c` is an invisible format character (general category Cf) that names may hold:
/// the ones [`crate::model::is_unsafe_char`] refuses are errors already.
fn is_invisible_format(c: char) -> bool {
    is_format(c) && !crate::model::is_unsafe_char(c)
}

/// General category Cf (Unicode 16.0, DerivedGeneralCategory.txt): soft hyphen, Arabic and
/// Syriac marks, zero-width characters, bidirectional marks and controls, invisible operators,
/// interlinear annotation, shorthand and musical format controls, tags.
const FORMAT: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

fn is_format(c: char) -> bool {
    FORMAT
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// A name as a message shows it: [`crate::model::escape`], and every other format character
/// as `\u{..}` too, so that two spellings that look the same on screen read differently.
pub(crate) fn show(text: &str) -> Cow<'_, str> {
    let escaped = crate::model::escape(text);
    if !escaped.chars().any(is_format) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        if is_format(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str]) -> Vec<Finding> {
        find(names.len(), |i| names[i])
    }

    // The ligature ﬁ, fullwidth letters and a case difference on top of either are one name
    // to a server: an error finding naming the first.
    #[test]
    fn nfkc_equal_names_are_the_same() {
        assert_eq!(
            check(&["fiona@x.example", "ﬁona@x.example"]),
            [Finding::Same {
                position: 1,
                first: 0
            }]
        );
        assert_eq!(
            check(&["abc", "other", "ＡＢＣ"]),
            [Finding::Same {
                position: 2,
                first: 0
            }]
        );
        assert_eq!(
            check(&["FIONA", "ﬁona"]),
            [Finding::Same {
                position: 1,
                first: 0
            }]
        );
        // A plain case-insensitive duplicate is reported elsewhere, not twice.
        assert_eq!(check(&["Zoë", "ZOË"]), []);
    }

    // Cyrillic а in place of Latin a: the skeletons match, NFKC does not; a warning finding,
    // and the mixed-script one for the name that mixes.
    #[test]
    fn confusable_skeletons_warn() {
        let found = check(&["paypal@x.example", "pаypal@x.example"]);
        assert!(
            found.contains(&Finding::Confusable {
                position: 1,
                first: 0
            }),
            "{found:?}"
        );
        // A whole-Cyrillic look-alike is single-script: only the confusable finding.
        assert_eq!(
            check(&["cop", "сор"]),
            [Finding::Confusable {
                position: 1,
                first: 0
            }]
        );
    }

    #[test]
    fn mixed_scripts_in_one_label_warn() {
        assert_eq!(
            check(&["pаypal@x.example"]),
            [Finding::MixedScripts {
                position: 0,
                scripts: vec!["Latin".into(), "Cyrillic".into()]
            }]
        );
        // Different scripts in different labels are fine.
        assert_eq!(check(&["иван.петров@x.example", "Поддержка Support"]), []);
    }

    // Cf characters that are not already refused (soft hyphen, left-to-right mark) warn, and
    // show escaped.
    #[test]
    fn invisible_format_characters_warn() {
        assert_eq!(
            check(&["jo\u{ad}e"]),
            [Finding::Invisible {
                position: 0,
                character: '\u{ad}'
            }]
        );
        let found = check(&["joe", "jo\u{200e}e"]);
        assert!(
            found.contains(&Finding::Invisible {
                position: 1,
                character: '\u{200e}'
            }),
            "{found:?}"
        );
        assert!(
            found.contains(&Finding::Confusable {
                position: 1,
                first: 0
            }),
            "{found:?}"
        );
        assert_eq!(show("jo\u{200e}e\u{1b}"), "jo\\u{200e}e\\u{1b}");
        assert!(matches!(show("Zoë"), Cow::Borrowed(_)));
        assert!(is_format('\u{e007f}') && !is_format('a') && !is_format('\u{2065}'));
    }

    // ASCII names, digits, dots, @ and l/1 or rn/m look-alikes produce nothing.
    #[test]
    fn ascii_names_produce_nothing() {
        assert_eq!(
            check(&[
                "agent1@bench.example",
                "agentl@bench.example",
                "modern.user-2@x.example",
                "rnodern.user-2@x.example",
                "Night Shift",
            ]),
            []
        );
        // Also when one non-ASCII name makes the full check run.
        assert_eq!(check(&["agent1@x.example", "agentl@x.example", "Zoë"]), []);
    }

    // Names in one non-Latin script, kana with kanji, Greek with accents, produce nothing.
    #[test]
    fn single_script_names_produce_nothing() {
        assert_eq!(
            check(&[
                "山田たろう",
                "ヤマダ・タロー",
                "Ωμέγα",
                "Ελληνικά 2",
                "josé@x.example",
                "Jose\u{301}"
            ]),
            []
        );
    }
}
