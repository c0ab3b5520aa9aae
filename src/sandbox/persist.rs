//! The state file: `{"version":1,"users":[...],"groups":[...],"counter":n}` (the Genesys
//! flavour adds a `"genesys":{...}` section before `counter`). Loading it at
//! start, streamed into the store a resource at a time (a corrupt file is an error naming the
//! path, never a panic), writing it atomically and streamed from the stored JSON (temporary
//! file in the same directory, fsync, rename, fsync of the directory). The file is the last
//! snapshot; changes since are in the journal (module `journal`), which a load lays over it.
//! `"journal":n` (written only when above 0) is the journal epoch the file supersedes.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::clock::Clock;
use super::error::SandboxError;
use super::journal::Overlay;
use super::resource::ResourceKind;
use super::store::{Restore, Snapshot, Store};
use crate::disk::atomic::{self, Mode};

/// The state file format's version.
const FORMAT_VERSION: u32 = 1;

/// Reads `path` into `store` if the file exists. A missing file is an empty store.
///
/// The file is parsed as it is read, and each resource goes into the store as soon as it is
/// parsed, so neither the file nor a parsed tree of it is ever held whole: loading 100,000
/// users needs little more memory than the store that results.
#[cfg(test)]
pub(crate) fn load(path: &Path, store: &Store) -> Result<(), SandboxError> {
    load_with(path, store, &mut Overlay::default()).map(|_| ())
}

