//! File events: a `notify` watcher on the desired-state directory, reduced to "something
//! that matters changed", and the debounce that makes an editor's burst of writes, renames
//! and swap files count once.

use std::path::Path;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Watches `dir` recursively; every event that touches a YAML file sends `()` on the
/// returned channel. Keep the watcher alive for as long as events are wanted.
pub fn watch(dir: &Path) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if matters(&event) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watcher"),
        })?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    Ok((watcher, rx))
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
