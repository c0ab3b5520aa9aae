//! The sandbox's resource store: users and groups in creation order, each kept as its
//! serialized JSON (so a list page is mostly a memcpy and 110k resources stay small), with
//! indexes on `id`, the case-folded name (`userName`/`displayName`, unique), `externalId` and
//! group member values. It owns uniqueness, ETag versions, `meta` stamping, `If-Match`, atomic
//! PATCH, member clean-up when a resource is deleted, and the change generation the persister
//! watches. It does no I/O; the state file is `persist`'s business.
//!
//! Locking: one `std::sync::RwLock` around both collections, never held across an `.await`.
//! Writes take it exclusively for a few microseconds (parse one resource, change it, serialize
//! it); reads clone `Arc`s of the entries they need and drop it before building a response.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use rand::RngExt;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::clock::{Clock, format_rfc3339};
use super::error::ScimError;
use super::filter::{AttrPath, Filter, IndexKey, leaves};
use super::patch::{self, PatchOp};
use super::resource::{self, ResourceKind, Stamp, etag_matches};
use super::types::Types;

/// Most resources one list page returns (`filter.maxResults` in `/ServiceProviderConfig`).
pub(crate) const MAX_RESULTS: usize = 1000;

/// One stored resource.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: Arc<str>,
    /// The whole resource as the server returns it (no password, `meta` included).
    pub(crate) json: Bytes,
    pub(crate) version: u64,
    /// `userName`/`displayName`, lowercased: the uniqueness and sort key (shared with the
    /// name index).
    name_key: Arc<str>,
    external_id: Option<Arc<str>>,
}

