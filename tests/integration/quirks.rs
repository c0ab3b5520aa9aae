//! Interop (issue 21): the real binary against `scimctl sandbox serve --quirk NAME`, each
//! quirk a legal or common behaviour of another SCIM server that scimctl must cope with.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use crate::support::{run_bounded_with, scimctl, text};

pub(crate) const TOKEN: &str = "quirks-token-2b7e1f0c";
const TOKEN_ENV: &str = "SCIMCTL_TEST_QUIRKS_TOKEN";

/// A `scimctl sandbox serve` child with quirks, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub(crate) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Serves a memory-only sandbox (its state in `dir`) with `--quirk` for each of `quirks`
/// and the `extra` flags.
pub(crate) fn serve(dir: &Path, quirks: &[&str], extra: &[&str]) -> Server {
    let mut command = scimctl();
    command
        .args(["sandbox", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.join("sandbox.json"))
        .args(["--token-env", TOKEN_ENV])
        .args(extra);
    for quirk in quirks {
        command.args(["--quirk", quirk]);
    }
    let mut child = command
        .env(TOKEN_ENV, TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scimctl sandbox serve");
    let (stdout, url) = crate::support::served_url(&mut child);
    Server {
        child,
        _stdout: stdout,
        url,
    }
}

/// Runs `scimctl args... --target URL` in `cwd` with the token; (exit code, stdout, stderr).
pub(crate) fn run(cwd: &Path, server: &Server, args: &[&str]) -> (i32, String, String) {
    run_with_token(cwd, server, args, TOKEN)
}

fn run_with_token(
    cwd: &Path,
    server: &Server,
    args: &[&str],
    token: &str,
) -> (i32, String, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--target", server.url.as_str()]);
    let output = run_bounded_with(
        cwd,
        &all,
        &[
            ("SCIMCTL_TOKEN", token),
            (
                "SCIMCTL_DEMO_BREAKGLASS_PASSWORD",
                crate::support::DEMO_PASSWORD,
            ),
        ],
        Duration::from_secs(120),
    );
    let (out, err) = text(&output);
    (output.status.code().unwrap_or(-1), out, err)
}

/// Writes `org/org.yaml` in `cwd`.
fn org(cwd: &Path, yaml: &str) {
    std::fs::create_dir_all(cwd.join("org")).unwrap();
    std::fs::write(cwd.join("org/org.yaml"), yaml).unwrap();
}

/// Every file under `dir`, concatenated.
pub(crate) fn read_all(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push_str(&read_all(&path));
        } else {
            let mut text = String::new();
            std::fs::File::open(&path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            out.push_str(&text);
        }
    }
    out
}

/// Apply, then a plan that must find nothing to do.
pub(crate) fn converges(cwd: &Path, server: &Server, dir: &str) -> String {
    converges_with(cwd, server, dir, &[])
}

/// [`converges`], with `extra` flags for apply.
fn converges_with(cwd: &Path, server: &Server, dir: &str, extra: &[&str]) -> String {
    let mut args = vec!["apply", dir, "--yes"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(cwd, server, &args);
    assert_eq!(code, 0, "apply: {out}\n{err}");
    let (code, plan, err2) = run(cwd, server, &["plan", dir, "--detailed-exitcode"]);
    assert_eq!(
        code, 0,
        "second plan not empty:\n{plan}\n{err2}\n(apply said:\n{out}\n{err})"
    );
    format!("{out}{err}{err2}")
}

/// `no-common-attributes`: `/Schemas` leaves out `externalId` (RFC 7643 §3.1 common
/// attribute). scimctl still writes it, matches by it, and exports it.
#[test]
fn common_attributes_are_always_supported() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["no-common-attributes"], &[]);
    org(
        cwd.path(),
        "users:
  - userName: ana@quirks.example
    externalId: hr-0001
groups:
  - displayName: Quirky
    externalId: grp-0001
    members: [ana@quirks.example]
",
    );
    let said = converges(cwd.path(), &server, "org");
    assert!(!said.contains("not supported"), "{said}");
    let (code, out, err) = run(cwd.path(), &server, &["export", "--out", "exported"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let exported = read_all(&cwd.path().join("exported"));
    assert!(exported.contains("hr-0001"), "{exported}");
    assert!(exported.contains("grp-0001"), "{exported}");
}

/// `no-email-type`: the server keeps no email `type` and its `/Schemas` does not list it.
/// A typed email in YAML is not planned as a remove-and-add of the same address forever.
#[test]
fn an_email_type_the_server_does_not_store_is_not_compared() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["no-email-type"], &[]);
    org(
        cwd.path(),
        "users:
  - userName: bo@quirks.example
    emails: [{value: bo@quirks.example, type: work, primary: true}]
",
    );
    converges(cwd.path(), &server, "org");
}

