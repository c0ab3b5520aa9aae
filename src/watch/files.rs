//! File events: a `notify` watcher on the desired-state directory, reduced to "something
//! that matters changed", and the debounce that makes an editor's burst of writes, renames
//! and swap files count once.
//!
//! The directory can be replaced while watch runs: `git checkout`, git-sync and Kubernetes
//! `ConfigMap` volumes delete and recreate it, or swap a symlink on its path. An inotify watch
//! follows the inode it was put on, not the name, so after such a swap it would hear nothing
//! more. [`watch`] therefore also watches the parents of the path's symlinks (and the path's
//! own parent) without recursion, and re-resolves the path whenever one of those names is
//! replaced, the watched directory itself goes away, or at the latest every
//! [`RECHECK`]. When the path leads to another directory than before, the recursive watch is
//! put on the new one and a change is reported, so a swap itself triggers a reconcile.

use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How often the path is re-resolved when no event says it changed: the fallback for swaps
/// no watched name reports (a symlink further along a chain, an event lost to an overflow).
pub const RECHECK: Duration = Duration::from_secs(1);

/// Keeps the watch going: the watchers and the task that re-arms them. Dropping it stops
/// the events.
#[derive(Debug)]
pub struct Watching {
    task: JoinHandle<()>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches `dir` recursively; every event that touches a YAML file, and every replacement
/// of the directory (or of a symlink on its path, or of a symlink inside it), sends `()` on
/// the returned channel. Keep the [`Watching`] alive for as long as events are wanted. Must
/// be called inside a tokio runtime; fails when `dir` is not a directory now.
pub fn watch(dir: &Path) -> notify::Result<(Watching, mpsc::UnboundedReceiver<()>)> {
    let (out, rx) = mpsc::unbounded_channel();
    let (signals_tx, signals) = mpsc::unbounded_channel();
    let tracker = Tracker::arm(dir, signals_tx)?;
    let task = tokio::spawn(tracker.run(signals, out));
    Ok((Watching { task }, rx))
}

/// What the watchers' callbacks tell the task.
#[derive(Debug)]
enum Signal {
    /// Something in the tree that matters changed.
    Files,
    /// The watched directory itself was removed or renamed.
    Root,
    /// Entries of a watched parent were created, removed or renamed.
    Anchor(Vec<PathBuf>),
    /// Events were lost (the kernel queue overflowed).
    Rescan,
}

/// Which directory a path leads to: its canonical form and the directory's identity on
/// disk, so that a directory deleted and recreated under the same name counts as new.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    real: PathBuf,
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
}

impl Identity {
    /// Resolves `given` (every symlink on the way) to the directory it leads to now.
    fn of(given: &Path) -> io::Result<Identity> {
        let real = std::fs::canonicalize(given)?;
        let meta = std::fs::metadata(&real)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Ok(Identity {
            real,
            dev,
            ino,
            born: meta.created().ok(),
        })
    }
}

/// What to do after re-resolving the path.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Same directory as before (or still missing): nothing.
    Keep,
    /// Another directory, or back after missing, or a watched name was replaced: watch it.
    Rearm(Identity),
    /// The path leads nowhere now.
    Lost,
}

/// `forced`: a watched name was replaced, so re-arm even when the identity looks the same
/// (a file system may hand a deleted directory's inode to the next one).
fn decide(current: Option<&Identity>, now: io::Result<Identity>, forced: bool) -> Decision {
    match now {
        Ok(now) if forced || current != Some(&now) => Decision::Rearm(now),
        Err(_) if current.is_some() => Decision::Lost,
        Ok(_) | Err(_) => Decision::Keep,
    }
}