impl Entry {
    /// The resource as a JSON object.
    pub(crate) fn doc(&self) -> Map<String, Value> {
        // The bytes were produced by serializing a `Map`, so this cannot fail; an empty object
        // is the harmless answer if it somehow did.
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

/// The ids under one index key: almost always one, so that case allocates nothing extra.
#[derive(Clone, Debug)]
enum IdSet {
    One(Arc<str>),
    Many(Vec<Arc<str>>),
}

impl IdSet {
    fn insert(&mut self, id: &Arc<str>) {
        match self {
            IdSet::One(first) if first == id => {}
            IdSet::One(first) => *self = IdSet::Many(vec![first.clone(), id.clone()]),
            IdSet::Many(ids) => {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
    }

    /// Removes `id`; `true` when the set is then empty.
    fn remove(&mut self, id: &str) -> bool {
        match self {
            IdSet::One(only) => &**only == id,
            IdSet::Many(ids) => {
                ids.retain(|x| &**x != id);
                ids.is_empty()
            }
        }
    }

    fn iter(&self) -> std::slice::Iter<'_, Arc<str>> {
        match self {
            IdSet::One(id) => std::slice::from_ref(id).iter(),
            IdSet::Many(ids) => ids.iter(),
        }
    }
}

/// Adds `id` under `key`.
fn index_add<K>(map: &mut HashMap<K, IdSet>, key: &str, id: &Arc<str>)
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq + for<'a> From<&'a str>,
{
    match map.get_mut(key) {
        Some(set) => set.insert(id),
        None => {
            map.insert(K::from(key), IdSet::One(id.clone()));
        }
    }
}

/// Removes `id` from under `key`.
fn index_remove<K>(map: &mut HashMap<K, IdSet>, key: &str, id: &str)
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
{
    if let Some(set) = map.get_mut(key)
        && set.remove(id)
    {
        map.remove(key);
    }
}

/// Resources of one kind.
#[derive(Debug)]
struct Collection {
    /// Creation order; `None` marks a deleted slot until the next compaction.
    order: Vec<Option<Arc<Entry>>>,
    tombstones: usize,
    by_id: HashMap<Arc<str>, usize>,
    /// Lower-cased name → ids (several only for groups, when names need not be unique).
    by_name: HashMap<Arc<str>, IdSet>,
    by_external: HashMap<Arc<str>, IdSet>,
    /// Groups only: member `value` → ids of the groups listing it.
    by_member: HashMap<Box<str>, IdSet>,
}

impl Collection {
    fn new() -> Self {
        Collection {
            order: Vec::new(),
            tombstones: 0,
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            by_external: HashMap::new(),
            by_member: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.order.len() - self.tombstones
    }

    fn get(&self, id: &str) -> Option<&Arc<Entry>> {
        self.order.get(*self.by_id.get(id)?)?.as_ref()
    }

    fn live(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.order.iter().flatten()
    }

    /// Whether `name_key` is taken by a resource other than `except`.
    fn name_taken(&self, name_key: &str, except: Option<&str>) -> bool {
        self.by_name
            .get(name_key)
            .is_some_and(|ids| ids.iter().any(|id| Some(&**id) != except))
    }

    fn index(&mut self, entry: &Entry, members: &[String]) {
        index_add(&mut self.by_name, &entry.name_key, &entry.id);
        if let Some(external) = &entry.external_id {
            match self.by_external.get_mut(&**external) {
                Some(set) => set.insert(&entry.id),
                None => {
                    self.by_external
                        .insert(external.clone(), IdSet::One(entry.id.clone()));
                }
            }
        }
        for member in members {
            index_add(&mut self.by_member, member, &entry.id);
        }
    }

    fn unindex(&mut self, entry: &Entry, members: &[String]) {
        index_remove(&mut self.by_name, &entry.name_key, &entry.id);
        if let Some(external) = &entry.external_id {
            index_remove(&mut self.by_external, external, &entry.id);
        }
        for member in members {
            index_remove(&mut self.by_member, member, &entry.id);
        }
    }

    /// Room for `additional` more resources without rehashing (bulk inserts).
    fn reserve(&mut self, additional: usize) {
        self.order.reserve(additional);
        self.by_id.reserve(additional);
        self.by_name.reserve(additional);
        self.by_external.reserve(additional);
    }

    fn push(&mut self, entry: Entry, members: &[String]) -> Arc<Entry> {
        self.index(&entry, members);
        let entry = Arc::new(entry);
        self.by_id.insert(entry.id.clone(), self.order.len());
        self.order.push(Some(entry.clone()));
        entry
    }

    /// Replaces the entry with the same id, keeping its place in creation order.
    fn replace(&mut self, old_members: &[String], entry: Entry, members: &[String]) -> Arc<Entry> {
        let Some(&slot) = self.by_id.get(&*entry.id) else {
            return self.push(entry, members);
        };
        if let Some(old) = self.order[slot].take() {
            self.unindex(&old, old_members);
        }
        self.index(&entry, members);
        let entry = Arc::new(entry);
        self.order[slot] = Some(entry.clone());
        entry
    }

    fn remove(&mut self, id: &str, members: &[String]) -> Option<Arc<Entry>> {
        let slot = self.by_id.remove(id)?;
        let old = self.order[slot].take()?;
        self.unindex(&old, members);
        self.tombstones += 1;
        // Compacting costs O(n) but happens after n/8 deletes, so deletes stay O(1) amortized.
        if self.tombstones > 64 && self.tombstones * 8 > self.order.len() {
            self.order.retain(Option::is_some);
            self.tombstones = 0;
            for (i, entry) in self.order.iter().enumerate() {
                if let Some(entry) = entry {
                    self.by_id.insert(entry.id.clone(), i);
                }
            }
        }
        Some(old)
    }

    /// `count` live entries after skipping `skip`, in creation order.
    fn page(&self, skip: usize, count: usize) -> Vec<Arc<Entry>> {
        if self.tombstones == 0 {
            let start = skip.min(self.order.len());
            let end = start.saturating_add(count).min(self.order.len());
            self.order[start..end].iter().flatten().cloned().collect()
        } else {
            self.live().skip(skip).take(count).cloned().collect()
        }
    }

    /// Entries found through index keys, in creation order.
    fn lookup(&self, keys: &[IndexKey]) -> Vec<Arc<Entry>> {
        let mut slots: Vec<usize> = Vec::new();
        let mut add = |id: &str| {
            if let Some(&slot) = self.by_id.get(id) {
                slots.push(slot);
            }
        };
        for key in keys {
            match key {
                IndexKey::Id(id) => add(id),
                IndexKey::Name(name) => {
                    for id in self
                        .by_name
                        .get(name.as_str())
                        .into_iter()
                        .flat_map(IdSet::iter)
                    {
                        add(id);
                    }
                }
                IndexKey::ExternalId(external) => {
                    for id in self
                        .by_external
                        .get(external.as_str())
                        .into_iter()
                        .flat_map(IdSet::iter)
                    {
                        add(id);
                    }
                }
                IndexKey::Member(value) => {
                    for id in self
                        .by_member
                        .get(value.as_str())
                        .into_iter()
                        .flat_map(IdSet::iter)
                    {
                        add(id);
                    }
                }
            }
        }
        slots.sort_unstable();
        slots.dedup();
        slots
            .into_iter()
            .filter_map(|slot| self.order[slot].clone())
            .collect()
    }
}

#[derive(Debug)]
struct State {
    users: Collection,
    groups: Collection,
    /// The last version handed out; one counter for every resource, like the peer's.
    counter: u64,
}

impl State {
    fn collection(&self, kind: ResourceKind) -> &Collection {
        match kind {
            ResourceKind::User => &self.users,
            ResourceKind::Group => &self.groups,
        }
    }

    fn collection_mut(&mut self, kind: ResourceKind) -> &mut Collection {
        match kind {
            ResourceKind::User => &mut self.users,
            ResourceKind::Group => &mut self.groups,
        }
    }
}

/// A list request after parameter parsing (RFC 7644 §3.4.2).
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) filter: Option<Filter>,
    /// 1-based.
    pub(crate) start_index: usize,
    pub(crate) count: usize,
    pub(crate) sort_by: Option<AttrPath>,
    pub(crate) descending: bool,
}

/// One page of a list.
#[derive(Debug)]
pub(crate) struct ListPage {
    pub(crate) total: usize,
    pub(crate) start_index: usize,
    pub(crate) items: Vec<Arc<Entry>>,
}

/// Ids the store assigned in a bulk seed, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedIds {
    /// User ids.
    pub users: Vec<String>,
    /// Group ids.
    pub groups: Vec<String>,
}

/// The sandbox's users and groups. Shared (`Arc`) between the HTTP layer, the persister and
/// tests, which may seed and inspect it directly without HTTP.
pub struct Store {
    state: RwLock<State>,
    clock: Clock,
    /// `http://host:port/scim/v2`, for `meta.location`.
    base_url: String,
    /// Bumped by every change; the persister compares it with what it last wrote.
    generation: AtomicU64,
    changed: Notify,
    /// Each resource counts its own versions from 1 (Genesys Cloud) instead of sharing one
    /// counter (the peer's way, the default).
    per_resource_versions: bool,
    /// Whether a second group may not take a name in use. RFC 7643 §4.2 gives a group's
    /// `displayName` no uniqueness, and servers such as scim2-server accept copies, so the
    /// standard flavour accepts them too (the reading that breaks a client that assumes
    /// otherwise); the Genesys flavour refuses them, as it always has (UNCONFIRMED for a real
    /// org). `userName` is always unique.
    unique_group_names: bool,
    /// Flavour-specific state saved in the state file beside the resources (`None` for the
    /// standard flavour, whose file format stays as it was).
    extension: RwLock<Option<Value>>,
    /// Whether changes are recorded in `dirty` (only when a journal drains them).
    tracking: AtomicBool,
    /// Ids are small integers counted per resource type (`integer-ids` quirk), so a user and
    /// a group can share one.
    integer_ids: AtomicBool,
    /// What changed since the journal last drained: resources (recorded under the state's
    /// write lock, so a drain under the read lock sees a consistent set) and the extension.
    dirty: Mutex<Dirty>,
    /// The attribute types that creates, replaces and PATCH requests are checked against: the
    /// HTTP layer's `/Schemas` once it sets them, else those of a sandbox without quirks.
    types: RwLock<Option<Arc<Types>>>,
}

/// The attribute types of a sandbox without quirks.
static STANDARD_TYPES: std::sync::LazyLock<Arc<Types>> = std::sync::LazyLock::new(|| {
    let discovery = super::discovery::Discovery::new("", false, &super::Quirks::default());
    Arc::new(Types::new(&discovery))
});

/// Changes not yet drained by the journal.
#[derive(Debug, Default)]
struct Dirty {
    resources: Vec<(ResourceKind, Arc<str>)>,
    extension: bool,
}

/// One resource's state as of a drain: its stored JSON, or `None` when it was deleted.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) kind: ResourceKind,
    pub(crate) id: Arc<str>,
    pub(crate) json: Option<Bytes>,
}

/// What [`Store::drain_changes`] returns: every resource changed since the last drain, as it
/// is now, the version counter, the extension if it changed, and the generation they reflect.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) generation: u64,
    pub(crate) resources: Vec<Change>,
    pub(crate) counter: u64,
    pub(crate) extension: Option<Value>,
}

impl Changes {
    /// Nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.extension.is_none()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("base_url", &self.base_url)
            .field("users", &self.count(ResourceKind::User))
            .field("groups", &self.count(ResourceKind::Group))
            .finish_non_exhaustive()
    }
}