/// `no-filter`: `filter.supported` is false and every `filter=` is refused. A create whose
/// answer is lost (the connection dropped after the server acted) is looked up by listing
/// and matching locally, not by a filter, and the run converges without a duplicate.
#[test]
fn lookups_list_and_match_where_the_server_does_not_filter() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["no-filter"], &["--drop-after-rate", "1"]);
    org(
        cwd.path(),
        "users:
  - userName: di@quirks.example
  - userName: ed@quirks.example
",
    );
    let (code, out, err) = run(cwd.path(), &server, &["apply", "org", "--yes"]);
    assert_eq!(code, 0, "apply: {out}\n{err}");
    drop(server);
    let server = serve(cwd.path(), &["no-filter"], &[]);
    let (code, plan, err) = run(cwd.path(), &server, &["plan", "org", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{plan}\n{err}");
}

/// `doctor --target URL` needs no desired-state directory, and says that the server does
/// not filter and what scimctl does instead.
#[test]
fn doctor_says_the_server_does_not_filter() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["no-filter"], &[]);
    let (code, out, err) = run(cwd.path(), &server, &["doctor"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("filter no"), "{out}");
    assert!(out.contains("list and match locally"), "{out}");
}

/// A 401 from `--target` names `SCIMCTL_TOKEN`, the variable the token came from.
#[test]
fn a_refused_token_names_its_variable() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &[], &[]);
    let (code, out, err) = run_with_token(cwd.path(), &server, &["doctor"], "wrong-token");
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("SCIMCTL_TOKEN"),
        "{out}\n{err}"
    );
}

/// `drop-group-members-on-create`: a group create is answered 201 without its members.
/// scimctl warns, adds them at once, and the run converges (the second plan is empty).
#[test]
fn members_a_group_create_dropped_are_added_in_the_same_run() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["drop-group-members-on-create"], &[]);
    org(
        cwd.path(),
        "users:
  - userName: fa@quirks.example
  - userName: gu@quirks.example
",
    );
    converges(cwd.path(), &server, "org");
    // The users exist now, so they ride in the group's create.
    org(
        cwd.path(),
        "users:
  - userName: fa@quirks.example
  - userName: gu@quirks.example
groups:
  - displayName: Dropped
    members: [fa@quirks.example, gu@quirks.example]
",
    );
    let said = converges(cwd.path(), &server, "org");
    assert!(
        said.contains("without the members it was sent"),
        "no warning: {said}"
    );
}

/// A 501 with an empty detail (the `no-filter` sandbox refusing a filter) says what the
/// request used that the server may not implement, without the filter's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_501_says_what_was_refused() {
    use scimctl::sandbox::{self, Quirk, Quirks, SandboxConfig};
    let running = sandbox::start(
        SandboxConfig::default().with_quirks(Quirks::new([Quirk::NoFilter])),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client =
        scimctl::scim::ScimClient::new(scimctl::scim::ClientConfig::new(running.base_url.clone()))
            .unwrap();
    let refused = client
        .list_page::<scimctl::scim::wire::User>(1, 10, Some("userName eq \"secret@x.example\""))
        .await
        .expect_err("the filter is refused");
    let said = refused.to_string();
    assert!(said.contains("501"), "{said}");
    assert!(said.contains("the request used: filter"), "{said}");
    assert!(!said.contains("secret@x.example"), "{said}");
    running.shutdown().await.unwrap();
}

/// The example org converges against a sandbox with every quirk on at once: apply, then the
/// second plan is empty.
#[test]
fn the_example_org_converges_with_every_quirk() {
    let cwd = tempfile::tempdir().unwrap();
    let quirks = [
        "no-common-attributes",
        "no-filter",
        "no-email-type",
        "drop-group-members-on-create",
        "integer-ids",
        "no-value-filter-patch",
    ];
    let server = serve(cwd.path(), &quirks, &[]);
    let example = cwd.path().join("desired-state");
    crate::support::copy_example(&example);
    converges(cwd.path(), &server, "desired-state");
    // Then changes that need PATCHes: a member dropped from a group, a work email changed.
    let groups = example.join("groups.yaml");
    let text = std::fs::read_to_string(&groups).unwrap();
    let member = "      - sam.okafor@northwind.example\n";
    assert!(
        text.contains(member),
        "the example org's Support group lists Sam"
    );
    std::fs::write(&groups, text.replace(member, "")).unwrap();
    let users = example.join("users/agents-support.yaml");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(
        &users,
        text.replace(
            "{value: zoe.walsh@northwind.example",
            "{value: zoe.w@northwind.example",
        ),
    )
    .unwrap();
    let said = converges(cwd.path(), &server, "desired-state");
    assert!(said.contains("value filter"), "{said}");
}