/// [`load`] with the journal's changes laid over the file (see [`Overlay`]): a resource the
/// journal changed is read from the journal instead, one it deleted is skipped, the ones it
/// created follow the file's, and the counter and extension are the journal's when it has
/// them. An overlay older than the file (its epoch below the file's `journal`) is stale and
/// ignored (`overlay.active` is then `false`). Returns the file's journal epoch.
pub(crate) fn load_with(
    path: &Path,
    store: &Store,
    overlay: &mut Overlay,
) -> Result<u64, SandboxError> {
    let corrupt = |reason: String| SandboxError::CorruptState {
        path: path.to_owned(),
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if overlay.is_empty() {
                return Ok(0);
            }
            let mut restore = store.restore();
            overlay.finish(&mut restore).map_err(corrupt)?;
            restore.finish(overlay.counter).map_err(corrupt)?;
            return Ok(0);
        }
        Err(source) => {
            return Err(SandboxError::ReadState {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut restore = store.restore();
    let mut refused = None;
    let mut epoch = 0;
    let mut reader =
        serde_json::Deserializer::from_reader(io::BufReader::with_capacity(READ_BUFFER, file));
    let read = StateSeed {
        restore: &mut restore,
        refused: &mut refused,
        overlay: &mut *overlay,
        epoch: &mut epoch,
    }
    .deserialize(&mut reader)
    .and_then(|counter| reader.end().map(|()| counter));
    let counter = match (read, refused) {
        (Ok(counter), _) => counter,
        // A refused resource or version: the reason, without serde's position.
        (Err(_), Some(reason)) => return Err(corrupt(reason)),
        (Err(e), None) if e.is_io() => {
            return Err(SandboxError::ReadState {
                path: path.to_owned(),
                source: e.into(),
            });
        }
        (Err(e), None) => return Err(corrupt(e.to_string())),
    };
    let counter = if overlay.active {
        overlay.finish(&mut restore).map_err(corrupt)?;
        counter.max(overlay.counter)
    } else {
        counter
    };
    restore.finish(counter).map_err(corrupt)?;
    Ok(epoch)
}

/// How much of the state file is read at a time.
const READ_BUFFER: usize = 256 * 1024;

/// The state file's fields.
const FIELDS: &[&str] = &[
    "version", "journal", "users", "groups", "genesys", "counter",
];

/// Reads the state file's object, handing each resource to `restore` as it is parsed; yields
/// the `counter`. `refused` receives the reason when a resource or the version is refused
/// (the error returned then only stops the parse).
struct StateSeed<'r, 's> {
    restore: &'r mut Restore<'s>,
    refused: &'r mut Option<String>,
    overlay: &'r mut Overlay,
    epoch: &'r mut u64,
}

impl<'de> DeserializeSeed<'de> for StateSeed<'_, '_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StateSeed<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sandbox state object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut version = None;
        let mut counter = None;
        let mut lists = [false, false];
        while let Some(key) = map.next_key::<String>()? {
            match &*key {
                "version" => {
                    if version.is_some() {
                        return Err(de::Error::duplicate_field("version"));
                    }
                    let found: u32 = map.next_value()?;
                    if found != FORMAT_VERSION {
                        *self.refused = Some(format!(
                            "unsupported version {found} (expected {FORMAT_VERSION})"
                        ));
                        return Err(de::Error::custom("unsupported version"));
                    }
                    version = Some(found);
                }
                "journal" => {
                    let found: u64 = map.next_value()?;
                    *self.epoch = found;
                    if self.overlay.epoch < found {
                        if lists.iter().any(|seen| *seen) && !self.overlay.is_empty() {
                            *self.refused =
                                Some("`journal` must come before the resources".to_owned());
                            return Err(de::Error::custom("journal after resources"));
                        }
                        self.overlay.active = false;
                    }
                }
                "counter" => {
                    if counter.is_some() {
                        return Err(de::Error::duplicate_field("counter"));
                    }
                    counter = Some(map.next_value::<u64>()?);
                }
                "users" | "groups" => {
                    let (kind, name) = if key == "users" {
                        (ResourceKind::User, "users")
                    } else {
                        (ResourceKind::Group, "groups")
                    };
                    let seen = &mut lists[usize::from(kind == ResourceKind::Group)];
                    if std::mem::replace(seen, true) {
                        return Err(de::Error::duplicate_field(name));
                    }
                    map.next_value_seed(ListSeed {
                        kind,
                        restore: self.restore,
                        refused: self.refused,
                        overlay: self.overlay,
                    })?;
                }
                "genesys" => {
                    if self.restore.extension.is_some() {
                        return Err(de::Error::duplicate_field("genesys"));
                    }
                    self.restore.extension = Some(map.next_value::<Value>()?);
                }
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        if version.is_none() {
            return Err(de::Error::missing_field("version"));
        }
        Ok(counter.unwrap_or(0))
    }
}

/// Reads one list of resources (`users` or `groups`) into `restore`, one at a time.
struct ListSeed<'r, 's> {
    kind: ResourceKind,
    restore: &'r mut Restore<'s>,
    refused: &'r mut Option<String>,
    overlay: &'r mut Overlay,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of resources")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(mut resource) = seq.next_element::<Value>()? {
            if self.overlay.active && !self.overlay.is_empty() {
                let id = resource
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match self.overlay.take(self.kind, id) {
                    Some(Some(newer)) => resource = newer,
                    Some(None) => continue,
                    None => {}
                }
            }
            if let Err(reason) = self.restore.add(self.kind, &resource) {
                *self.refused = Some(reason);
                return Err(de::Error::custom("resource refused"));
            }
        }
        Ok(())
    }
}

/// Writes a snapshot as a state file; the resources' cached JSON is copied as is, one at a
/// time, so no second copy of the store is built.
pub(crate) fn encode(snapshot: &Snapshot, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{{\"version\":{FORMAT_VERSION},")?;
    if snapshot.journal > 0 {
        write!(out, "\"journal\":{},", snapshot.journal)?;
    }
    out.write_all(b"\"users\":[")?;
    write_list(out, &snapshot.users)?;
    out.write_all(b"],\"groups\":[")?;
    write_list(out, &snapshot.groups)?;
    out.write_all(b"]")?;
    if let Some(extension) = &snapshot.extension {
        out.write_all(b",\"genesys\":")?;
        serde_json::to_writer(&mut *out, extension)?;
    }
    writeln!(out, ",\"counter\":{}}}", snapshot.counter)
}

fn write_list(out: &mut dyn Write, items: &[axum::body::Bytes]) -> io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        out.write_all(if i > 0 { b",\n" } else { b"\n" })?;
        out.write_all(item)?;
    }
    Ok(())
}

/// Writes what `write` produces to `path` so that a reader (or a crash) sees either the old or
/// the new file, never a torn one, readable by the owner only (it holds every user's
/// attributes): [`crate::disk::atomic`] (temporary file beside it, fsync, rename, fsync of the
/// directory). The directory is created if needed.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    atomic::write_with(path, Mode::Private, write)
}