/// The names whose replacement means the path may lead elsewhere: the path itself and
/// every prefix of it that is a symlink, all absolute. Each is watched through its parent.
fn anchors(given: &Path) -> Vec<PathBuf> {
    let absolute = if given.is_absolute() {
        given.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(given)
    };
    let mut found = Vec::new();
    let mut prefix = PathBuf::new();
    for component in absolute.components() {
        prefix.push(component);
        if matches!(component, Component::Normal(_))
            && std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink())
        {
            found.push(prefix.clone());
        }
    }
    if absolute.parent().is_some() && !found.contains(&prefix) {
        found.push(prefix);
    }
    found
}

/// The watched directory itself removed or renamed away.
fn touches_root(event: &notify::Event, root: &Path) -> bool {
    matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) && event.paths.iter().any(|p| p == root)
}

/// A symlink created or renamed into place, such as the `..data` link a `ConfigMap` volume
/// swaps (hidden, so [`matters`] does not see it).
fn swaps_symlink(event: &notify::Event) -> bool {
    matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
    ) && event
        .paths
        .iter()
        .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
}

/// An entry of a watched parent appeared, went or was renamed (reads and attribute changes
/// do not count: reading the directory must not look like a swap).
fn replaces(event: &notify::Event) -> bool {
    matches!(
        event.kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Any
    )
}

/// The recursive watch on the directory the path leads to now.
fn tree_watcher(
    root: &Path,
    signals: mpsc::UnboundedSender<Signal>,
) -> notify::Result<RecommendedWatcher> {
    let owned = root.to_path_buf();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                if event.need_rescan() {
                    let _ = signals.send(Signal::Rescan);
                }
                if touches_root(&event, &owned) {
                    let _ = signals.send(Signal::Root);
                }
                if matters(&event) || swaps_symlink(&event) {
                    let _ = signals.send(Signal::Files);
                }
            }
            Err(e) => tracing::warn!(error = %e, "file watcher"),
        })?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// The non-recursive watches on the anchors' parents.
fn parent_watcher(signals: mpsc::UnboundedSender<Signal>) -> notify::Result<RecommendedWatcher> {
    notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) if event.need_rescan() => {
            let _ = signals.send(Signal::Rescan);
        }
        Ok(event) if replaces(&event) => {
            let _ = signals.send(Signal::Anchor(event.paths));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "file watcher (parent directories)"),
    })
}

/// The state of the watch: what the path leads to, and the watchers on it.
struct Tracker {
    given: PathBuf,
    anchors: HashSet<PathBuf>,
    parents: HashSet<PathBuf>,
    parent_watcher: RecommendedWatcher,
    current: Option<Identity>,
    tree: Option<RecommendedWatcher>,
    signals: mpsc::UnboundedSender<Signal>,
    missing_warned: bool,
}

impl Tracker {
    /// Resolves `dir` and watches it; `dir` must be a directory now.
    fn arm(dir: &Path, signals: mpsc::UnboundedSender<Signal>) -> notify::Result<Tracker> {
        let identity = Identity::of(dir).map_err(notify::Error::io)?;
        let tree = tree_watcher(&identity.real, signals.clone())?;
        let mut tracker = Tracker {
            given: dir.to_path_buf(),
            anchors: HashSet::new(),
            parents: HashSet::new(),
            parent_watcher: parent_watcher(signals.clone())?,
            current: Some(identity),
            tree: Some(tree),
            signals,
            missing_warned: false,
        };
        tracker.watch_anchors();
        Ok(tracker)
    }

    /// Adds the path's current anchors to the watched ones (anchors stay watched once seen:
    /// a name that was a symlink may become one again).
    fn watch_anchors(&mut self) {
        for anchor in anchors(&self.given) {
            let Some(parent) = anchor.parent().map(Path::to_path_buf) else {
                continue;
            };
            if !self.parents.contains(&parent) {
                match self
                    .parent_watcher
                    .watch(&parent, RecursiveMode::NonRecursive)
                {
                    Ok(()) => {
                        self.parents.insert(parent);
                    }
                    Err(e) => tracing::debug!(
                        parent = %parent.display(),
                        error = %e,
                        "cannot watch a parent directory; relying on the periodic check"
                    ),
                }
            }
            self.anchors.insert(anchor);
        }
    }

