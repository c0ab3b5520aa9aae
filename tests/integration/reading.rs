//! Read progress (issue 20): a read of the tenant that takes a while says how far it got on
//! stderr, a line every five seconds in a log, and `-q` hides it.

use std::path::Path;

use crate::quirks::{TOKEN, run, serve};
use crate::support::copy_example;

/// `a/b users, c/d groups` from the last line of a read, as numbers.
fn last_figures(stderr: &str, label: &str) -> (u64, u64, u64, u64) {
    let prefix = format!("{label}: read the tenant: ");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no last line of the read:\n{stderr}"));
    let numbers: Vec<u64> = line
        .split([' ', '/', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        line.contains(" users, ") && line.contains(" groups, took "),
        "{line}"
    );
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

#[test]
fn a_slow_read_shows_how_far_it_got_and_quiet_hides_it() {
    let cwd = tempfile::tempdir().unwrap();
    copy_example(&cwd.path().join("org"));
    {
        let fast = serve(cwd.path(), &[], &[]);
        let (code, out, err) = run(cwd.path(), &fast, &["apply", "org", "--yes"]);
        assert_eq!(code, 0, "{out}\n{err}");
    }
    // Every answer three seconds late: a read takes at least two round trips in turn (the
    // service provider config, then the listings), past five seconds.
    let slow = serve(cwd.path(), &[], &["--latency-ms", "3000"]);
    let (plan, export, doctor) = std::thread::scope(|s| {
        let plan = s.spawn(|| run(cwd.path(), &slow, &["plan", "org"]));
        let export = s.spawn(|| run(cwd.path(), &slow, &["-q", "export", "--out", "exported"]));
        let doctor = s.spawn(|| run(cwd.path(), &slow, &["doctor", "org"]));
        (
            plan.join().unwrap(),
            export.join().unwrap(),
            doctor.join().unwrap(),
        )
    });

    let (code, out, err) = plan;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes"), "{out}");
    assert!(err.contains("plan: reading the tenant: "), "{err}");
    let (users, users_total, groups, groups_total) = last_figures(&err, "plan");
    assert!(users > 0 && groups > 0, "{err}");
    assert_eq!((users, groups), (users_total, groups_total), "{err}");
    // The plan on stdout is untouched by progress.
    assert!(!out.contains("reading the tenant"), "{out}");
    assert!(!err.contains(TOKEN), "{err}");

    let (code, out, err) = export;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !err.contains("reading the tenant"),
        "-q shows no progress:\n{err}"
    );
    assert!(Path::new(&cwd.path().join("exported")).is_dir());

    // doctor has no totals to read against: it counts its checks and requests.
    let (code, out, err) = doctor;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("doctor: reading the tenant: "), "{err}");
    assert!(err.contains(" checks made, "), "{err}");
    assert!(err.contains("doctor: read the tenant: "), "{err}");
}
