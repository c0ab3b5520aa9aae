//! Integration tests: the real binary against fixture directories.
