//! `/Bulk` (issue 21): the real binary against `scimctl sandbox serve`, which announces Bulk
//! by default, with its request log read to see what went over the wire.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::quirks::{Server, TOKEN, converges, run, serve};
use crate::support::copy_example;

/// The request log of a server started with `--request-log`: one JSON object per request.
fn requests(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("requests.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn is_bulk(entry: &Value) -> bool {
    entry["method"] == "POST" && entry["path"].as_str().is_some_and(|p| p.ends_with("/Bulk"))
}

/// Writes other than Bulk requests: POST to a collection, PUT, PATCH, DELETE.
fn single_writes(log: &[Value]) -> usize {
    log.iter()
        .filter(|e| {
            let path = e["path"].as_str().unwrap_or("");
            match e["method"].as_str().unwrap_or("") {
                "POST" => path.ends_with("/Users") || path.ends_with("/Groups"),
                "PUT" | "PATCH" | "DELETE" => true,
                _ => false,
            }
        })
        .count()
}

/// How many operations each Bulk request carried (the log keeps the body's shape).
fn bulk_sizes(log: &[Value]) -> Vec<usize> {
    log.iter()
        .filter(|e| is_bulk(e))
        .map(|e| e["body"]["Operations"].as_array().map_or(0, Vec::len))
        .collect()
}

/// The example org's writes: 48 objects, and one member link for the group nested in a new
/// group (groups may nest in cycles, so a new group's new subgroups are linked afterwards).
const EXAMPLE_WRITES: usize = 49;

fn serve_logged(dir: &Path, extra: &[&str]) -> Server {
    let log = dir.join("requests.log");
    let mut flags = vec!["--request-log", log.to_str().unwrap()];
    flags.extend_from_slice(extra);
    serve(dir, &[], &flags)
}

/// The example org goes out in a few Bulk requests, no write alone, and converges; with
/// `--no-bulk` every write goes alone.
#[test]
fn the_example_org_is_written_in_bulk_and_converges() {
    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("desired-state"));
    let server = serve_logged(cwd.path(), &[]);
    converges(cwd.path(), &server, "desired-state");
    let log = requests(cwd.path());
    let sizes = bulk_sizes(&log);
    assert_eq!(single_writes(&log), 0, "{log:#?}");
    // Users before the users they name as manager, groups after their members: a few
    // requests, in the order of the dependencies.
    assert!(sizes.len() >= 2 && sizes.len() <= 6, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), EXAMPLE_WRITES, "{sizes:?}");
    assert!(log.iter().all(|e| e["status"].as_u64() != Some(413)));

    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("desired-state"));
    let server = serve_logged(cwd.path(), &[]);
    let (code, out, err) = run(
        cwd.path(),
        &server,
        &["apply", "desired-state", "--yes", "--no-bulk"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let log = requests(cwd.path());
    assert!(bulk_sizes(&log).is_empty(), "--no-bulk sent Bulk requests");
    assert_eq!(single_writes(&log), EXAMPLE_WRITES);
}

/// A server that does not announce Bulk gets single writes, whatever it would answer.
#[test]
fn a_server_without_bulk_gets_single_writes() {
    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("desired-state"));
    let server = serve_logged(cwd.path(), &["--no-bulk"]);
    converges(cwd.path(), &server, "desired-state");
    let log = requests(cwd.path());
    assert!(bulk_sizes(&log).is_empty());
    assert_eq!(single_writes(&log), EXAMPLE_WRITES);
}