    /// Re-resolves the path and re-arms when it leads elsewhere. Returns whether the
    /// directory was replaced (a change to report).
    fn recheck(&mut self, forced: bool) -> bool {
        match decide(self.current.as_ref(), Identity::of(&self.given), forced) {
            Decision::Keep => {
                if self.current.is_none() && !self.missing_warned {
                    self.missing();
                }
                false
            }
            Decision::Lost => {
                self.tree = None;
                self.current = None;
                self.missing();
                false
            }
            Decision::Rearm(identity) => {
                self.tree = None;
                match tree_watcher(&identity.real, self.signals.clone()) {
                    Ok(tree) => {
                        tracing::info!(
                            dir = %self.given.display(),
                            now = %identity.real.display(),
                            "the desired-state directory was replaced; watching the new one"
                        );
                        self.tree = Some(tree);
                        self.current = Some(identity);
                        self.missing_warned = false;
                        self.watch_anchors();
                        true
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot watch the new directory yet");
                        self.current = None;
                        self.missing();
                        false
                    }
                }
            }
        }
    }

    fn missing(&mut self) {
        if !self.missing_warned {
            self.missing_warned = true;
            tracing::warn!(
                dir = %self.given.display(),
                "the desired-state directory is gone; watching for it to come back \
                 (the last valid desired state stays in force)"
            );
        }
    }

    async fn run(
        mut self,
        mut signals: mpsc::UnboundedReceiver<Signal>,
        out: mpsc::UnboundedSender<()>,
    ) {
        let mut tick = tokio::time::interval(RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let changed = tokio::select! {
                Some(signal) = signals.recv() => match signal {
                    Signal::Files => true,
                    Signal::Root => self.recheck(true),
                    Signal::Anchor(paths) => {
                        paths.iter().any(|p| self.anchors.contains(p)) && self.recheck(true)
                    }
                    Signal::Rescan => {
                        self.recheck(false);
                        true
                    }
                },
                _ = tick.tick() => self.recheck(false),
            };
            if changed && out.send(()).is_err() {
                return;
            }
        }
    }
}

/// A change to a `.yaml` or `.yml` file (created, written, renamed, removed). Reads, and
/// editors' swap and backup files, do not count.
fn matters(event: &notify::Event) -> bool {
    let changes = matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    );
    changes && event.paths.iter().any(|p| is_yaml(p))
}