/// `no-value-filter-patch`: the server refuses `members[value eq "x"]` and
/// `emails[type eq "work"]` paths with 501 and rolls back the whole PATCH. scimctl sends the
/// same change again without them (member removals as one list, emails replaced whole),
/// keeps the request's other changes, warns once, and converges, in Bulk requests and alone.
#[test]
fn refused_value_filter_paths_are_sent_again_without_them() {
    for extra in [&[][..], &["--no-bulk"][..]] {
        let cwd = tempfile::tempdir().unwrap();
        let server = serve(cwd.path(), &["no-value-filter-patch"], &[]);
        org(
            cwd.path(),
            "users:
  - userName: ha@quirks.example
    title: Agent
    emails:
      - {value: ha@old.example, type: work, primary: true}
      - {value: ha@home.example, type: home}
  - userName: io@quirks.example
groups:
  - displayName: Pair
    members: [ha@quirks.example, io@quirks.example]
",
        );
        converges_with(cwd.path(), &server, "org", extra);
        org(
            cwd.path(),
            "users:
  - userName: ha@quirks.example
    title: Lead
    emails:
      - {value: ha@new.example, type: work, primary: true}
  - userName: io@quirks.example
groups:
  - displayName: Pair
    members: [ha@quirks.example]
",
        );
        let said = converges_with(cwd.path(), &server, "org", extra);
        assert_eq!(
            said.matches("refused a PATCH path with a value filter")
                .count(),
            1,
            "warned once: {said}"
        );
        let (code, out, err) = run(cwd.path(), &server, &["export", "--out", "exported"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let exported = read_all(&cwd.path().join("exported"));
        assert!(exported.contains("ha@new.example") && !exported.contains("ha@old.example"));
        assert!(!exported.contains("ha@home.example"), "{exported}");
        assert!(exported.contains("title: Lead"), "{exported}");
    }
}

/// `integer-ids`: user and group ids are per-type integers, so user 1 and group 1 both
/// exist. A group that holds user 1 where YAML wants group 1 (nested) is a change, not "No
/// changes"; the plan warns that ids are shared; apply converges.
#[test]
fn members_are_told_apart_by_type_when_ids_collide() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["integer-ids"], &[]);
    org(
        cwd.path(),
        "users:
  - userName: ana@quirks.example
groups:
  - displayName: Team
",
    );
    converges(cwd.path(), &server, "org");
    org(
        cwd.path(),
        "users:
  - userName: ana@quirks.example
groups:
  - displayName: Team
  - displayName: Outer
    members: [ana@quirks.example]
",
    );
    converges(cwd.path(), &server, "org");
    // Outer (group 2) holds user 1; YAML now wants group 1 (Team) instead.
    org(
        cwd.path(),
        "users:
  - userName: ana@quirks.example
groups:
  - displayName: Team
  - displayName: Outer
    members: [Team]
",
    );
    let (code, plan, err) = run(cwd.path(), &server, &["plan", "org", "--detailed-exitcode"]);
    assert_eq!(code, 2, "the member change is missed:\n{plan}\n{err}");
    assert!(plan.contains("Team"), "{plan}");
    assert!(plan.contains("ana@quirks.example"), "{plan}");
    assert!(
        format!("{plan}{err}").contains("not unique across resource types"),
        "no warning:\n{plan}\n{err}"
    );
    converges(cwd.path(), &server, "org");
    let (code, out, err) = run(cwd.path(), &server, &["export", "--out", "exported"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let exported = read_all(&cwd.path().join("exported"));
    assert!(!exported.contains("members: [ana"), "{exported}");
}

/// The example org converges on a server whose ids collide across resource types.
#[test]
fn the_example_org_converges_with_integer_ids() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &["integer-ids"], &[]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    converges(cwd.path(), &server, example.to_str().unwrap());
}
