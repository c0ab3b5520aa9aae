//! `scimctl watch` keeps hearing file changes after the desired-state directory is replaced:
//! (a) deleted and recreated, (b) git-sync's symlink swap `current -> rev-X`, (c) a
//! Kubernetes `ConfigMap` volume's `..data` swap. Each layout is swapped one way and back; the
//! swap itself is reconciled, and an edit made afterwards reaches the tenant within 2 s.
//!
//! The drift timer is an hour, so only file events can apply anything. Progress is awaited
//! on watch's log lines with a deadline; nothing sleeps.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use scimctl::scim::ScimClient;
use scimctl::scim::wire::User;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::support::bearer_client;
use crate::support::watch::{Spawned, WatchArgs, spawn_watch};

const LIMIT: Duration = Duration::from_secs(30);
/// The promise: an edit after a swap is applied within this.
const PROMPT: Duration = Duration::from_secs(2);

/// A running `scimctl watch` whose stderr lines arrive on a channel.
struct Watch {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(cwd: &Path, dir: &Path, url: &str, token: &str) -> Watch {
        let (tx, lines) = mpsc::unbounded_channel();
        let Spawned { child, .. } = spawn_watch(
            &WatchArgs {
                cwd,
                dir,
                url,
                token: Some(token),
                log: "scimctl=info",
                extra: &["--interval", "1h"],
                env: &[],
            },
            move |line| tx.send(line).is_ok(),
        );
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next log line for which `want` holds, before `deadline`.
    async fn wait_for(
        &mut self,
        what: &str,
        deadline: Instant,
        want: impl Fn(&str) -> bool,
    ) -> String {
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Ok(None) => panic!("watch ended before {what}:\n{}", self.seen.join("\n")),
                Err(elapsed) => panic!("no {what} in time ({elapsed}):\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits (reconcile by reconcile, until `deadline`) for `name`'s title on the tenant to
    /// be `want`.
    async fn until_title(
        &mut self,
        client: &ScimClient,
        name: &str,
        want: &str,
        deadline: Instant,
    ) {
        while title_of(client, name).await.as_deref() != Some(want) {
            self.wait_for(&format!("{name}'s title {want:?}"), deadline, |l| {
                l.contains(" reconciled ")
            })
            .await;
        }
    }

    /// The first reconcile, which must have applied the two users and the group once each
    /// (a file counted twice would be a duplicate and fail validation).
    async fn started(&mut self) {
        let line = self
            .wait_for("the start reconcile", Instant::now() + LIMIT, |l| {
                l.contains(" reconciled ") && l.contains("trigger=\"start\"")
            })
            .await;
        assert!(
            line.contains("drift=3") && line.contains("applied=3"),
            "{line}"
        );
    }

    /// After a swap to a tree where ana is `swapped`: the swap is reconciled (no edit, no
    /// timer needed), and then an edit of bo is applied within [`PROMPT`].
    async fn swapped_then_edited(
        &mut self,
        client: &ScimClient,
        swapped: &str,
        edit: impl FnOnce(),
        edited: &str,
    ) {
        self.until_title(client, "ana", swapped, Instant::now() + LIMIT)
            .await;
        let edited_at = Instant::now();
        edit();
        self.until_title(client, "bo", edited, Instant::now() + LIMIT)
            .await;
        let took = edited_at.elapsed();
        assert!(
            took <= PROMPT,
            "the edit took {took:?}:\n{}",
            self.seen.join("\n")
        );
        assert!(
            !self.seen.iter().any(|l| l.contains("trigger=\"resync\"")),
            "the drift timer applied it:\n{}",
            self.seen.join("\n")
        );
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn org(ana: &str, bo: &str) -> String {
    let mut yaml = String::from("users:\n");
    for (name, title) in [("ana", ana), ("bo", bo)] {
        let _ = write!(yaml, "  - userName: {name}@s.example\n    title: {title}\n");
    }
    yaml.push_str("groups:\n  - displayName: Swappers\n    members: [ana@s.example]\n");
    yaml
}

async fn title_of(client: &ScimClient, name: &str) -> Option<String> {
    let user: Option<User> = client
        .find_by_key(&format!("{name}@s.example"))
        .await
        .unwrap();
    user.and_then(|u| u.title)
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// An atomic symlink swap, as git-sync and the kubelet do it: a new link renamed over the
/// old one.
fn swap_link(link: &Path, target: &str) {
    let tmp = link.with_file_name(format!(
        "{}_tmp",
        link.file_name().unwrap().to_string_lossy()
    ));
    symlink(target, &tmp);
    std::fs::rename(&tmp, link).unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// (a) `rm -rf` and `mkdir` under the same name, twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_recreated_directory_is_watched_again() {
    let token = "swap-a-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = bearer_client(&running.base_url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir(&dir).unwrap();
    write(&dir.join("org.yaml"), &org("Agent", "Agent"));
    let mut watch = Watch::start(tmp.path(), &dir, &running.base_url, token);
    watch.started().await;

    for (round, swapped) in [(1, "Swapped"), (2, "Swapped Back")] {
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        write(&dir.join("org.yaml"), &org(swapped, "Agent"));
        let edited = format!("Edited {round}");
        watch
            .swapped_then_edited(
                &client,
                swapped,
                || write(&dir.join("org.yaml"), &org(swapped, &edited)),
                &edited,
            )
            .await;
    }
    assert!(
        watch
            .seen
            .iter()
            .any(|l| l.contains("the desired-state directory was replaced")),
        "{}",
        watch.seen.join("\n")
    );
}

/// (b) git-sync: `desired -> rev-a` swapped to `rev-b` and back by renaming a new symlink
/// over it; edits go into the tree the link now leads to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_sync_symlink_swap_is_followed_both_ways() {
    let token = "swap-b-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = bearer_client(&running.base_url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir(root.join("rev-a")).unwrap();
    std::fs::create_dir(root.join("rev-b")).unwrap();
    write(&root.join("rev-a/org.yaml"), &org("Agent", "Agent"));
    write(&root.join("rev-b/org.yaml"), &org("Swapped", "Agent"));
    let link = root.join("desired");
    symlink("rev-a", &link);
    let mut watch = Watch::start(root, &link, &running.base_url, token);
    watch.started().await;

    // Forth: to rev-b, then an edit there.
    swap_link(&link, "rev-b");
    watch
        .swapped_then_edited(
            &client,
            "Swapped",
            || write(&root.join("rev-b/org.yaml"), &org("Swapped", "Edited 1")),
            "Edited 1",
        )
        .await;

    // Back: to rev-a (rewritten meanwhile, as git-sync reuses a worktree), then an edit.
    write(
        &root.join("rev-a/org.yaml"),
        &org("Swapped Back", "Edited 1"),
    );
    swap_link(&link, "rev-a");
    watch
        .swapped_then_edited(
            &client,
            "Swapped Back",
            || write(&link.join("org.yaml"), &org("Swapped Back", "Edited 2")),
            "Edited 2",
        )
        .await;
}

/// (c) A `ConfigMap` volume: `org.yaml -> ..data/org.yaml`, `..data -> ..<timestamp>`, and the
/// kubelet swaps `..data` by renaming a new link over it. Discovery reads the file once
/// (the hidden `..data` and timestamp directories are skipped, the visible link followed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_data_swap_is_followed_both_ways() {
    let token = "swap-c-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = bearer_client(&running.base_url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    let (first, second) = ("..2026_12_04_05_00_00.1", "..2026_12_04_05_10_00.2");
    std::fs::create_dir_all(dir.join(first)).unwrap();
    write(&dir.join(first).join("org.yaml"), &org("Agent", "Agent"));
    symlink(first, dir.join("..data"));
    symlink("..data/org.yaml", dir.join("org.yaml"));
    let mut watch = Watch::start(tmp.path(), &dir, &running.base_url, token);
    watch.started().await;

    // Forth: the kubelet writes a new timestamped directory and swaps `..data` to it.
    std::fs::create_dir(dir.join(second)).unwrap();
    write(&dir.join(second).join("org.yaml"), &org("Swapped", "Agent"));
    swap_link(&dir.join("..data"), second);
    watch
        .swapped_then_edited(
            &client,
            "Swapped",
            || write(&dir.join("org.yaml"), &org("Swapped", "Edited 1")),
            "Edited 1",
        )
        .await;

    // Back to the first directory (rewritten), then an edit through the visible link.
    write(
        &dir.join(first).join("org.yaml"),
        &org("Swapped Back", "Edited 1"),
    );
    swap_link(&dir.join("..data"), first);
    watch
        .swapped_then_edited(
            &client,
            "Swapped Back",
            || write(&dir.join("org.yaml"), &org("Swapped Back", "Edited 2")),
            "Edited 2",
        )
        .await;
}