/// maxOperations and maxPayloadSize are kept: no request is refused 413, none carries more
/// operations than allowed, and the payload limit (4 KiB: a few users) cuts requests short
/// of the operation limit.
#[test]
fn the_servers_limits_are_kept() {
    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("desired-state"));
    let server = serve_logged(
        cwd.path(),
        &["--bulk-max-operations", "7", "--bulk-max-payload", "4096"],
    );
    converges(cwd.path(), &server, "desired-state");
    let log = requests(cwd.path());
    let sizes = bulk_sizes(&log);
    assert!(
        log.iter().all(|e| e["status"].as_u64() != Some(413)),
        "{sizes:?}"
    );
    assert!(sizes.iter().all(|&n| (1..=7).contains(&n)), "{sizes:?}");
    assert!(
        sizes.iter().any(|&n| n < 7) && sizes.len() >= 48 / 7,
        "{sizes:?}"
    );
    assert_eq!(single_writes(&log), 0);
}

/// Changes the title of every user in `file` to `title`.
fn retitle(dir: &Path, file: &str, title: &str) {
    let path = dir.join("desired-state/users").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|l| match l.split_once("title: ") {
            Some((indent, _)) => format!("{indent}title: {title}"),
            None => l.to_owned(),
        })
        .collect();
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

