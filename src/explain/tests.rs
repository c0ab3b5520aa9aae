//! Unit tests of `explain` on small desired states.