/// Writes a state file holding `users` and `groups` without starting a server, for benchmarks
/// and fixtures: ids (a string `id` in a resource is kept) and `meta` are assigned as POST
/// would, in bulk. `meta.location` is fixed up when a sandbox loads the file.
pub fn write_state_file(
    path: &Path,
    users: impl AsRef<[Value]>,
    groups: impl AsRef<[Value]>,
) -> Result<super::SeedIds, SandboxError> {
    let store = Store::new("http://localhost/scim/v2", Clock::system());
    let ids = store.seed(users, groups).map_err(|e| {
        let (kind, index) = match e.detail.split_once(" #") {
            Some(("group", rest)) => ("group", rest),
            Some((_, rest)) => ("user", rest),
            None => ("user", "0"),
        };
        let index = index
            .split(':')
            .next()
            .and_then(|i| i.parse().ok())
            .unwrap_or_default();
        SandboxError::Seed {
            kind,
            index,
            detail: e.detail,
        }
    })?;
    let snapshot = store.snapshot();
    write_atomic(path, |out| encode(&snapshot, out)).map_err(|source| {
        SandboxError::WriteState {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;
    use crate::sandbox::resource::ResourceKind;

    fn store() -> Store {
        Store::new("http://127.0.0.1:1/scim/v2", Clock::system())
    }

    // What is written loads back identically, with locations rewritten for the new server.
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/state.json");
        let a = store();
        a.seed(
            &[json!({"userName": "a", "id": "ua", "password": "secret-pw",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}})],
            &[json!({"displayName": "g", "members": [{"value": "ua"}]})],
        )
        .expect("seeded");
        write_atomic(&path, |out| encode(&a.snapshot(), out)).expect("written");
        let text = fs::read_to_string(&path).expect("readable");
        assert!(!text.contains("secret-pw"));
        let value: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["version"], 1);
        assert_eq!(value["counter"], 2);
        let b = Store::new("http://127.0.0.1:2/scim/v2", Clock::system());
        load(&path, &b).expect("loads");
        let user = b.get(ResourceKind::User, "ua").expect("user");
        let mut expected = a.get(ResourceKind::User, "ua").expect("user");
        expected["meta"]["location"] = json!("http://127.0.0.1:2/scim/v2/Users/ua");
        assert_eq!(user, expected);
        assert_eq!(
            b.all(ResourceKind::Group)[0]["members"],
            json!([{"value": "ua"}])
        );
        // the version counter continues where it was
        let c = b
            .create(ResourceKind::User, json!({"userName": "c"}))
            .expect("created");
        assert_eq!(c.version, 3);
        // nothing but the state file is left in the directory
        let names: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    // A write replaces the file through rename: a reader holding the old file keeps the old
    // contents (its inode), and a leftover temporary file from a crash does not matter.
    #[test]
    fn atomic_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, |out| out.write_all(b"old")).expect("written");
        let mut reader = File::open(&path).expect("open");
        fs::write(
            dir.path().join(".state.json.deadbeefdeadbeef.tmp"),
            b"{torn",
        )
        .expect("crash leftover");
        write_atomic(&path, |out| out.write_all(b"new")).expect("written");
        let mut old = String::new();
        io::Read::read_to_string(&mut reader, &mut old).expect("read");
        assert_eq!(old, "old");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        // That the temporary file is beside the target and unique per write is checked in
        // `disk::atomic::tests::the_temporary_file_is_beside_the_target_and_unique`.
    }

    // Streaming load: fields in any order, resources without a version numbered after every
    // version in the file and its counter (users first, in file order), the counter carried on.
    #[test]
    fn load_in_any_order_with_missing_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let text = r#"{"groups":[{"id":"g1","displayName":"ops","members":[{"value":"u2"}]},
            {"id":"g2","displayName":"dev","meta":{"version":"W/\"3\""}}],
            "counter":5,
            "users":[{"id":"u1","userName":"a","meta":{"version":"W/\"9\"",
                "created":"2026-01-01T00:00:00Z","lastModified":"2026-01-02T00:00:00Z"}},
            {"id":"u2","userName":"b","meta":{"created":"2026-01-03T00:00:00Z"}}],
            "version":1}"#;
        fs::write(&path, text).expect("written");
        let s = store();
        load(&path, &s).expect("loads");
        let version = |kind, id| s.get_entry(kind, id).expect("loaded").version;
        assert_eq!(version(ResourceKind::User, "u1"), 9);
        assert_eq!(version(ResourceKind::Group, "g2"), 3);
        assert_eq!(version(ResourceKind::User, "u2"), 10);
        assert_eq!(version(ResourceKind::Group, "g1"), 11);
        let u2 = s.get(ResourceKind::User, "u2").expect("u2");
        assert_eq!(u2["meta"]["version"], "W/\"10\"");
        assert_eq!(u2["meta"]["created"], "2026-01-03T00:00:00Z");
        assert_eq!(
            u2["meta"]["location"],
            "http://127.0.0.1:1/scim/v2/Users/u2"
        );
        let u1 = s.get(ResourceKind::User, "u1").expect("u1");
        assert_eq!(u1["meta"]["lastModified"], "2026-01-02T00:00:00Z");
        let names: Vec<Value> = s
            .all(ResourceKind::Group)
            .iter()
            .map(|g| g["displayName"].clone())
            .collect();
        assert_eq!(names, [json!("ops"), json!("dev")], "file order kept");
        let next = s
            .create(ResourceKind::User, json!({"userName": "c"}))
            .expect("created");
        assert_eq!(next.version, 12);

        // What is written reads back the same.
        let copy = dir.path().join("copy.json");
        write_atomic(&copy, |out| encode(&s.snapshot(), out)).expect("written");
        let again = store();
        load(&copy, &again).expect("loads");
        for kind in [ResourceKind::User, ResourceKind::Group] {
            assert_eq!(again.all(kind), s.all(kind));
        }
    }

    // A file refused part-way leaves the store empty; so does a second load into a full store.
    #[test]
    fn refused_load_leaves_the_store_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        fs::write(
            &path,
            r#"{"version":1,"users":[{"id":"1","userName":"a"},{"id":"1","userName":"b"}]}"#,
        )
        .expect("written");
        let s = store();
        let err = load(&path, &s).expect_err("duplicate id");
        assert!(
            err.to_string().contains("user #1: id \"1\" is taken"),
            "{err}"
        );
        assert_eq!(s.count(ResourceKind::User), 0);
        fs::write(
            &path,
            r#"{"version":1,"users":[{"id":"1","userName":"a"}]}"#,
        )
        .expect("written");
        load(&path, &s).expect("loads");
        let err = load(&path, &s).expect_err("already loaded");
        assert!(err.to_string().contains("already holds resources"), "{err}");
        assert_eq!(s.count(ResourceKind::User), 1);
    }

    // Corrupt files are errors that name the path; a missing file is an empty store.
    #[test]
    fn corrupt_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        load(&path, &store()).expect("missing file is fine");
        for (content, needle) in [
            ("{not json", "key must be a string"),
            (
                r#"{"version":2,"users":[],"groups":[]}"#,
                "unsupported version 2",
            ),
            (
                r#"{"version":1,"users":[{"userName":"a"}]}"#,
                "user #0: no id",
            ),
            (
                r#"{"version":1,"users":[{"id":"1","userName":"a"},{"id":"2","userName":"A"}]}"#,
                "user #1: userName \"A\" is taken",
            ),
            (
                r#"{"version":1,"groups":[{"id":"1"}]}"#,
                "displayName is required",
            ),
            (r#"{"version":1,"extra":true}"#, "unknown field"),
            (r#"{"users":[]}"#, "missing field `version`"),
            (
                r#"{"version":1,"users":[],"users":[]}"#,
                "duplicate field `users`",
            ),
            (r#"{"version":1,"users":{}}"#, "invalid type: map"),
            (
                r#"{"version":1,"users":[3]}"#,
                "user #0: a resource must be",
            ),
            (r#"{"version":1} trailing"#, "trailing characters"),
            (r#"{"version":1,"users":[{"id":"1","userName":"a"}"#, "EOF"),
        ] {
            fs::write(&path, content).expect("written");
            let err = load(&path, &store()).expect_err(content);
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(needle), "{message}");
            assert!(matches!(err, SandboxError::CorruptState { .. }));
        }
    }

    // write_state_file seeds in bulk and the file loads.
    #[test]
    fn bulk_state_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bulk.json");
        let users: Vec<Value> = (0..2000)
            .map(|i| json!({"userName": format!("u{i}"), "id": format!("{i:032x}")}))
            .collect();
        let groups =
            vec![json!({"displayName": "all", "members": [{"value": format!("{:032x}", 7)}]})];
        let ids = write_state_file(&path, &users, &groups).expect("written");
        assert_eq!(ids.users.len(), 2000);
        let s = store();
        load(&path, &s).expect("loads");
        assert_eq!(s.count(ResourceKind::User), 2000);
        assert_eq!(s.count(ResourceKind::Group), 1);
        let err = write_state_file(&path, &[json!({"userName": "x"})], &[json!({})])
            .expect_err("invalid");
        assert!(
            matches!(
                err,
                SandboxError::Seed {
                    kind: "group",
                    index: 0,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
