//! How far a read of the whole tenant has got: users and groups listed so far against the
//! totals the servers announced, and role grants read against the users that need them.
//!
//! The client counts; the command line draws (`src/cli/reading.rs`). Counting is a few
//! relaxed atomic additions per page, so every client counts whether or not anyone looks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// Users (every listing of them: Genesys Cloud lists active and inactive users apart).
    Users,
    /// Groups.
    Groups,
    /// Role grants, one read per user (Genesys Cloud).
    Grants,
}

/// Totals and counts so far, shared by every clone of a client.
#[derive(Debug, Default)]
pub struct ReadCounts {
    slots: [Slot; 3],
}

#[derive(Debug, Default)]
struct Slot {
    total: AtomicU64,
    read: AtomicU64,
    /// A listing of this kind answered (its total may be zero).
    announced: AtomicBool,
}

/// One kind's figures at a moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Read so far.
    pub read: u64,
    /// Announced (the listings' `totalResults`, or the users whose grants are read).
    pub total: u64,
}

impl ReadCounts {
    fn slot(&self, kind: ReadKind) -> &Slot {
        &self.slots[match kind {
            ReadKind::Users => 0,
            ReadKind::Groups => 1,
            ReadKind::Grants => 2,
        }]
    }

    /// `total` more of `kind` are to be read.
    pub fn expect(&self, kind: ReadKind, total: u64) {
        let slot = self.slot(kind);
        slot.total.fetch_add(total, Ordering::Relaxed);
        slot.announced.store(true, Ordering::Relaxed);
    }

    /// `n` more of `kind` were read.
    pub fn got(&self, kind: ReadKind, n: u64) {
        self.slot(kind).read.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes back a listing that is read again (it changed while read): its `total` and the
    /// `read` of it counted so far.
    pub fn forget(&self, kind: ReadKind, total: u64, read: u64) {
        let slot = self.slot(kind);
        // Saturating: a display may be a little off, never wrap to a huge figure.
        let _ = slot
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(total))
            });
        let _ = slot
            .read
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(read))
            });
    }

    /// The figures of `kind` now.
    #[must_use]
    pub fn figures(&self, kind: ReadKind) -> Figures {
        let slot = self.slot(kind);
        Figures {
            read: slot.read.load(Ordering::Relaxed),
            total: slot.total.load(Ordering::Relaxed),
        }
    }

    /// `12000/100000 users, 300/10000 groups` (grants once some are expected), or `None`
    /// before the first listing answered.
    #[must_use]
    pub fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        for (kind, name) in [
            (ReadKind::Users, "users"),
            (ReadKind::Groups, "groups"),
            (ReadKind::Grants, "role grants"),
        ] {
            let f = self.figures(kind);
            if self.slot(kind).announced.load(Ordering::Relaxed) {
                parts.push(format!("{}/{} {name}", f.read, f.total.max(f.read)));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_a_listing_read_again_is_taken_back() {
        let counts = ReadCounts::default();
        assert_eq!(counts.line(), None);
        counts.expect(ReadKind::Groups, 0);
        assert_eq!(counts.line().as_deref(), Some("0/0 groups"));
        counts.expect(ReadKind::Users, 250);
        counts.got(ReadKind::Users, 100);
        assert_eq!(counts.line().as_deref(), Some("100/250 users, 0/0 groups"));
        counts.expect(ReadKind::Groups, 10);
        counts.got(ReadKind::Groups, 10);
        // The user listing changed while read: read again from the start, with one more.
        counts.forget(ReadKind::Users, 250, 100);
        counts.expect(ReadKind::Users, 251);
        counts.got(ReadKind::Users, 251);
        assert_eq!(
            counts.figures(ReadKind::Users),
            Figures {
                read: 251,
                total: 251
            }
        );
        counts.expect(ReadKind::Grants, 3);
        counts.got(ReadKind::Grants, 1);
        assert_eq!(
            counts.line().as_deref(),
            Some("251/251 users, 10/10 groups, 1/3 role grants")
        );
        // Never below zero, whatever a caller takes back.
        counts.forget(ReadKind::Grants, 10, 10);
        assert_eq!(counts.figures(ReadKind::Grants), Figures::default());
    }
}
