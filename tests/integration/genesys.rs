//! The Genesys Cloud target end to end: the real binary against `sandbox serve --flavor
//! genesys` (OAuth with Basic auth, lower-case paths, no SCIM group POST/DELETE, the Platform
//! API subset, `invalidVers`, the 25-page rule, read-after-write lag), and the client on a
//! paused clock through a storm of 429s with `Retry-After: 30`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use scimctl::sandbox::{
    self, Faults, Flavor, GenesysOptions, RateLimit, RunningSandbox, SandboxAuth, SandboxConfig,
};
use scimctl::scim::wire::User;
use scimctl::scim::{
    ClientConfig, Credentials, Dialect, OAuthSettings, ScimClient, ScimRead, Secret,
};

use crate::support::{DEMO_PASSWORD, run_bounded_with, scimctl, text};

pub(crate) const CLIENT_ID: &str = "scimctl-genesys-tests";
pub(crate) const SECRET: &str = "genesys-secret-4b1d-do-not-print";

/// `sandbox serve --flavor genesys` on a free port, with a read lag and a request log; the
/// server is killed by PID when dropped.
pub(crate) struct Server {
    child: Child,
    /// The API (and login) origin.
    pub(crate) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// [`serve`] with `extra` arguments to `sandbox serve` (e.g. `--weak-etags`; a
/// `--read-lag-ms` there replaces the default 400).
pub(crate) fn serve_with(dir: &Path, extra: &[&str]) -> Server {
    let lag = if extra.contains(&"--read-lag-ms") {
        &[][..]
    } else {
        &["--read-lag-ms", "400"][..]
    };
    let mut child = scimctl()
        .args([
            "sandbox",
            "serve",
            "--flavor",
            "genesys",
            "--listen",
            "127.0.0.1:0",
            "--oauth-client-id",
            CLIENT_ID,
            "--oauth-secret-env",
            "GENESYS_TEST_SECRET",
            "--division",
            "Field Sales",
            "--requests-per-minute",
            "6000",
        ])
        .args(lag)
        .arg("--state")
        .arg(dir.join("state.json"))
        .arg("--request-log")
        .arg(dir.join("requests.log"))
        .args(extra)
        .env("GENESYS_TEST_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sandbox serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("sandbox printed its address");
    let at = line.find("http://").expect("an URL in the first line");
    let url = line[at..].split_whitespace().next().unwrap().to_owned();
    // The API host is the URL's origin; SCIM lives under /api/v2/scim/v2 on it.
    let origin = url.split("/api/").next().unwrap().to_owned();
    Server { child, url: origin }
}

/// The example org, pointed at the Genesys sandbox with explicit API and login URLs.
pub(crate) fn example_for(server: &Server, dir: &Path) -> std::path::PathBuf {
    let ds = dir.join("desired-state");
    // The break-glass password from the environment, so the request log is checked for a
    // secret that was sent.
    crate::support::copy_example_with_env_password(&ds);
    let config = std::fs::read_to_string(ds.join("scimctl.yaml")).unwrap();
    let target = format!(
        "target:\n  kind: genesys\n  apiUrl: {0}\n  loginUrl: {0}\n  clientId: {CLIENT_ID}\n  clientSecret: {{fromEnv: GENESYS_TEST_SECRET}}\n  requestsPerMinute: 6000\n",
        server.url
    );
    std::fs::write(ds.join("scimctl.yaml"), format!("{config}\n{target}")).unwrap();
    ds
}

pub(crate) fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = run_bounded_with(
        dir,
        args,
        &[
            ("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD),
            ("GENESYS_TEST_SECRET", SECRET),
            ("SCIMCTL_OVERRIDES", "overrides.json"),
        ],
        Duration::from_secs(180),
    );
    let (out, err) = text(&output);
    (output.status.code().unwrap_or(-1), out, err)
}

/// `apply` of the desired state `ds` with the example org's passwords; every operation
/// succeeds.
pub(crate) fn apply(dir: &Path, ds: &str) {
    let (code, out, err) = run(
        dir,
        &["apply", ds, "--yes", "--password-file", "passwords.txt"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
}

/// The plan of `ds` is empty (exit 0 under `--detailed-exitcode`, "No changes.").
pub(crate) fn assert_no_changes(dir: &Path, ds: &str) {
    let (code, out, err) = run(dir, &["plan", ds, "--detailed-exitcode"]);
    assert_eq!(code, 0, "the plan is empty:\n{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
}

/// Saves the plan of `ds`, which must hold `blocked` rows back, unblocks every row and
/// re-seals the file (as anyone who can write it can), and applies it with `apply --plan`:
/// refused with exit 4 before anything is written. Returns what the simulator's request log
/// gained meanwhile, for the caller to check.
pub(crate) fn apply_forged_plan(dir: &Path, ds: &str, blocked: usize) -> String {
    let saved = dir.join("saved.json");
    let (code, out, err) = run(dir, &["plan", ds, "--out", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let doc =
        scimctl::plan::saved::PlanDocument::from_json(&std::fs::read_to_string(&saved).unwrap())
            .unwrap();
    assert_eq!(doc.summary.blocked, blocked, "{out}");
    let path = dir.join("forged.json");
    let forged = crate::support::forge(&doc, |d| {
        d.changes.iter_mut().for_each(|c| c.blocked = None);
    });
    std::fs::write(&path, forged).unwrap();
    let log = dir.join("requests.log");
    let before = std::fs::read_to_string(&log).unwrap();
    let (code, out, err) = run(
        dir,
        &["apply", ds, "--plan", path.to_str().unwrap(), "--yes"],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("blocked by a safety rule; nothing was written"),
        "{err}"
    );
    let after = std::fs::read_to_string(&log).unwrap();
    after[before.len()..].to_owned()
}

/// A bearer token from the simulator at `origin`, for raw Platform calls.
pub(crate) async fn token(http: &reqwest::Client, origin: &str) -> String {
    let reply: Value = http
        .post(format!("{origin}/oauth/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["access_token"].as_str().unwrap().to_owned()
}

/// `GET url` with `bearer`, as JSON.
pub(crate) async fn get_json(http: &reqwest::Client, url: &str, bearer: &str) -> Value {
    http.get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The SCIM view of the user `user_name` at `origin`, through the filter Genesys documents.
pub(crate) async fn scim_user(
    http: &reqwest::Client,
    origin: &str,
    bearer: &str,
    user_name: &str,
) -> Value {
    let found: Value = http
        .get(format!("{origin}/api/v2/scim/v2/users"))
        .query(&[("filter", format!("userName eq \"{user_name}\""))])
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = found["Resources"][0].clone();
    assert!(user.is_object(), "no user {user_name}: {found}");
    user
}

/// A Genesys client configuration for the SCIM base `base_url` and token endpoint
/// `token_url`, with the tests' OAuth client and no request timeout (a paused clock would
/// fire it while the server works).
pub(crate) fn client_config(base_url: String, token_url: String) -> ClientConfig {
    let mut config = ClientConfig::new(base_url);
    config.dialect = Dialect::Genesys;
    config.credentials = Credentials::OAuth(OAuthSettings {
        token_url,
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(SECRET),
        scope: None,
    });
    config.timeout = None;
    config
}

/// Checks every line of the simulator's request log in `dir` with [`check_call`]; returns
/// how many requests there were and how many carried a body.
pub(crate) fn check_request_log(dir: &Path) -> (usize, usize) {
    let log = std::fs::read_to_string(dir.join("requests.log")).unwrap();
    let (mut requests, mut bodies) = (0, 0);
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        if let Err(e) = check_call(&entry) {
            panic!("{e}");
        }
        bodies += usize::from(entry.get("body").is_some());
        requests += 1;
    }
    (requests, bodies)
}

/// The calls scimctl may make, each documented in docs/genesys.md (§1, §2, §4, §5). Absent on
/// purpose: POST and DELETE of SCIM groups (removed in 2021) and the v2 group list without a
/// filter (required by the swagger).
const DOCUMENTED: &[(&str, &str)] = &[
    ("POST", "/oauth/token"),
    ("GET", "/api/v2/scim/v2/serviceproviderconfig"),
    ("GET", "/api/v2/scim/v2/schemas"),
    ("GET", "/api/v2/scim/v2/users"),
    ("GET", "/api/v2/scim/v2/users/{id}"),
    ("POST", "/api/v2/scim/v2/users"),
    ("PATCH", "/api/v2/scim/v2/users/{id}"),
    ("PUT", "/api/v2/scim/v2/users/{id}"),
    ("DELETE", "/api/v2/scim/v2/users/{id}"),
    ("GET", "/api/v2/scim/v2/groups/{id}"),
    ("PATCH", "/api/v2/scim/v2/groups/{id}"),
    ("PUT", "/api/v2/scim/v2/groups/{id}"),
    ("GET", "/api/v2/scim/groups"),
    ("GET", "/api/v2/groups"),
    ("POST", "/api/v2/groups"),
    ("GET", "/api/v2/groups/{id}"),
    ("PUT", "/api/v2/groups/{id}"),
    ("DELETE", "/api/v2/groups/{id}"),
    ("GET", "/api/v2/authorization/roles"),
    ("POST", "/api/v2/authorization/roles"),
    ("PUT", "/api/v2/authorization/roles/{id}"),
    ("DELETE", "/api/v2/authorization/roles/{id}"),
    ("GET", "/api/v2/authorization/divisions"),
    ("GET", "/api/v2/authorization/subjects/{id}"),
    ("POST", "/api/v2/authorization/subjects/{id}/bulkadd"),
    ("POST", "/api/v2/authorization/subjects/{id}/bulkremove"),
    (
        "DELETE",
        "/api/v2/authorization/subjects/{id}/divisions/{id}/roles/{id}",
    ),
    ("GET", "/api/v2/oauth/clients/{id}"),
    // doctor: its own grants (no permission needed) and a group's direct members.
    ("GET", "/api/v2/tokens/me"),
    ("GET", "/api/v2/groups/{id}/individuals"),
    // Deleted users (§6): found by the user search, restored by a state PATCH.
    ("POST", "/api/v2/users/search"),
    ("PATCH", "/api/v2/users/{id}"),
    // Licenses (issue 18): doctor and plans read the definitions and the users' licenses;
    // apply assigns them in batches.
    ("GET", "/api/v2/license/definitions"),
    ("GET", "/api/v2/license/users"),
    ("GET", "/api/v2/license/users/{id}"),
    ("POST", "/api/v2/license/organization"),
];

/// Fields each write's body must carry, from the request model the Genesys SDK docs publish
/// (docs/genesys.md, audit §1-§4): `a[].b` means every element of array `a` has `b`. PATCH
/// bodies are checked apart: every operation has `op`, and a remove has `path` ("Required for
/// a remove operation", `ScimV2PatchOperation`).
const REQUIRED: &[(&str, &str, &[&str])] = &[
    // ScimV2CreateUser: userName and displayName are required.
    (
        "POST",
        "/api/v2/scim/v2/users",
        &["userName", "displayName"],
    ),
    // ScimV2Group: displayName is required on PUT.
    ("PUT", "/api/v2/scim/v2/groups/{id}", &["displayName"]),
    // GroupCreate: name, type, rulesVisible and visibility are required.
    (
        "POST",
        "/api/v2/groups",
        &["name", "type", "rulesVisible", "visibility"],
    ),
    // UserSearchRequest: query; UpdateUser (a restore): state and version.
    ("POST", "/api/v2/users/search", &["query"]),
    ("PATCH", "/api/v2/users/{id}", &["state", "version"]),
    // GroupUpdate: version is required.
    ("PUT", "/api/v2/groups/{id}", &["version"]),
    // DomainOrganizationRoleCreate / -Update: name is required.
    ("POST", "/api/v2/authorization/roles", &["name"]),
    ("PUT", "/api/v2/authorization/roles/{id}", &["name"]),
    // RoleDivisionGrants: grants, each a RoleDivision with roleId and divisionId.
    (
        "POST",
        "/api/v2/authorization/subjects/{id}/bulkadd",
        &["grants[].roleId", "grants[].divisionId"],
    ),
    (
        "POST",
        "/api/v2/authorization/subjects/{id}/bulkremove",
        &["grants[].roleId", "grants[].divisionId"],
    ),
    // LicenseBatchAssignmentRequest: assignments, each a LicenseAssignmentRequest naming its
    // licenseId.
    (
        "POST",
        "/api/v2/license/organization",
        &["assignments[].licenseId"],
    ),
];

/// `method path` with ids replaced by `{id}`.
fn call_shape(path: &str) -> String {
    let id = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let shape: Vec<&str> = segments
        .iter()
        .map(|s| if id(s) && s.len() >= 16 { "{id}" } else { s })
        .collect();
    let mut shape = format!("/{}", shape.join("/"));
    // OAuth client ids are whatever the org chose, not UUIDs.
    if let Some(client) = shape.strip_prefix("/api/v2/oauth/clients/")
        && !client.contains('/')
    {
        shape = "/api/v2/oauth/clients/{id}".into();
    }
    shape
}

/// Whether docs/genesys.md documents `method path` (ids replaced by `{id}`).
pub(crate) fn documented(method: &str, path: &str) -> bool {
    DOCUMENTED.contains(&(method, call_shape(path).as_str()))
}

/// Whether `body` has `field` (`a[].b`: every element of the array `a` has `b`, and there is
/// at least one).
fn has(body: &Value, field: &str) -> bool {
    match field.split_once("[].") {
        Some((array, rest)) => body[array]
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(|i| has(i, rest))),
        None => body.get(field).is_some_and(|v| !v.is_null()),
    }
}

/// Checks the query string of a call: the grant calls take only `subjectType`, and only the
/// subject types the Platform API documents (`PC_USER` the default, `PC_GROUP`).
fn check_query(method: &str, shape: &str, query: &str) -> Result<(), String> {
    if !(shape.ends_with("/bulkadd") || shape.ends_with("/bulkremove")) {
        return Ok(());
    }
    match query.split_once('=') {
        Some(("subjectType", "PC_GROUP" | "PC_USER")) => Ok(()),
        _ => Err(format!("{method} {shape}?{query}: an undocumented query")),
    }
}

/// Checks one request-log entry: the call is documented, and a write's body (logged as its
/// shape, values replaced by their types) carries the required fields of its model.
pub(crate) fn check_call(entry: &Value) -> Result<(), String> {
    let (method, path) = (
        entry["method"].as_str().unwrap_or_default(),
        entry["path"].as_str().unwrap_or_default(),
    );
    if !documented(method, path) {
        return Err(format!("undocumented call: {method} {path}"));
    }
    let shape = call_shape(path);
    if let Some(query) = entry.get("query").and_then(Value::as_str) {
        check_query(method, &shape, query)?;
    }
    let body = &entry["body"];
    if method == "PATCH" && shape.starts_with("/api/v2/scim/v2/") {
        let ops = body["Operations"].as_array().filter(|o| !o.is_empty());
        let Some(ops) = ops else {
            return Err(format!("{method} {path} has no Operations: {body}"));
        };
        for op in ops {
            let kind = op["op"].as_str().unwrap_or_default();
            if !matches!(
                kind.to_ascii_lowercase().as_str(),
                "add" | "replace" | "remove"
            ) {
                return Err(format!(
                    "{method} {path}: operation without a valid op: {op}"
                ));
            }
            if kind.eq_ignore_ascii_case("remove") && !has(op, "path") {
                return Err(format!("{method} {path}: a remove without a path: {op}"));
            }
        }
        return Ok(());
    }
    for (m, p, fields) in REQUIRED {
        if *m == method && *p == shape {
            for field in *fields {
                if !has(body, field) {
                    return Err(format!("{method} {path} lacks required `{field}`: {body}"));
                }
            }
        }
    }
    Ok(())
}

/// The example org's licenses in its export at `exported`: one YAML license per definition
/// its users hold, and each user its own.
fn assert_exported_licenses(exported: &Path) {
    let licenses = std::fs::read_to_string(exported.join("licenses.yaml")).unwrap();
    let users = std::fs::read_dir(exported.join("users"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect::<String>();
    // Agents (cloudCX1) and supervisors (cloudCX2) are given theirs by the apply above; the
    // administrators' cloudCX3 is written exactly when they hold it (they are protected).
    for id in ["cloudCX1", "cloudCX2", "cloudCX3"] {
        let mapped = licenses.contains(&format!("genesysLicense: {id}"));
        let carried = users.contains(&format!("license: {id}"));
        assert_eq!(mapped, carried, "{id}:\n{licenses}");
        if id != "cloudCX3" {
            assert!(carried, "{id}:\n{users}");
        }
    }
}

// Plan and apply of the example org converge on the Genesys flavour: the second plan is
// empty, every request was one docs/genesys.md documents (no SCIM group POST or DELETE, no
// capitalised path, no filter-less v2 group list), and doctor passes.
#[test]
fn example_org_converges_on_genesys() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    // Priya also holds Wrap Up in Field Sales, a division that is not the home one.
    let supervisors = ds.join("users").join("supervisors.yaml");
    let yaml = std::fs::read_to_string(&supervisors).unwrap();
    let (head, tail) = yaml.split_at(yaml.find("userName: priya.raman").unwrap());
    let tail = tail.replacen(
        "roles: [Supervisor, Queue Member, Wrap Up]",
        "roles: [Supervisor, Queue Member, {name: Wrap Up, divisions: [Home, Field Sales]}]",
        1,
    );
    std::fs::write(&supervisors, format!("{head}{tail}")).unwrap();
    let ds = ds.to_str().unwrap();

    let (code, out, err) = run(dir.path(), &["plan", ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("+ create role Supervisor"), "{out}");
    assert!(out.contains("Wrap Up @ Field Sales"), "{out}");
    // The example's licenses name definitions: each user is given its license for real.
    assert!(out.contains("Standard Agent (cloudCX1)"), "{out}");
    assert!(!err.contains("cannot assign licenses"), "{err}");
    assert!(
        !out.contains("role grants limited to divisions")
            && !err.contains("role grants limited to divisions"),
        "grants are managed, not warned about:\n{out}\n{err}"
    );
    assert!(
        err.contains("Genesys Cloud groups cannot contain groups"),
        "warnings are diagnostics, on stderr:\n{err}"
    );

    let (code, out, err) = run(
        dir.path(),
        &["apply", ds, "--yes", "--password-file", "passwords.txt"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");

    let (code, out, err) = run(dir.path(), &["plan", ds, "--detailed-exitcode"]);
    assert_eq!(code, 0, "the second plan is empty:\n{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");

    assert_division_grants(&server);

    let (code, out, err) = run(dir.path(), &["doctor", ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    for check in [
        "token",
        "users",
        "groups",
        "roles",
        "divisions",
        "licenses",
        "permissions",
        "license assignment",
        "rate limit",
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains("[ok  ]") && l.contains(check)),
            "{check} passes:\n{out}"
        );
    }
    assert!(!out.contains(SECRET) && !err.contains(SECRET));

    // Export through the CLI from the directory that names the org: the export names the
    // same org (the secret by its variable only) and reads back to an empty plan.
    let exported = dir.path().join("exported");
    let exported = exported.to_str().unwrap();
    let (code, out, err) = run(dir.path(), &["export", "--from", ds, "--out", exported]);
    assert_eq!(code, 0, "{out}\n{err}");
    let config = std::fs::read_to_string(Path::new(exported).join("scimctl.yaml")).unwrap();
    assert!(
        config.contains("kind: genesys")
            && config.contains("clientSecret: {fromEnv: GENESYS_TEST_SECRET}")
            && config.contains(&server.url),
        "{config}"
    );
    assert!(!config.contains(SECRET), "{config}");
    assert_exported_licenses(Path::new(exported));
    let (code, out, err) = run(dir.path(), &["plan", exported, "--detailed-exitcode"]);
    assert_eq!(
        code, 0,
        "the export reads back to an empty plan:\n{out}\n{err}"
    );
    assert!(out.contains("No changes."), "{out}");

    let (requests, bodies) = check_request_log(dir.path());
    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    assert!(
        bodies > 20,
        "write bodies were logged and checked: {bodies}"
    );
    assert!(
        !log.contains(DEMO_PASSWORD),
        "no password in the request log"
    );
    assert!(requests > 50, "{log}");
    // The read lag bit (a new object answered 404 at first) and was waited out: apply
    // reported no failure above.
    assert!(
        log.contains(r#""status":404"#),
        "the read lag was exercised"
    );
    assert!(log.contains(r#""method":"POST","path":"/api/v2/groups""#));
    assert!(log.contains(r#""method":"POST","path":"/api/v2/authorization/roles""#));
    assert!(log.contains(r#""method":"POST","path":"/api/v2/license/organization""#));
}

/// Edits after the first apply carry `If-Match` in the form the Genesys docs give (the version
/// in double quotes): the simulator answers a bare `meta.version` with 400 `invalidVers`, so
/// a client that copied `meta.version` into the header would have every update refused, or
/// worse, retried without the precondition. Every PATCH here is accepted first time.
#[test]
fn edits_carry_the_version_in_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let path = ds.to_str().unwrap().to_owned();
    let (code, out, err) = run(
        dir.path(),
        &["apply", &path, "--yes", "--password-file", "passwords.txt"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let before = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();

    let agents = ds.join("users").join("agents-sales-billing.yaml");
    let yaml = std::fs::read_to_string(&agents).unwrap();
    std::fs::write(
        &agents,
        yaml.replacen("title: Sales Agent", "title: Senior Sales Agent", 1),
    )
    .unwrap();
    let groups = ds.join("groups.yaml");
    let yaml = std::fs::read_to_string(&groups).unwrap();
    std::fs::write(
        &groups,
        yaml.replacen("      - priya.raman@northwind.example\n", "", 1),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["apply", &path, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("2 done, 0 already done, 0 merged, 0 failed"),
        "{out}"
    );

    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    let writes: Vec<serde_json::Value> = log[before.len()..]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["method"] == "PATCH")
        .collect();
    assert_eq!(writes.len(), 2, "{log}");
    for w in &writes {
        assert_eq!(w["status"], 200, "{w}");
    }
    let (code, out, err) = run(dir.path(), &["plan", &path, "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// Hannah holds Wrap Up in Home and Priya in Home and Field Sales, as direct Platform
/// grants (read through `GET /api/v2/authorization/subjects/{id}`).
fn assert_division_grants(server: &Server) {
    let config = client_config(
        format!("{}/api/v2/scim/v2", server.url),
        format!("{}/oauth/token", server.url),
    );
    let client = ScimClient::new(config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let wrap_up = |user: &str| {
        runtime.block_on(async {
            let found: Option<User> = client.find_by_key(user).await.unwrap();
            let id = found.and_then(|u| u.id).expect("the user exists");
            let grants = client.read_grants(std::slice::from_ref(&id)).await.unwrap();
            let mut divisions: Vec<String> = grants[&id]
                .iter()
                .filter(|g| g.role_name == "Wrap Up")
                .map(|g| g.division_name.clone())
                .collect();
            divisions.sort();
            divisions
        })
    };
    assert_eq!(wrap_up("hannah.berg@northwind.example"), ["Home"]);
    assert_eq!(
        wrap_up("priya.raman@northwind.example"),
        ["Field Sales", "Home"]
    );
}

const STORM_WINDOW: Duration = Duration::from_secs(30);

async fn storm_sandbox() -> RunningSandbox {
    sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::OAuth {
                client_id: CLIENT_ID.into(),
                client_secret: SECRET.into(),
                token_ttl: Duration::from_secs(3600),
            },
            faults: Faults {
                rate_limit: Some(RateLimit {
                    requests: 10,
                    window: STORM_WINDOW,
                }),
                ..Faults::default()
            },
            ..SandboxConfig::default()
        }
        .with_flavor(Flavor::Genesys(GenesysOptions::default())),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

// A storm of 429s with `Retry-After: 30`: the server lets 10 requests through per 30 s
// window and answers the rest 429 with the seconds left in the window. 40 user creates and a
// full read need at least five windows; each wait is what the server asked, no more, so the
// run ends within 1.25 s (rounding up to whole seconds, plus jitter) of a window's start.
#[tokio::test(start_paused = true)]
async fn a_429_storm_is_waited_out_exactly() {
    let server = storm_sandbox().await;
    let mut config = client_config(server.base_url.clone(), server.token_url.clone());
    config.page_size = Some(25);
    config.max_concurrency = 4;
    config.jitter_seed = Some(3);
    let client = ScimClient::new(config).unwrap();
    let started = tokio::time::Instant::now();

    let creates = (0..40).map(|i| {
        let client = client.clone();
        async move {
            let user = User {
                user_name: format!("agent{i:02}@northwind.example"),
                display_name: Some(format!("Agent {i}")),
                ..User::default()
            };
            client.create(&user).await
        }
    });
    for created in futures_util::future::join_all(creates).await {
        created.expect("every create completes");
    }
    // Schemas, config and the two user listings (two pages of active users, one inactive).
    let snapshot = client.snapshot().await.expect("the read completes");
    assert_eq!(snapshot.users.len(), 40);
    let elapsed = started.elapsed();

    let stats = server.stats();
    // 43 limited requests at least (40 creates, 3 pages) need 5 windows: 4 waits of 30 s.
    let floor = STORM_WINDOW * 4;
    let past_boundary =
        Duration::from_nanos(u64::try_from(elapsed.as_nanos() % STORM_WINDOW.as_nanos()).unwrap());
    assert!(
        elapsed >= floor && past_boundary <= Duration::from_millis(1_250),
        "finished at {elapsed:?}: at least {floor:?}, and within 1.25 s of a window's start"
    );
    assert!(stats.status(429) > 0, "the storm happened");
    let client_stats = client.stats();
    assert_eq!(client_stats.rate_limited, stats.status(429));
    server.shutdown().await.unwrap();
}

// Genesys puts `inin-ratelimit-*` on every answer, 503s included; the reset (up to 60 s)
// is the rate window's, not a retry time. A read through a 30 % rate of 503s retries on the
// normal backoff (125 ms doubling, at most 30 s): without the distinction every 503 would
// wait out the minute window, and this read would take minutes of (paused) time.
#[tokio::test(start_paused = true)]
async fn server_errors_retry_on_backoff_not_at_the_rate_window_reset() {
    let server = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::OAuth {
                client_id: CLIENT_ID.into(),
                client_secret: SECRET.into(),
                token_ttl: Duration::from_secs(3600),
            },
            faults: Faults {
                error_rate: 0.3,
                error_status: Some(503),
                seed: 7,
                ..Faults::default()
            },
            ..SandboxConfig::default()
        }
        .with_flavor(Flavor::Genesys(GenesysOptions::default())),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let users: Vec<serde_json::Value> = (0..200)
        .map(|i| serde_json::json!({"userName": format!("a{i:03}@northwind.example")}))
        .collect();
    server.store().seed(users, Vec::new()).unwrap();
    let mut config = client_config(server.base_url.clone(), server.token_url.clone());
    config.timeout = None;
    config.page_size = Some(25);
    config.jitter_seed = Some(5);
    let client = ScimClient::new(config).unwrap();
    let started = tokio::time::Instant::now();
    let snapshot = client.snapshot().await.expect("the read completes");
    let elapsed = started.elapsed();
    assert_eq!(snapshot.users.len(), 200);
    let stats = server.stats();
    assert!(stats.faults.errors >= 3, "503s were met: {stats:?}");
    assert!(
        elapsed < Duration::from_secs(30),
        "{} retries of 503s took {elapsed:?} of paused time",
        stats.faults.errors
    );
    server.shutdown().await.unwrap();
}

// The login service rate-limits token requests (429 with `Retry-After`): a second client
// that asks for a token inside the window waits it out and carries on, where before one 429
// on the token ended the run (or the watch cycle).
#[tokio::test(start_paused = true)]
async fn a_429_from_the_token_endpoint_is_waited_out() {
    let window = Duration::from_secs(20);
    let server = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::OAuth {
                client_id: CLIENT_ID.into(),
                client_secret: SECRET.into(),
                token_ttl: Duration::from_secs(3600),
            },
            faults: Faults {
                token_rate_limit: Some(RateLimit {
                    requests: 1,
                    window,
                }),
                ..Faults::default()
            },
            ..SandboxConfig::default()
        }
        .with_flavor(Flavor::Genesys(GenesysOptions::default())),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = || {
        let mut config = client_config(server.base_url.clone(), server.token_url.clone());
        config.page_size = Some(25);
        ScimClient::new(config).unwrap()
    };
    let started = tokio::time::Instant::now();
    for _ in 0..2 {
        client().snapshot().await.expect("the read completes");
    }
    let stats = server.stats();
    assert_eq!(stats.tokens_issued, 2, "{stats:?}");
    assert!(
        stats.faults.rate_limited >= 1,
        "the token was refused once: {stats:?}"
    );
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    server.shutdown().await.unwrap();
}

// An org whose limit was lowered (the SDK's trace-log example shows
// `inin-ratelimit-allowed: 180`) is paced at what the server announces, not at the
// configured 6000 a minute: 150 creates at once against an enforced 60 a minute cost (almost)
// no 429s, where a client that ignored the header spent a 429 on nearly every request past
// each window's 60th.
#[tokio::test(start_paused = true)]
async fn the_announced_rate_limit_is_followed() {
    let server = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::OAuth {
                client_id: CLIENT_ID.into(),
                client_secret: SECRET.into(),
                token_ttl: Duration::from_secs(3600),
            },
            ..SandboxConfig::default()
        }
        .with_flavor(Flavor::Genesys(GenesysOptions {
            requests_per_minute: 60,
            ..GenesysOptions::default()
        })),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut config = client_config(server.base_url.clone(), server.token_url.clone());
    config.timeout = None;
    config.requests_per_minute = Some(6000);
    config.max_concurrency = 8;
    let client = ScimClient::new(config).unwrap();
    let started = tokio::time::Instant::now();
    let creates = (0..150).map(|i| {
        let client = &client;
        async move {
            let user = User {
                user_name: format!("paced{i}@northwind.example"),
                display_name: Some(format!("Paced {i}")),
                ..User::default()
            };
            client.create(&user).await.expect("created")
        }
    });
    futures_util::future::join_all(creates).await;
    let refused = server.stats().faults.rate_limited;
    assert!(
        refused <= 2,
        "{refused} requests answered 429 (client saw {}): {:?} {:?} {:?}",
        client.stats().rate_limited,
        client.stats(),
        server.stats(),
        started.elapsed()
    );
    // 150 requests at 60 a minute need two full windows and part of a third.
    assert!(
        started.elapsed() >= Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    server.shutdown().await.unwrap();
}