/// A saved plan applied after the tenant moved, through Bulk: a user the plan creates was
/// made by hand since (apply's fresh read turns the create into a patch of it), and a user
/// the plan patches was changed since (its operation in the Bulk request is answered 412,
/// re-read, merged and sent again). The engine-level test
/// `apply::tests::conflicts_inside_bulk_requests_take_the_single_request_paths` covers a
/// create answered 409 inside a Bulk request.
#[tokio::test]
async fn a_saved_plan_meeting_moved_objects_converges_in_bulk() {
    use scimctl::scim::wire::User;

    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("desired-state"));
    let server = serve_logged(cwd.path(), &[]);
    let client = crate::support::bearer_client(&server.url, TOKEN, None);
    // Everyone but Zoe exists; then a saved plan that creates Zoe and retitles the agents.
    let zoe = "zoe.walsh@northwind.example";
    let users = cwd.path().join("desired-state/users");
    let support = std::fs::read_to_string(users.join("agents-support.yaml")).unwrap();
    assert!(support.contains(zoe), "the example org has {zoe}");
    converges(cwd.path(), &server, "desired-state");
    let live = client.find_by_key::<User>(zoe).await.unwrap().expect("zoe");
    client
        .delete(
            scimctl::model::Kind::User,
            live.id.as_deref().unwrap(),
            None,
        )
        .await
        .unwrap();
    retitle(
        cwd.path(),
        "agents-sales-billing.yaml",
        "Senior Sales Agent",
    );
    let (code, out, err) = run(
        cwd.path(),
        &server,
        &["plan", "desired-state", "--out", "plan.json"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(zoe) && out.contains("Senior Sales Agent"),
        "{out}"
    );

    // Behind the plan's back: Zoe is made by hand, and Carlos's display name changed.
    let mut hand: User = serde_json::from_value(serde_json::json!({
        "userName": zoe, "displayName": "Zoe (by hand)", "active": true,
    }))
    .unwrap();
    hand = hand.with_schemas();
    client.create(&hand).await.unwrap();
    let carlos = client
        .find_by_key::<User>("carlos.ruiz@northwind.example")
        .await
        .unwrap()
        .expect("carlos");
    let op = scimctl::scim::PatchOperation {
        op: scimctl::scim::wire::PatchOpKind::Replace,
        path: Some("nickName".into()),
        value: Some("Charlie".into()),
    };
    client
        .patch::<User>(carlos.id.as_deref().unwrap(), None, &[op])
        .await
        .unwrap();

    let before = requests(cwd.path()).len();
    let (code, out, err) = run(
        cwd.path(),
        &server,
        &["apply", "desired-state", "--plan", "plan.json", "--yes"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let log = requests(cwd.path());
    assert!(
        bulk_sizes(&log[before..]).iter().sum::<usize>() >= 2,
        "{out}"
    );
    // The result lines, which start with the outcome.
    let result_line = |key: &str| {
        out.lines()
            .find(|l| l.contains(key) && l.starts_with(|c: char| c.is_ascii_lowercase()))
            .unwrap_or_else(|| panic!("no line for {key}:\n{out}"))
            .to_owned()
    };
    assert!(result_line(zoe).starts_with("done"), "{out}");
    assert!(result_line("carlos.ruiz").starts_with("merged"), "{out}");
    // One Zoe, with the desired state's values; Carlos retitled over the hand-made change.
    let zoes = client.find_all_by_key::<User>(zoe).await.unwrap();
    assert_eq!(zoes.len(), 1);
    assert_eq!(zoes[0].display_name.as_deref(), Some("Zoe Walsh"));
    let carlos: User = client.get(carlos.id.as_deref().unwrap()).await.unwrap();
    assert_eq!(carlos.title.as_deref(), Some("Senior Sales Agent"));
    let (code, plan, _) = run(
        cwd.path(),
        &server,
        &["plan", "desired-state", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{plan}");
}

/// Bulk requests that fail as a whole are sent again without duplicating a create (the
/// splitting itself, after a 413 or a failure as a whole, is covered by `scim::bulk`'s unit
/// tests): 30 % of requests are answered 502 before anything is done (a Bulk request with
/// its outcome unknown; reads are retried), or a quarter of the writes are carried out and
/// their answer lost.
#[test]
fn bulk_requests_failing_whole_are_retried_without_twins() {
    for (flags, what) in [
        (
            &[
                "--error-rate",
                "0.3",
                "--error-status",
                "502",
                "--seed",
                "7",
            ][..],
            "502 before acting",
        ),
        (
            &["--drop-after-rate", "0.25", "--seed", "3"][..],
            "answer lost after acting",
        ),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        copy_example(&cwd.path().join("desired-state"));
        let server = serve_logged(cwd.path(), flags);
        let output = converges(cwd.path(), &server, "desired-state");
        let log = requests(cwd.path());
        let failed = log
            .iter()
            .filter(|e| is_bulk(e) && e["status"].as_u64() == Some(502))
            .count();
        let answered = log
            .iter()
            .filter(|e| is_bulk(e) && e["status"].as_u64() == Some(200))
            .count();
        assert!(answered >= 2, "{what}: {log:#?}\n{output}");
        if what.starts_with("502") {
            assert!(failed >= 1, "{what}: no Bulk request failed: {log:#?}");
        }
        assert_no_twins(cwd.path(), &server);
    }
}

/// Every userName and group displayName on the server is there once.
fn assert_no_twins(cwd: &Path, server: &Server) {
    let (code, out, err) = run(cwd, server, &["export", "--out", "exported", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let all = crate::quirks::read_all(&cwd.join("exported"));
    for key in ["userName: ", "displayName: "] {
        let mut seen = std::collections::HashSet::new();
        for line in all.lines().filter(|l| l.trim_start().starts_with(key)) {
            assert!(seen.insert(line.trim().to_owned()), "twice: {line}");
        }
    }
}

/// `kill -9` of apply while a Bulk request is on its way (the server takes 400 ms to answer
/// each request; the kill comes as the first write is announced, right before the first
/// Bulk request goes out): the rerun converges, with no object made twice.
/// (`audit_crash` kills apply at other points, through Bulk too, and checks the audit log.)
#[test]
fn a_kill_mid_bulk_is_followed_by_a_converging_rerun() {
    use std::io::BufRead as _;
    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("desired-state"));
    let server = serve_logged(cwd.path(), &["--latency-ms", "400"]);
    let mut child = crate::support::scimctl()
        .current_dir(cwd.path())
        .args(["apply", "desired-state", "--yes", "--target", &server.url])
        .env("SCIMCTL_TOKEN", TOKEN)
        .env("SCIMCTL_LOG", "scimctl=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut killed = false;
    for line in stderr.lines() {
        if !killed && line.unwrap().contains("step recorded") {
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "apply ended before it wrote"
    );
    converges(cwd.path(), &server, "desired-state");
    assert_no_twins(cwd.path(), &server);
}
