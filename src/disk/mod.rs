//! Local file primitives shared by every module that keeps state on disk: advisory locks
//! ([`lock`]) and atomic replacement of a file ([`atomic`]). Nothing here knows what the files
//! hold; the callers name them and turn the errors into their own.

pub mod atomic;
pub mod lock;
