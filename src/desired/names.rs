//! [`NameIndex`]: positions in a list by name, for lists of 100,000 users.
//!
//! A `HashMap<String, usize>` of folded names costs a copy of every name plus the map, about
//! 70 bytes a user, and lookups allocate to fold the name asked for. This index keeps only a
//! table of 8-byte slots (the position and part of the hash) and reads the names from the
//! list itself when it must compare, so it needs the list's names passed in on every call.
//! ASCII names, the usual case, are folded and compared without allocating.
//!
//! Hashes are keyed per index (`RandomState`), so names crafted to collide cannot turn lookups
//! quadratic.

use std::hash::{BuildHasher, Hasher, RandomState};

/// How names are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Matching {
    /// Case-insensitively, as `str::to_lowercase` folds them.
    Folded,
    /// Byte for byte.
    Exact,
}

/// One table slot: a position in the list, and the high half of its name's hash so that most
/// mismatches are rejected without reading the name.
#[derive(Clone, Copy, Debug)]
struct Slot {
    tag: u32,
    position: u32,
}

const EMPTY: u32 = u32::MAX;

/// Positions of a list's items by name; on equal names the first position wins.
#[derive(Debug)]
pub(crate) struct NameIndex {
    slots: Box<[Slot]>,
    matching: Matching,
    hasher: RandomState,
}

impl NameIndex {
    /// Indexes positions `0..count` under the name `name(i)` gives (`None`: not indexed).
    /// Returns the index and every `(position, first position)` whose name was already
    /// taken, in position order.
    pub(crate) fn build<'n>(
        count: usize,
        matching: Matching,
        name: impl Fn(usize) -> Option<&'n str>,
    ) -> (NameIndex, Vec<(usize, usize)>) {
        // At most four fifths full: probe sequences stay a few slots long, and 100,000 names
        // fit in 131,072 slots (1 MiB).
        let size = (count + count / 4 + 1).next_power_of_two();
        let mut index = NameIndex {
            slots: vec![
                Slot {
                    tag: 0,
                    position: EMPTY,
                };
                size
            ]
            .into_boxed_slice(),
            matching,
            hasher: RandomState::new(),
        };
        let mut duplicates = Vec::new();
        // Positions past u32::MAX - 1 cannot be stored; no list gets near that.
        for position in 0..count.min(EMPTY as usize) {
            let Some(text) = name(position) else {
                continue;
            };
            let hash = index.hash(text);
            let found = index.probe(hash, |p| index.same(name(p).unwrap_or_default(), text));
            match found {
                Ok(first) => duplicates.push((position, first)),
                Err(free) => {
                    index.slots[free] = Slot {
                        tag: tag(hash),
                        #[allow(clippy::cast_possible_truncation)] // bounded by EMPTY above
                        position: position as u32,
                    };
                }
            }
        }
        (index, duplicates)
    }

    /// The first position whose name matches `text`. `name` must give the names the index
    /// was built from.
    pub(crate) fn get<'n>(&self, text: &str, name: impl Fn(usize) -> &'n str) -> Option<usize> {
        self.probe(self.hash(text), |p| self.same(name(p), text))
            .ok()
    }

    /// Looks for a slot whose position `matches`, among those with this hash's tag: `Ok` with
    /// the position, or `Err` with the free slot where the search ended.
    fn probe(&self, hash: u64, matches: impl Fn(usize) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        #[allow(clippy::cast_possible_truncation)] // the mask keeps the low bits only
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot.position == EMPTY {
                return Err(at);
            }
            if slot.tag == tag(hash) && matches(slot.position as usize) {
                return Ok(slot.position as usize);
            }
            at = (at + 1) & mask;
        }
    }

    fn same(&self, a: &str, b: &str) -> bool {
        match self.matching {
            Matching::Exact => a == b,
            Matching::Folded => fold_eq(a, b),
        }
    }

    fn hash(&self, text: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        match self.matching {
            Matching::Exact => hash_bytes(&mut hasher, text.bytes()),
            Matching::Folded if text.is_ascii() => {
                hash_bytes(&mut hasher, text.bytes().map(|b| b.to_ascii_lowercase()));
            }
            Matching::Folded => hash_bytes(&mut hasher, text.to_lowercase().bytes()),
        }
        hasher.finish()
    }
}

