//! The one module that speaks YAML, in three parts:
//!
//! - `read.rs`: `saphyr-parser` turns text into events with positions; [`parse`] builds a
//!   small tree of [`Node`]s that keeps `line:col` for every value, enforcing the limits that
//!   make hostile input harmless (size, nesting depth, node count including alias expansion,
//!   duplicate keys, a single document), and [`parse_streaming`] hands out the items of
//!   top-level lists as they are read;
//! - `de.rs`: [`from_node`] deserializes any serde type from a node, attaching the position
//!   of the innermost failing value to every error and answering
//!   [`Spanned`](crate::model::Spanned)'s request for positions;
//! - `write.rs`: [`Writer`] and [`item`] write desired-state files in block style (what
//!   `scimctl export` produces), with comments, one-line lists and mappings where they read
//!   better, and quoting decided here so that every string reads back as the same string.
//!
//! Why not `serde_yaml`: it reports a position only for the first syntax or type error, never
//! for values, and validation and plan provenance need the position of every value. It is a
//! dev-dependency only: the tests use it (through `to_string`, here too) as an independent
//! writer whose output the reader must read back. Keeping every YAML call here means the
//! rest of the crate never sees a YAML library.
//!
//! Nothing here touches the filesystem.

mod de;
mod read;
mod write;

pub use de::{DeError, from_node, from_node_all};
pub(crate) use de::{suggest, suggest_key};
pub use read::{ItemSink, Limits, Node, NodeKind, SyntaxError, parse, parse_streaming};
#[cfg(test)]
pub(crate) use write::to_string;
pub use write::{Emit, Writer, item, push_item};