/// A fresh random id: 32 lowercase hex digits, like a UUID without dashes (the peer's shape).
fn new_id() -> String {
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

impl Store {
    /// Gives new resources small integer ids counted per resource type (`integer-ids`).
    pub(crate) fn use_integer_ids(&self) {
        self.integer_ids.store(true, Ordering::Relaxed);
    }

    /// An empty store whose resources live under `base_url`.
    pub(crate) fn new(base_url: impl Into<String>, clock: Clock) -> Self {
        Store {
            state: RwLock::new(State {
                users: Collection::new(),
                groups: Collection::new(),
                counter: 0,
            }),
            clock,
            base_url: base_url.into(),
            generation: AtomicU64::new(0),
            changed: Notify::new(),
            per_resource_versions: false,
            unique_group_names: false,
            extension: RwLock::new(None),
            tracking: AtomicBool::new(false),
            integer_ids: AtomicBool::new(false),
            dirty: Mutex::new(Dirty::default()),
            types: RwLock::new(None),
        }
    }

    /// Checks writes against `types` from now on (the HTTP layer's own `/Schemas`).
    pub(crate) fn set_types(&self, types: Types) {
        *self.types.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(types));
    }

    fn types(&self) -> Arc<Types> {
        let set = self.types.read().unwrap_or_else(PoisonError::into_inner);
        set.as_ref().unwrap_or(&STANDARD_TYPES).clone()
    }

    /// Starts recording changes for [`Store::drain_changes`] (the journal calls it once).
    pub(crate) fn track_changes(&self) {
        self.tracking.store(true, Ordering::Release);
    }

    /// Records a changed resource; call with the state's write lock held.
    fn mark(&self, kind: ResourceKind, id: &Arc<str>) {
        if self.tracking.load(Ordering::Acquire) {
            self.dirty
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .resources
                .push((kind, id.clone()));
        }
    }

    /// Takes what changed since the last call, each resource as it is now (deleted: `None`).
    /// Taken under the state's read lock, so the set is one consistent state; `generation`
    /// is read under the same lock and so covers no change missing from the set.
    pub(crate) fn drain_changes(&self) -> Changes {
        let state = self.read();
        let generation = self.generation();
        let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner));
        let mut seen = std::collections::HashSet::with_capacity(dirty.resources.len());
        let mut resources = Vec::with_capacity(dirty.resources.len());
        for (kind, id) in dirty.resources {
            if !seen.insert((kind, id.clone())) {
                continue;
            }
            let json = state.collection(kind).get(&id).map(|e| e.json.clone());
            resources.push(Change { kind, id, json });
        }
        let counter = state.counter;
        drop(state);
        let extension = if dirty.extension {
            self.extension()
        } else {
            None
        };
        Changes {
            generation,
            resources,
            counter,
            extension,
        }
    }

    /// Makes every resource count its own versions (1 at creation, +1 per change), as Genesys
    /// Cloud does; call before sharing the store.
    /// Refuses a group whose name is in use ([`Store::unique_group_names`]).
    pub(crate) fn set_unique_group_names(&mut self) {
        self.unique_group_names = true;
    }

    /// Whether a resource of `kind` must have a name no other has.
    fn unique_names(&self, kind: ResourceKind) -> bool {
        kind == ResourceKind::User || self.unique_group_names
    }

    pub(crate) fn set_per_resource_versions(&mut self) {
        self.per_resource_versions = true;
    }

    /// The version a resource gets next: its own +1 (or 1), or the shared counter's next.
    fn next_version(&self, state: &mut State, current: Option<u64>) -> u64 {
        state.counter += 1;
        if self.per_resource_versions {
            current.map_or(1, |v| v + 1)
        } else {
            state.counter
        }
    }

    /// The flavour-specific state last set or loaded.
    pub(crate) fn extension(&self) -> Option<Value> {
        self.extension
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the flavour-specific state; it is saved with the next flush.
    pub(crate) fn set_extension(&self, value: Value) {
        *self
            .extension
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(value);
        if self.tracking.load(Ordering::Acquire) {
            self.dirty
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extension = true;
        }
        self.touched();
    }

    // A panic while holding the lock can only come from a bug in this module; the data is still
    // consistent enough to serve, so poisoning is ignored rather than turned into more panics.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn touched(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// The change generation (for the persister).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves after the next change (a change made before the call also counts once).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The resource's absolute URL.
    pub(crate) fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{id}", self.base_url, kind.endpoint())
    }

    /// The clock's time, RFC 3339.
    pub(crate) fn now(&self) -> String {
        format_rfc3339(self.clock.now())
    }

    /// Stamps and serializes a prepared document; `name_key` is its lowercased name.
    fn entry(
        kind: ResourceKind,
        doc: &Map<String, Value>,
        name_key: &str,
        stamp: &Stamp<'_>,
        schemas: Option<&[&str]>,
    ) -> Result<Entry, ScimError> {
        let external_id = doc.get("externalId").and_then(Value::as_str).map(Arc::from);
        // Most resources are around 1 KiB; starting near there saves doubling reallocations.
        let mut json = Vec::with_capacity(768);
        resource::write_stamped(&mut json, doc, kind, stamp, schemas)
            .map_err(|e| ScimError::new(500, None, format!("cannot serialize resource: {e}")))?;
        Ok(Entry {
            id: Arc::from(stamp.id),
            // Exact size: `Bytes::from(Vec)` would keep the vector's spare capacity, which is
            // up to half of every stored resource.
            json: Bytes::from(json.into_boxed_slice()),
            version: stamp.version,
            name_key: Arc::from(name_key),
            external_id,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Operations behind the HTTP endpoints

    /// POST: creates a resource from a request body, whose attributes must have their types.
    pub(crate) fn create(&self, kind: ResourceKind, body: Value) -> Result<Arc<Entry>, ScimError> {
        let (doc, name) = resource::prepare(body, kind)?;
        self.types().check(&doc, kind)?;
        self.insert_prepared(kind, &doc, &name, None)
    }

    fn insert_prepared(
        &self,
        kind: ResourceKind,
        doc: &Map<String, Value>,
        name: &str,
        id: Option<String>,
    ) -> Result<Arc<Entry>, ScimError> {
        let now = self.now();
        let members = resource::member_values(doc);
        let mut state = self.write();
        if self.unique_names(kind)
            && state
                .collection(kind)
                .name_taken(&name.to_lowercase(), None)
        {
            return Err(ScimError::uniqueness(format!(
                "a {} with {} {name:?} already exists",
                kind.noun(),
                kind.name_attr()
            )));
        }
        let id = match id {
            Some(id) if state.collection(kind).get(&id).is_some() => {
                return Err(ScimError::uniqueness(format!("id {id:?} is taken")));
            }
            Some(id) => id,
            None if self.integer_ids.load(Ordering::Relaxed) => {
                let mut n = state.collection(kind).len() + 1;
                while state.collection(kind).get(&n.to_string()).is_some() {
                    n += 1;
                }
                n.to_string()
            }
            None => loop {
                let id = new_id();
                if state.collection(kind).get(&id).is_none() {
                    break id;
                }
            },
        };
        let version = self.next_version(&mut state, None);
        let location = self.location(kind, &id);
        let stamp = Stamp {
            id: &id,
            created: &now,
            modified: &now,
            version,
            location: &location,
        };
        let entry = Self::entry(kind, doc, &name.to_lowercase(), &stamp, None)?;
        let entry = state.collection_mut(kind).push(entry, &members);
        self.mark(kind, &entry.id);
        drop(state);
        self.touched();
        Ok(entry)
    }

    /// GET one.
    pub(crate) fn get_entry(&self, kind: ResourceKind, id: &str) -> Option<Arc<Entry>> {
        self.read().collection(kind).get(id).cloned()
    }

    fn missing(kind: ResourceKind, id: &str) -> ScimError {
        ScimError::not_found(format!("{} {id} not found", kind.resource_type()))
    }

    fn check_if_match(if_match: Option<&str>, entry: &Entry) -> Result<(), ScimError> {
        match if_match {
            Some(tag) if !etag_matches(tag, entry.version) => {
                Err(ScimError::precondition_failed(format!(
                    "resource has changed: current version is {}",
                    resource::etag(entry.version)
                )))
            }
            _ => Ok(()),
        }
    }

    /// PUT: full replace; `id` and `meta.created` are kept, everything omitted goes. The
    /// attributes must have their types.
    pub(crate) fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Result<Arc<Entry>, ScimError> {
        let (doc, _) = resource::prepare(body, kind)?;
        self.types().check(&doc, kind)?;
        self.update(kind, id, if_match, false, |_| Ok(doc))
    }

    /// PATCH: applies every operation to a copy and stores it only if all succeed and every
    /// value they changed has its type. A PATCH that changes nothing keeps the version (as the
    /// peer does).
    pub(crate) fn patch(
        &self,
        kind: ResourceKind,
        id: &str,
        ops: &[PatchOp],
        if_match: Option<&str>,
    ) -> Result<Arc<Entry>, ScimError> {
        let types = self.types();
        self.update(kind, id, if_match, false, |current| {
            let mut doc = current.clone();
            patch::apply(&mut doc, ops, kind)?;
            resource::normalize(&mut doc, kind);
            types.check_changes(&doc, current, kind)?;
            Ok(doc)
        })
    }

    /// Read-modify-write of one resource under the write lock. `change` gets the stored
    /// document without `id`/`meta` and returns the new one; an unchanged document keeps its
    /// version unless `always_bump`.
    pub(crate) fn update(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
        always_bump: bool,
        change: impl FnOnce(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<Arc<Entry>, ScimError> {
        let now = self.now();
        let mut state = self.write();
        let current = state
            .collection(kind)
            .get(id)
            .cloned()
            .ok_or_else(|| Self::missing(kind, id))?;
        Self::check_if_match(if_match, &current)?;
        let mut old = current.doc();
        let meta = old.remove("meta");
        old.remove("id");
        let created = meta
            .as_ref()
            .and_then(|m| m.get("created"))
            .and_then(Value::as_str)
            .map_or_else(|| now.clone(), str::to_owned);
        let new = change(&old)?;
        if new == old && !always_bump {
            return Ok(current);
        }
        let name = resource::validate(&new, kind)?;
        if self.unique_names(kind)
            && state
                .collection(kind)
                .name_taken(&name.to_lowercase(), Some(id))
        {
            return Err(ScimError::uniqueness(format!(
                "another {} has {} {name:?}",
                kind.noun(),
                kind.name_attr()
            )));
        }
        let old_members = resource::member_values(&old);
        let members = resource::member_values(&new);
        let version = self.next_version(&mut state, Some(current.version));
        let location = self.location(kind, id);
        let stamp = Stamp {
            id,
            created: &created,
            modified: &now,
            version,
            location: &location,
        };
        let entry = Self::entry(kind, &new, &name.to_lowercase(), &stamp, None)?;
        let entry = state
            .collection_mut(kind)
            .replace(&old_members, entry, &members);
        self.mark(kind, &entry.id);
        drop(state);
        self.touched();
        Ok(entry)
    }

    /// DELETE; the resource also leaves every group that listed it as a member (the peer leaves
    /// such dangling members behind).
    pub(crate) fn delete(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let now = self.now();
        let mut state = self.write();
        let current = state
            .collection(kind)
            .get(id)
            .cloned()
            .ok_or_else(|| Self::missing(kind, id))?;
        Self::check_if_match(if_match, &current)?;
        let members = if kind == ResourceKind::Group {
            resource::member_values(&current.doc())
        } else {
            Vec::new()
        };
        state.collection_mut(kind).remove(id, &members);
        self.mark(kind, &current.id);
        let containing: Vec<Arc<str>> = state
            .groups
            .by_member
            .get(id)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        for group_id in containing {
            let Some(group) = state.groups.get(&group_id).cloned() else {
                continue;
            };
            let mut doc = group.doc();
            let old_members = resource::member_values(&doc);
            if let Some(Value::Array(list)) = doc.get_mut("members") {
                list.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                if list.is_empty() {
                    doc.remove("members");
                }
            }
            let meta = doc.remove("meta");
            let created = meta
                .as_ref()
                .and_then(|m| m.get("created"))
                .and_then(Value::as_str)
                .map_or_else(|| now.clone(), str::to_owned);
            let name = resource::validate(&doc, ResourceKind::Group)?;
            let new_members = resource::member_values(&doc);
            let version = self.next_version(&mut state, Some(group.version));
            let location = self.location(ResourceKind::Group, &group_id);
            let stamp = Stamp {
                id: &group_id,
                created: &created,
                modified: &now,
                version,
                location: &location,
            };
            let entry = Self::entry(
                ResourceKind::Group,
                &doc,
                &name.to_lowercase(),
                &stamp,
                None,
            )?;
            state.groups.replace(&old_members, entry, &new_members);
            self.mark(ResourceKind::Group, &group_id);
        }
        drop(state);
        self.touched();
        Ok(())
    }

    /// GET list / POST .search: filter, sort and page.
    pub(crate) fn list(&self, kind: ResourceKind, query: &ListQuery) -> ListPage {
        let core = kind.core_urn();
        let skip = query.start_index.saturating_sub(1);
        let page = |items: Vec<Arc<Entry>>| {
            let total = items.len();
            let items = items.into_iter().skip(skip).take(query.count).collect();
            ListPage {
                total,
                start_index: query.start_index,
                items,
            }
        };
        let sort_in_order = query
            .sort_by
            .as_ref()
            .is_none_or(|p| is_creation_order(p, core));
        let candidates = {
            let state = self.read();
            let collection = state.collection(kind);
            match &query.filter {
                None if sort_in_order && !query.descending => {
                    return ListPage {
                        total: collection.len(),
                        start_index: query.start_index,
                        items: collection.page(skip, query.count),
                    };
                }
                None => collection.live().cloned().collect::<Vec<_>>(),
                Some(filter) => match filter.index_hint(core, kind.name_attr()) {
                    Some(keys) => collection.lookup(&keys),
                    None => collection.live().cloned().collect(),
                },
            }
        };
        let mut items: Vec<Arc<Entry>> = match &query.filter {
            Some(filter) => candidates
                .into_iter()
                .filter(|e| filter.matches(&e.doc(), core))
                .collect(),
            None => candidates,
        };
        if let Some(path) = query.sort_by.as_ref().filter(|_| !sort_in_order) {
            sort_entries(&mut items, path, kind);
        }
        if query.descending {
            items.reverse();
        }
        page(items)
    }

    // -----------------------------------------------------------------------------------------
    // Direct access for tests, benchmarks and the state file

    /// Creates one resource without HTTP, as POST would (a string `id` in `resource` is kept,
    /// so fixtures can refer to each other). Returns the stored resource.
    pub fn insert(&self, kind: ResourceKind, resource: Value) -> Result<Value, ScimError> {
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (doc, name) = resource::prepare(resource, kind)?;
        let entry = self.insert_prepared(kind, &doc, &name, id)?;
        Ok(Value::Object(entry.doc()))
    }

    /// Bulk-creates users then groups: 100,000 users and 10,000 groups take about 0.7 s in a
    /// release build on a 2-core machine. The resources are read, not consumed: ones already in
    /// stored form (canonical attribute names, booleans as booleans, no empty extension, no
    /// duplicate member) are serialized straight from the caller's JSON; others are copied and
    /// normalized first. Pass slices where the time matters: owned vectors are accepted too,
    /// but freeing every map when seeding is done costs as much again. A string `id` in a
    /// resource is kept, so groups can list seeded users as members; otherwise one is
    /// assigned. Returns the ids in the order given. All-or-nothing: a refused resource aborts
    /// before anything is stored.
    pub fn seed(
        &self,
        users: impl AsRef<[Value]>,
        groups: impl AsRef<[Value]>,
    ) -> Result<SeedIds, ScimError> {
        let incoming = numbered(users.as_ref(), groups.as_ref())
            .into_iter()
            .map(|(kind, index, value)| Incoming::read(kind, index, value))
            .collect::<Result<Vec<_>, ScimError>>()?;
        let ids = self.bulk_insert(incoming)?;
        self.touched();
        Ok(ids)
    }

    /// Checks a batch (names and given ids unique among themselves and against the store),
    /// assigns ids and versions, stamps and serializes, then stores it: all or nothing.
    fn bulk_insert(&self, incoming: Vec<Incoming<'_>>) -> Result<SeedIds, ScimError> {
        let now = self.now();
        let mut state = self.write();
        {
            let mut names: HashMap<(ResourceKind, &str), usize> =
                HashMap::with_capacity(incoming.len());
            let mut given: HashMap<(ResourceKind, &str), usize> =
                HashMap::with_capacity(incoming.len());
            for item in &incoming {
                let (kind, index) = (item.kind, item.index);
                let taken = state.collection(kind).name_taken(&item.name_key, None)
                    || names.insert((kind, &item.name_key), index).is_some();
                if taken && self.unique_names(kind) {
                    let name = item.doc.get(kind.name_attr()).and_then(Value::as_str);
                    let detail = format!(
                        "{} {:?} is taken",
                        kind.name_attr(),
                        name.unwrap_or_default()
                    );
                    return Err(at(kind, index, ScimError::uniqueness(detail)));
                }
                if let Some(id) = &item.id
                    && (state.collection(kind).get(id).is_some()
                        || given.insert((kind, id), index).is_some())
                {
                    let detail = format!("id {id:?} is taken");
                    return Err(at(kind, index, ScimError::uniqueness(detail)));
                }
            }
        }
        let mut counter = state.counter;
        let mut work = Vec::with_capacity(incoming.len());
        for mut item in incoming {
            let id = match item.id.take() {
                Some(id) => id,
                None => loop {
                    let id = new_id();
                    if state.collection(item.kind).get(&id).is_none() {
                        break id;
                    }
                },
            };
            counter += 1;
            work.push((item, id, counter));
        }
        let users = work
            .iter()
            .filter(|(i, ..)| i.kind == ResourceKind::User)
            .count();
        state.users.reserve(users);
        state.groups.reserve(work.len() - users);
        // Build every entry before storing any, so a failure leaves the store untouched.
        let built = work.iter().map(|(item, id, version)| {
            let location = self.location(item.kind, id);
            let stamp = Stamp {
                id,
                created: &now,
                modified: &now,
                version: *version,
                location: &location,
            };
            let members = resource::member_values(&item.doc);
            let schemas = item.schemas.as_deref();
            let entry = Self::entry(item.kind, &item.doc, &item.name_key, &stamp, schemas)
                .map_err(|e| at(item.kind, item.index, e))?;
            Ok((item.kind, entry, members))
        });
        let built = built.collect::<Result<Vec<_>, ScimError>>()?;
        drop(work);
        let mut ids = SeedIds::default();
        for (kind, entry, members) in built {
            let id = entry.id.to_string();
            let entry = state.collection_mut(kind).push(entry, &members);
            self.mark(kind, &entry.id);
            match kind {
                ResourceKind::User => ids.users.push(id),
                ResourceKind::Group => ids.groups.push(id),
            }
        }
        state.counter = counter;
        Ok(ids)
    }

    /// How many resources of `kind` exist.
    #[must_use]
    pub fn count(&self, kind: ResourceKind) -> usize {
        self.read().collection(kind).len()
    }

    /// One resource by id, as GET returns it.
    #[must_use]
    pub fn get(&self, kind: ResourceKind, id: &str) -> Option<Value> {
        self.get_entry(kind, id).map(|e| Value::Object(e.doc()))
    }

    /// One resource by `userName` (users) or `displayName` (groups), case-insensitively.
    #[must_use]
    pub fn find(&self, kind: ResourceKind, name: &str) -> Option<Value> {
        self.find_entry(kind, name).map(|e| Value::Object(e.doc()))
    }

    /// One resource's entry by `userName` (users) or `displayName` (groups), case-insensitively.
    pub(crate) fn find_entry(&self, kind: ResourceKind, name: &str) -> Option<Arc<Entry>> {
        let state = self.read();
        let collection = state.collection(kind);
        let id = collection
            .by_name
            .get(name.to_lowercase().as_str())?
            .iter()
            .next()?;
        collection.get(id).cloned()
    }

    /// Every resource of `kind`, in creation order.
    #[must_use]
    pub fn all(&self, kind: ResourceKind) -> Vec<Value> {
        let entries: Vec<Arc<Entry>> = self.read().collection(kind).live().cloned().collect();
        entries.iter().map(|e| Value::Object(e.doc())).collect()
    }

    /// Deletes one resource as DELETE does; `false` if it did not exist.
    pub fn remove(&self, kind: ResourceKind, id: &str) -> bool {
        self.delete(kind, id, None).is_ok()
    }

    /// The serialized resources and version counter, for the state file.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let state = self.read();
        Snapshot {
            users: state.users.live().map(|e| e.json.clone()).collect(),
            groups: state.groups.live().map(|e| e.json.clone()).collect(),
            counter: state.counter,
            extension: self.extension(),
            journal: 0,
        }
    }

    /// Starts loading resources read from a state file into this (empty) store, one at a
    /// time, so a caller can stream a large file without holding it parsed: see [`Restore`].
    pub(crate) fn restore(&self) -> Restore<'_> {
        Restore {
            store: self,
            users: Collection::new(),
            groups: Collection::new(),
            now: self.now(),
            given_max: 0,
            read: [0, 0],
            unversioned: [Vec::new(), Vec::new()],
            extension: None,
        }
    }
}

/// A state file on its way into a [`Store`]: each resource is checked (well-formed, an id,
/// a unique name and id), stamped and serialized as it is added, so the caller can drop its
/// parsed form at once; nothing reaches the store until [`Restore::finish`], so a file that
/// fails half-way leaves the store empty. `meta.location` is rewritten for this server's
/// address; versions and timestamps are kept. A resource without a version gets one above
/// every version in the file and the file's counter, in file order (users first), as its
/// creation would have.
pub(crate) struct Restore<'a> {
    store: &'a Store,
    users: Collection,
    groups: Collection,
    /// Stamps resources without `meta.created`/`lastModified`.
    now: String,
    /// The highest version read.
    given_max: u64,
    /// Resources read so far, users and groups, for messages.
    read: [usize; 2],
    /// Slots (in creation order) of resources read without a version, users and groups.
    unversioned: [Vec<usize>; 2],
    /// The flavour-specific state read, if any.
    pub(crate) extension: Option<Value>,
}

fn slot_of(kind: ResourceKind) -> usize {
    match kind {
        ResourceKind::User => 0,
        ResourceKind::Group => 1,
    }
}

impl Restore<'_> {
    fn collection(&mut self, kind: ResourceKind) -> &mut Collection {
        match kind {
            ResourceKind::User => &mut self.users,
            ResourceKind::Group => &mut self.groups,
        }
    }

    /// Adds the next resource of `kind`; the error names it (`user #3: no id`).
    pub(crate) fn add(&mut self, kind: ResourceKind, value: &Value) -> Result<(), String> {
        let index = self.read[slot_of(kind)];
        self.read[slot_of(kind)] += 1;
        let item = Incoming::read(kind, index, value).map_err(|e| e.detail)?;
        let fail = |error: ScimError| at(kind, index, error).detail;
        let Some(id) = item.id.as_deref().filter(|id| !id.is_empty()) else {
            return Err(fail(ScimError::invalid_value("no id")));
        };
        let unique = self.store.unique_names(kind);
        let collection = self.collection(kind);
        if unique && collection.name_taken(&item.name_key, None) {
            let name = item.doc.get(kind.name_attr()).and_then(Value::as_str);
            let detail = format!(
                "{} {:?} is taken",
                kind.name_attr(),
                name.unwrap_or_default()
            );
            return Err(fail(ScimError::uniqueness(detail)));
        }
        if collection.get(id).is_some() {
            return Err(fail(ScimError::uniqueness(format!("id {id:?} is taken"))));
        }
        let meta = value.get("meta").and_then(Value::as_object);
        let stamp_of = |key: &str| meta.and_then(|m| m.get(key)).and_then(Value::as_str);
        let version = value.as_object().and_then(resource::parse_version);
        let location = self.store.location(kind, id);
        let stamp = Stamp {
            id,
            created: stamp_of("created").unwrap_or(&self.now),
            modified: stamp_of("lastModified").unwrap_or(&self.now),
            // Replaced in `finish` when the file gave none.
            version: version.unwrap_or(0),
            location: &location,
        };
        let members = resource::member_values(&item.doc);
        let schemas = item.schemas.as_deref();
        let entry = Store::entry(kind, &item.doc, &item.name_key, &stamp, schemas).map_err(fail)?;
        let slot = self.collection(kind).order.len();
        match version {
            Some(version) => self.given_max = self.given_max.max(version),
            None => self.unversioned[slot_of(kind)].push(slot),
        }
        self.collection(kind).push(entry, &members);
        Ok(())
    }

    /// Versions the resources read without one, and puts everything into the store, whose
    /// version counter continues from the highest version or `counter`, whichever is more.
    pub(crate) fn finish(mut self, counter: u64) -> Result<(), String> {
        let mut counter = counter.max(self.given_max);
        for kind in [ResourceKind::User, ResourceKind::Group] {
            for slot in std::mem::take(&mut self.unversioned[slot_of(kind)]) {
                let collection = self.collection(kind);
                let Some(entry) = collection.order[slot].clone() else {
                    continue;
                };
                counter += 1;
                let doc = entry.doc();
                let meta = doc.get("meta").and_then(Value::as_object);
                let stamp_of = |key: &str| {
                    meta.and_then(|m| m.get(key))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                let location = self.store.location(kind, &entry.id);
                let stamp = Stamp {
                    id: &entry.id,
                    created: stamp_of("created"),
                    modified: stamp_of("lastModified"),
                    version: counter,
                    location: &location,
                };
                let members = resource::member_values(&doc);
                let restamped = Store::entry(kind, &doc, &entry.name_key, &stamp, None)
                    .map_err(|e| e.detail)?;
                self.collection(kind).replace(&members, restamped, &members);
            }
        }
        let mut state = self.store.write();
        if state.users.len() + state.groups.len() > 0 {
            return Err("the store already holds resources".to_owned());
        }
        state.users = self.users;
        state.groups = self.groups;
        state.counter = state.counter.max(counter);
        drop(state);
        if let Some(extension) = self.extension {
            *self
                .store
                .extension
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(extension);
        }
        Ok(())
    }
}

/// One resource on its way into the store in bulk.
struct Incoming<'a> {
    kind: ResourceKind,
    /// Position in the list given, for messages.
    index: usize,
    id: Option<String>,
    /// The caller's document when it is already in stored form, else a normalized copy.
    doc: Cow<'a, Map<String, Value>>,
    /// With a borrowed document: the `schemas` to write in place of its own.
    schemas: Option<Vec<&'a str>>,
    name_key: String,
}