fn is_yaml(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    !name.starts_with('.')
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Waits until no event has arrived for `quiet`, swallowing the ones that do. Returns
/// `false` when the sender is gone.
pub async fn settle(events: &mut mpsc::UnboundedReceiver<()>, quiet: Duration) -> bool {
    loop {
        tokio::select! {
            event = events.recv() => {
                if event.is_none() {
                    return false;
                }
            }
            () = tokio::time::sleep(quiet) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};
    use std::path::PathBuf;

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_yaml_changes_matter() {
        let write = EventKind::Modify(ModifyKind::Any);
        assert!(matters(&event(write, "/d/users/a.yaml")));
        assert!(matters(&event(write, "/d/scimctl.YML")));
        assert!(matters(&event(
            EventKind::Create(CreateKind::File),
            "/d/b.yaml"
        )));
        assert!(!matters(&event(write, "/d/users/.a.yaml.swp")));
        assert!(!matters(&event(write, "/d/users/a.yaml~")));
        assert!(!matters(&event(write, "/d/4913")));
        assert!(!matters(&event(
            EventKind::Access(notify::event::AccessKind::Any),
            "/d/a.yaml"
        )));
    }

    fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    /// git-sync's swap: a new symlink renamed over the old one.
    fn swap_link(link: &Path, target: &str) {
        let tmp = link.with_file_name("tmp-link");
        symlink(target, &tmp);
        std::fs::rename(&tmp, link).unwrap();
    }

    fn identity(real: &str, ino: u64) -> Identity {
        Identity {
            real: PathBuf::from(real),
            dev: 1,
            ino,
            born: None,
        }
    }

    #[test]
    fn decide_rearms_on_a_new_directory_or_a_replaced_name() {
        let a = identity("/r/a", 1);
        let b = identity("/r/b", 2);
        let gone = || Err(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(decide(Some(&a), Ok(a.clone()), false), Decision::Keep);
        assert_eq!(
            decide(Some(&a), Ok(b.clone()), false),
            Decision::Rearm(b.clone())
        );
        // Same path, another inode: deleted and recreated.
        let a2 = identity("/r/a", 3);
        assert_eq!(decide(Some(&a), Ok(a2.clone()), false), Decision::Rearm(a2));
        // A watched name was replaced: re-arm even if the identity looks the same.
        assert_eq!(
            decide(Some(&a), Ok(a.clone()), true),
            Decision::Rearm(a.clone())
        );
        assert_eq!(decide(Some(&a), gone(), false), Decision::Lost);
        assert_eq!(decide(None, gone(), true), Decision::Keep);
        assert_eq!(decide(None, Ok(b.clone()), false), Decision::Rearm(b));
    }

    #[test]
    fn identity_follows_a_symlink_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("rev-a")).unwrap();
        std::fs::create_dir(root.join("rev-b")).unwrap();
        symlink("rev-a", root.join("current"));
        let before = Identity::of(&root.join("current")).unwrap();
        assert_eq!(before.real, root.join("rev-a"));
        swap_link(&root.join("current"), "rev-b");
        let after = Identity::of(&root.join("current")).unwrap();
        assert_eq!(after.real, root.join("rev-b"));
        assert_eq!(
            decide(Some(&before), Ok(after.clone()), false),
            Decision::Rearm(after)
        );
    }

    #[test]
    fn a_recreated_directory_is_another_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("desired");
        std::fs::create_dir(&dir).unwrap();
        let before = Identity::of(&dir).unwrap();
        // Moved away and recreated: the old inode is still in use, so the new one differs.
        std::fs::rename(&dir, tmp.path().join("old")).unwrap();
        assert!(Identity::of(&dir).is_err());
        std::fs::create_dir(&dir).unwrap();
        let after = Identity::of(&dir).unwrap();
        assert_eq!(before.real, after.real);
        assert_ne!(before, after);
        // A file where the directory was is not a directory to watch.
        std::fs::remove_dir(&dir).unwrap();
        std::fs::write(&dir, "x").unwrap();
        assert!(Identity::of(&dir).is_err());
    }

    #[test]
    fn anchors_are_the_path_and_the_symlinks_on_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("rev-a/desired")).unwrap();
        symlink("rev-a", root.join("current"));
        let found = anchors(&root.join("current/desired"));
        assert_eq!(
            found,
            vec![root.join("current"), root.join("current/desired")]
        );
        // A symlink as the last component counts once.
        assert_eq!(anchors(&root.join("current")), vec![root.join("current")]);
        // Relative paths are made absolute against the working directory.
        let relative = anchors(Path::new("some-dir"));
        assert_eq!(
            relative,
            vec![std::env::current_dir().unwrap().join("some-dir")]
        );
    }

    #[test]
    fn reads_do_not_look_like_a_swap() {
        use notify::event::{AccessKind, RemoveKind, RenameMode};
        assert!(!replaces(&event(
            EventKind::Access(AccessKind::Any),
            "/p/desired"
        )));
        assert!(!replaces(&event(
            EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
            "/p/desired"
        )));
        assert!(replaces(&event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            "/p/current"
        )));
        assert!(replaces(&event(
            EventKind::Remove(RemoveKind::Folder),
            "/p/desired"
        )));
        assert!(touches_root(
            &event(EventKind::Remove(RemoveKind::Folder), "/p/desired"),
            Path::new("/p/desired")
        ));
        assert!(!touches_root(
            &event(EventKind::Remove(RemoveKind::File), "/p/desired/a.yaml"),
            Path::new("/p/desired")
        ));
    }

    /// The `ConfigMap` `..data` link is hidden, so only [`swaps_symlink`] sees it renamed.
    #[test]
    fn a_renamed_symlink_counts_even_when_hidden() {
        use notify::event::RenameMode;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir(dir.join("..2026_12_04_b")).unwrap();
        symlink("..2026_12_04_b", dir.join("..data"));
        let renamed = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            dir.join("..data").to_str().unwrap(),
        );
        assert!(!matters(&renamed));
        assert!(swaps_symlink(&renamed));
        let plain = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            dir.join("..2026_12_04_b").to_str().unwrap(),
        );
        assert!(!swaps_symlink(&plain));
    }

    /// The next event within `limit` (real file events arrive on their own time).
    async fn next_event(rx: &mut mpsc::UnboundedReceiver<()>, what: &str) {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no event after {what}"))
            .expect("the watcher is alive");
    }

    /// Swallows the events of one step, so the next assertion sees only the next step's.
    async fn drain(rx: &mut mpsc::UnboundedReceiver<()>) {
        assert!(settle(rx, Duration::from_millis(300)).await);
    }

    /// Without the re-arm, nothing is heard after the swap: the old watch stays on rev-a.
    #[tokio::test]
    async fn a_symlink_swap_rearms_the_watch() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("rev-a")).unwrap();
        std::fs::create_dir(root.join("rev-b")).unwrap();
        std::fs::write(root.join("rev-b/org.yaml"), "users: []\n").unwrap();
        symlink("rev-a", root.join("current"));
        let (_watching, mut rx) = watch(&root.join("current")).unwrap();

        swap_link(&root.join("current"), "rev-b");
        next_event(&mut rx, "the swap").await;
        drain(&mut rx).await;
        std::fs::write(root.join("rev-b/org.yaml"), "users: [] # edited\n").unwrap();
        next_event(&mut rx, "an edit in the new target").await;
        drain(&mut rx).await;
        // The old target is no longer watched.
        std::fs::write(root.join("rev-a/org.yaml"), "users: []\n").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), rx.recv())
                .await
                .is_err(),
            "an edit in the old target still counts"
        );
    }

    /// Deleted, missing for a while (no event, no end), recreated: watched again.
    #[tokio::test]
    async fn a_deleted_and_recreated_directory_is_watched_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("desired");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("org.yaml"), "users: []\n").unwrap();
        let (_watching, mut rx) = watch(&dir).unwrap();

        std::fs::remove_dir_all(&dir).unwrap();
        next_event(&mut rx, "the removal").await;
        drain(&mut rx).await;
        // Missing across a few periodic checks: no events, and the channel stays open.
        assert!(
            tokio::time::timeout(RECHECK * 2, rx.recv()).await.is_err(),
            "a missing directory reports nothing"
        );
        std::fs::create_dir(&dir).unwrap();
        next_event(&mut rx, "the directory coming back").await;
        drain(&mut rx).await;
        std::fs::write(dir.join("org.yaml"), "users: [] # edited\n").unwrap();
        next_event(&mut rx, "an edit in the recreated directory").await;
    }

    /// A burst of events counts once: settle returns only after a quiet period.
    #[tokio::test(start_paused = true)]
    async fn a_burst_settles_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let start = tokio::time::Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..5 {
                tx.send(()).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tx
        });
        assert!(settle(&mut rx, Duration::from_millis(100)).await);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(400),
            "{waited:?}"
        );
        drop(sender.await.unwrap());
        assert!(
            !settle(&mut rx, Duration::from_millis(100)).await,
            "the watcher is gone"
        );
    }
}
