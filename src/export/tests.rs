//! Unit tests of the pure export: determinism, quoting, sorting, reference resolution.