impl<'a> Incoming<'a> {
    /// Checks one resource given in bulk, copying it only if it needs normalizing.
    fn read(kind: ResourceKind, index: usize, value: &'a Value) -> Result<Self, ScimError> {
        let Value::Object(map) = value else {
            let error = ScimError::invalid_syntax("a resource must be a JSON object");
            return Err(at(kind, index, error));
        };
        let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
        let (doc, schemas, name) = if resource::is_normal(map, kind) {
            let name = resource::validate(map, kind).map_err(|e| at(kind, index, e))?;
            let schemas = resource::expected_schemas(map, kind);
            (Cow::Borrowed(map), Some(schemas), name)
        } else {
            let (doc, name) =
                resource::prepare(value.clone(), kind).map_err(|e| at(kind, index, e))?;
            (Cow::Owned(doc), None, name)
        };
        Ok(Incoming {
            kind,
            index,
            id,
            doc,
            schemas,
            name_key: name.to_lowercase(),
        })
    }
}

/// Users then groups, each with its kind and position.
fn numbered<'a>(users: &'a [Value], groups: &'a [Value]) -> Vec<(ResourceKind, usize, &'a Value)> {
    let mut all = Vec::with_capacity(users.len() + groups.len());
    all.extend(
        users
            .iter()
            .enumerate()
            .map(|(i, v)| (ResourceKind::User, i, v)),
    );
    all.extend(
        groups
            .iter()
            .enumerate()
            .map(|(i, v)| (ResourceKind::Group, i, v)),
    );
    all
}