fn tag(hash: u64) -> u32 {
    #[allow(clippy::cast_possible_truncation)] // the high half, on purpose
    let high = (hash >> 32) as u32;
    high
}

/// Feeds bytes to the hasher in fixed chunks, so that equal byte sequences hash equally however
/// they were produced.
fn hash_bytes(hasher: &mut impl Hasher, bytes: impl Iterator<Item = u8>) {
    let mut chunk = [0_u8; 64];
    let mut len = 0;
    for byte in bytes {
        chunk[len] = byte;
        len += 1;
        if len == chunk.len() {
            hasher.write(&chunk);
            len = 0;
        }
    }
    hasher.write(&chunk[..len]);
}

/// Whether two names are equal once folded with `str::to_lowercase`; allocates only for names
/// that are not ASCII.
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(names: &[&str], matching: Matching) -> (NameIndex, Vec<(usize, usize)>) {
        NameIndex::build(names.len(), matching, |i| Some(names[i]))
    }

    // Lookups fold case (including outside ASCII) and the first of equal names wins.
    #[test]
    fn folded_lookups_and_duplicates() {
        let names = [
            "Alice@x.example",
            "bob",
            "ALICE@X.EXAMPLE",
            "Émile",
            "émile",
            "BOB",
        ];
        let (index, duplicates) = build(&names, Matching::Folded);
        assert_eq!(duplicates, [(2, 0), (4, 3), (5, 1)]);
        let get = |text: &str| index.get(text, |i| names[i]);
        assert_eq!(get("alice@x.example"), Some(0));
        assert_eq!(get("Bob"), Some(1));
        assert_eq!(get("ÉMILE"), Some(3));
        assert_eq!(get("carol"), None);
        assert_eq!(get(""), None);
    }

    // A non-ASCII name can fold to an ASCII one (the Kelvin sign folds to `k`).
    #[test]
    fn non_ascii_folding_to_ascii() {
        let names = ["kelvin", "\u{212A}elvin"];
        let (index, duplicates) = build(&names, Matching::Folded);
        assert_eq!(duplicates, [(1, 0)]);
        assert_eq!(index.get("\u{212A}ELVIN", |i| names[i]), Some(0));
    }

    // Exact matching tells case apart; unnamed positions are skipped.
    #[test]
    fn exact_matching_and_gaps() {
        let names = [Some("hr-1"), None, Some("HR-1"), Some("hr-1"), None];
        let (index, duplicates) = NameIndex::build(names.len(), Matching::Exact, |i| names[i]);
        assert_eq!(duplicates, [(3, 0)]);
        let get = |text: &str| index.get(text, |i| names[i].unwrap_or_default());
        assert_eq!(get("HR-1"), Some(2));
        assert_eq!(get("hr-1"), Some(0));
        assert_eq!(get("Hr-1"), None);
    }

    // Long names hash across chunk boundaries the same whichever way they were folded, and
    // a full-sized index finds every name.
    #[test]
    fn many_and_long_names() {
        let long = "x".repeat(200);
        let names: Vec<String> = (0..5_000)
            .map(|i| format!("User{i}@Example.com{}", if i % 7 == 0 { &long } else { "" }))
            .collect();
        let (index, duplicates) =
            NameIndex::build(names.len(), Matching::Folded, |i| Some(names[i].as_str()));
        assert!(duplicates.is_empty());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(&name.to_uppercase(), |p| &names[p]), Some(i));
        }
        let empty = NameIndex::build(0, Matching::Folded, |_| None).0;
        assert_eq!(empty.get("a", |_| ""), None);
    }
}