/// Prefixes an error's detail with the resource it is about: `user #3: ...`.
fn at(kind: ResourceKind, index: usize, mut error: ScimError) -> ScimError {
    error.detail = format!("{} #{index}: {}", kind.noun(), error.detail);
    error
}

/// A consistent copy of the store's contents (cheap: the JSON bytes are shared).
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) users: Vec<Bytes>,
    pub(crate) groups: Vec<Bytes>,
    pub(crate) counter: u64,
    /// Flavour-specific state, written only when set.
    pub(crate) extension: Option<Value>,
    /// The journal epoch this snapshot supersedes (`0`: none; then not written).
    pub(crate) journal: u64,
}

fn is_creation_order(path: &AttrPath, core: &str) -> bool {
    path.is_core(core)
        && path.attr.eq_ignore_ascii_case("meta")
        && path
            .sub
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("created"))
}

/// Sort key of one resource: absent values sort last (RFC 7644 §3.4.2.3).
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Bool(bool),
    Number(f64),
    Text(String),
    Missing,
}

fn sort_entries(items: &mut [Arc<Entry>], path: &AttrPath, kind: ResourceKind) {
    let core = kind.core_urn();
    let key_of = |entry: &Arc<Entry>| -> SortKey {
        if path.is_core_attr(core, kind.name_attr()) {
            return SortKey::Text(entry.name_key.to_string());
        }
        if path.is_core_attr(core, "id") {
            return SortKey::Text(entry.id.to_string());
        }
        let doc = entry.doc();
        match leaves(&doc, path, core).first() {
            Some(Value::String(s)) => SortKey::Text(s.to_lowercase()),
            Some(Value::Number(n)) => n.as_f64().map_or(SortKey::Missing, SortKey::Number),
            Some(Value::Bool(b)) => SortKey::Bool(*b),
            _ => SortKey::Missing,
        }
    };
    let mut keyed: Vec<(SortKey, Arc<Entry>)> =
        items.iter().map(|e| (key_of(e), e.clone())).collect();
    keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    for (slot, (_, entry)) in items.iter_mut().zip(keyed) {
        *slot = entry;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    fn store() -> Store {
        Store::new(
            "http://sandbox.test/scim/v2",
            Clock::fixed(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        )
    }

    fn query(filter: Option<&str>, start: usize, count: usize) -> ListQuery {
        ListQuery {
            filter: filter.map(|f| Filter::parse(f).expect("valid filter")),
            start_index: start,
            count,
            ..ListQuery::default()
        }
    }

    fn names(page: &ListPage) -> Vec<String> {
        page.items
            .iter()
            .map(|e| e.doc()["userName"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    // Creates stamp id/meta, names are unique case-insensitively, versions come from one counter.
    #[test]
    fn create_and_uniqueness() {
        let s = store();
        let a = s
            .create(
                ResourceKind::User,
                json!({"userName": "Alice", "password": "pw"}),
            )
            .expect("created");
        let doc = a.doc();
        assert_eq!(a.id.len(), 32);
        assert!(a.id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(doc["meta"]["version"], "W/\"1\"");
        assert_eq!(doc["meta"]["resourceType"], "User");
        assert_eq!(doc["meta"]["created"], "2027-01-15T08:00:00.000Z");
        assert_eq!(
            doc["meta"]["location"],
            format!("http://sandbox.test/scim/v2/Users/{}", a.id)
        );
        assert!(doc.get("password").is_none());
        let err = s
            .create(ResourceKind::User, json!({"userName": "ALICE"}))
            .expect_err("duplicate");
        assert_eq!((err.status, err.scim_type), (409, Some("uniqueness")));
        let g = s
            .create(ResourceKind::Group, json!({"displayName": "Ops"}))
            .expect("created");
        assert_eq!(g.version, 2);
        // RFC 7643 §4.2: a group's displayName need not be unique; the standard flavour
        // accepts a copy, the Genesys flavour refuses it.
        let twin = s
            .create(ResourceKind::Group, json!({"displayName": "ops"}))
            .expect("group names need not be unique");
        assert_ne!(twin.id, g.id);
        let mut unique = store();
        unique.set_unique_group_names();
        unique
            .create(ResourceKind::Group, json!({"displayName": "Ops"}))
            .expect("created");
        assert_eq!(
            unique
                .create(ResourceKind::Group, json!({"displayName": "ops"}))
                .expect_err("dup")
                .status,
            409
        );
        // a user and a group may share a name
        s.create(ResourceKind::Group, json!({"displayName": "alice"}))
            .expect("other kind");
    }

    // Paging is 1-based, in creation order, stable when more resources are created.
    #[test]
    fn paging_and_order() {
        let s = store();
        for i in 0..10 {
            s.create(ResourceKind::User, json!({"userName": format!("u{i}")}))
                .expect("created");
        }
        let page = s.list(ResourceKind::User, &query(None, 4, 3));
        assert_eq!(
            (page.total, names(&page)),
            (10, vec!["u3".into(), "u4".into(), "u5".into()])
        );
        s.create(ResourceKind::User, json!({"userName": "late"}))
            .expect("created");
        let page = s.list(ResourceKind::User, &query(None, 10, 5));
        assert_eq!(names(&page), vec!["u9", "late"]);
        assert_eq!(
            s.list(ResourceKind::User, &query(None, 50, 5)).items.len(),
            0
        );
        // deletes leave no holes, before and after compaction
        let ids: Vec<String> = s
            .all(ResourceKind::User)
            .iter()
            .map(|u| u["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(s.remove(ResourceKind::User, &ids[0]));
        let page = s.list(ResourceKind::User, &query(None, 1, 2));
        assert_eq!(
            (page.total, names(&page)),
            (10, vec!["u1".into(), "u2".into()])
        );
        for i in 100..300 {
            s.create(ResourceKind::User, json!({"userName": format!("x{i}")}))
                .expect("created");
        }
        for id in &ids[1..] {
            assert!(s.remove(ResourceKind::User, id));
        }
        let all = s.all(ResourceKind::User);
        assert_eq!(all.len(), 200);
        for user in all.iter().take(5) {
            let id = user["id"].as_str().unwrap_or_default();
            assert_eq!(s.get(ResourceKind::User, id).as_ref(), Some(user));
        }
        let page = s.list(ResourceKind::User, &query(None, 1, 1));
        assert_eq!(names(&page), vec!["x100"]);
    }

    // Indexed and scanned filters give the same answers; sorting on name, id and others.
    #[test]
    fn filters_and_sorting() {
        let s = store();
        for (name, ext, active) in [
            ("carol", "E3", true),
            ("Alice", "E1", false),
            ("bob", "E2", true),
        ] {
            s.create(
                ResourceKind::User,
                json!({"userName": name, "externalId": ext, "active": active, "title": name}),
            )
            .expect("created");
        }
        let find = |f: &str| names(&s.list(ResourceKind::User, &query(Some(f), 1, 100)));
        assert_eq!(find(r#"userName eq "ALICE""#), vec!["Alice"]);
        assert_eq!(find(r#"externalId eq "E2""#), vec!["bob"]);
        assert!(find(r#"externalId eq "e2""#).is_empty());
        assert_eq!(
            find(r#"externalId eq "E2" and active eq false"#),
            Vec::<String>::new()
        );
        assert_eq!(
            find(r#"userName eq "bob" or userName eq "carol""#),
            vec!["carol", "bob"]
        );
        assert_eq!(find("active eq true"), vec!["carol", "bob"]);
        let alice = s.find(ResourceKind::User, "alice").expect("found");
        assert_eq!(find(&format!("id eq {}", alice["id"])), vec!["Alice"]);
        let sorted = |by: &str, desc: bool| {
            let q = ListQuery {
                sort_by: AttrPath::parse(by),
                descending: desc,
                ..query(None, 1, 100)
            };
            names(&s.list(ResourceKind::User, &q))
        };
        assert_eq!(sorted("userName", false), vec!["Alice", "bob", "carol"]);
        assert_eq!(sorted("userName", true), vec!["carol", "bob", "Alice"]);
        assert_eq!(sorted("title", false), vec!["Alice", "bob", "carol"]);
        assert_eq!(sorted("meta.created", false), vec!["carol", "Alice", "bob"]);
        assert_eq!(sorted("nickName", true), vec!["bob", "Alice", "carol"]);
    }

    // PUT keeps id and created; PATCH is atomic; If-Match guards both; no-op PATCH keeps the version.
    #[test]
    fn replace_patch_if_match() {
        let s = store();
        let a = s
            .create(
                ResourceKind::User,
                json!({"userName": "a", "title": "T", "active": true}),
            )
            .expect("created");
        s.create(ResourceKind::User, json!({"userName": "b"}))
            .expect("created");
        let put = s
            .replace(
                ResourceKind::User,
                &a.id,
                json!({"id": "ignored", "userName": "a2"}),
                Some("W/\"1\""),
            )
            .expect("put");
        let doc = put.doc();
        assert_eq!(doc["id"], *a.id);
        assert!(doc.get("title").is_none());
        assert_eq!(put.version, 3);
        let stale = s
            .replace(
                ResourceKind::User,
                &a.id,
                json!({"userName": "a3"}),
                Some("W/\"1\""),
            )
            .expect_err("stale");
        assert_eq!(stale.status, 412);
        let dup = s
            .replace(ResourceKind::User, &a.id, json!({"userName": "B"}), None)
            .expect_err("dup");
        assert_eq!(dup.status, 409);
        let ops = patch::parse_body(&json!({"Operations": [
            {"op": "replace", "path": "title", "value": "new"},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x"}
        ]}))
        .expect("parses");
        assert_eq!(
            s.patch(ResourceKind::User, &a.id, &ops, None)
                .expect_err("noTarget")
                .scim_type,
            Some("noTarget")
        );
        assert_eq!(
            s.get_entry(ResourceKind::User, &a.id).map(|e| e.version),
            Some(3)
        );
        assert!(
            s.get(ResourceKind::User, &a.id)
                .is_some_and(|d| d.get("title").is_none())
        );
        let rename = patch::parse_body(
            &json!({"Operations": [{"op": "replace", "path": "userName", "value": "b"}]}),
        )
        .expect("parses");
        assert_eq!(
            s.patch(ResourceKind::User, &a.id, &rename, None)
                .expect_err("dup")
                .status,
            409
        );
        let noop = patch::parse_body(
            &json!({"Operations": [{"op": "replace", "path": "userName", "value": "a2"}]}),
        )
        .expect("parses");
        assert_eq!(
            s.patch(ResourceKind::User, &a.id, &noop, Some("*"))
                .expect("noop")
                .version,
            3
        );
        assert_eq!(
            s.patch(ResourceKind::User, &a.id, &noop, Some("\"2\""))
                .expect_err("stale")
                .status,
            412
        );
        assert_eq!(
            s.patch(ResourceKind::User, "nope", &noop, None)
                .expect_err("missing")
                .status,
            404
        );
        let drop_name =
            patch::parse_body(&json!({"Operations": [{"op": "remove", "path": "userName"}]}))
                .expect("parses");
        assert_eq!(
            s.patch(ResourceKind::User, &a.id, &drop_name, None)
                .expect_err("required")
                .status,
            400
        );
    }

    // Deleting a user or group removes it from every group's members and bumps those groups.
    #[test]
    fn delete_cleans_memberships() {
        let s = store();
        let ids = s
            .seed(
                &[json!({"userName": "a", "id": "ua"}), json!({"userName": "b", "id": "ub"})],
                &[
                    json!({"displayName": "g1", "id": "g1", "members": [{"value": "ua"}, {"value": "ub"}]}),
                    json!({"displayName": "g2", "id": "g2", "members": [{"value": "ua"}, {"value": "g1", "type": "Group"}]}),
                ],
            )
            .expect("seeded");
        assert_eq!(ids.users, vec!["ua", "ub"]);
        let before = s.get_entry(ResourceKind::Group, "g1").map(|e| e.version);
        s.delete(ResourceKind::User, "ua", None).expect("deleted");
        assert_eq!(
            s.get(ResourceKind::Group, "g1")
                .map(|g| g["members"].clone()),
            Some(json!([{"value": "ub"}]))
        );
        assert_ne!(
            s.get_entry(ResourceKind::Group, "g1").map(|e| e.version),
            before
        );
        s.delete(ResourceKind::Group, "g1", None).expect("deleted");
        assert!(
            s.get(ResourceKind::Group, "g2")
                .is_some_and(|g| g.get("members").is_none())
        );
        let find = |f: &str| s.list(ResourceKind::Group, &query(Some(f), 1, 10)).total;
        assert_eq!(find(r#"members[value eq "ub"]"#), 0);
        assert_eq!(
            s.delete(ResourceKind::User, "ua", None)
                .expect_err("gone")
                .status,
            404
        );
    }

    // Member filters use the index and see changes made through PATCH.
    #[test]
    fn member_index() {
        let s = store();
        s.seed(
            &[json!({"userName": "a", "id": "ua"})],
            &[json!({"displayName": "g", "id": "g"})],
        )
        .expect("seeded");
        let count = |f: &str| s.list(ResourceKind::Group, &query(Some(f), 1, 10)).total;
        assert_eq!(count(r#"members[value eq "ua"]"#), 0);
        let add = patch::parse_body(
            &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "ua"}]}]}),
        )
        .expect("parses");
        s.patch(ResourceKind::Group, "g", &add, None)
            .expect("patched");
        assert_eq!(count(r#"members[value eq "ua"]"#), 1);
        assert_eq!(count(r#"members.value eq "ua""#), 1);
        assert_eq!(count(r#"members[value eq "ua" and type eq "User"]"#), 0);
    }

    // Seeding is all-or-nothing and fast.
    #[test]
    fn seed_validation() {
        let s = store();
        let err = s
            .seed(&[json!({"userName": "a"}), json!({"userName": "A"})], &[])
            .expect_err("dup");
        assert_eq!(err.status, 409);
        assert!(err.detail.contains("#1"), "{}", err.detail);
        assert_eq!(s.count(ResourceKind::User), 0);
        let err = s.seed(&[json!({"title": "x"})], &[]).expect_err("invalid");
        assert!(err.detail.starts_with("user #0"), "{}", err.detail);
        let users: Vec<Value> = (0..5000)
            .map(|i| json!({"userName": format!("user{i}@x"), "active": true}))
            .collect();
        let ids = s.seed(&users, &[]).expect("seeded");
        assert_eq!(ids.users.len(), 5000);
        assert_eq!(s.count(ResourceKind::User), 5000);
        assert!(s.find(ResourceKind::User, "USER4999@X").is_some());
    }
}
