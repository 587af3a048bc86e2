//! `zkutil render` when things go wrong around it: a reload command that
//! fails (retried while renders go on, and owed across runs until it
//! passes), and a registrant whose nodes all go at once (never rendered as
//! an empty list).

use std::path::Path;
use std::time::Duration;

use zkutil::testing::wait_until;

use crate::render::{render, render_metric, render_once, template};
use crate::render_files::render_once_failing;
use crate::support::{ServerProcess, observer, zookeeper};

#[test]
fn a_failing_reload_command_is_reported_and_retried_and_renders_go_on() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-failing-exec";
    let session = observer(&zk);
    session.ensure_path(base).expect("the base path");
    session
        .create_ephemeral(&format!("{base}/10.2.0.1:1000"), b"")
        .expect("an instance");
    let dir = tempfile::tempdir().expect("a folder");
    let out = dir.path().join("instances.json");
    let spec = format!(
        "{}:{}",
        template("instances.json.j2").display(),
        out.display()
    );
    let follower = render(
        &hosts,
        &[
            "--path",
            base,
            "--template",
            &spec,
            "--exec",
            "echo 'reload refused: no such service' >&2; exit 3",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let metrics = follower.logged_addr("metrics=");
    wait_until(Duration::from_secs(30), "the command tried twice", || {
        (render_metric(metrics, "zkutil_render_exec_failures_total") >= 2.0).then_some(())
    });
    let log = follower.stderr_text();
    assert!(log.contains("--exec command failed"), "{log}");
    assert!(log.contains("reload refused: no such service"), "{log}");
    assert!(log.contains("exit status: 3"), "{log}");
    session
        .create_ephemeral(&format!("{base}/10.2.0.2:1000"), b"")
        .expect("a second instance");
    wait_until(Duration::from_secs(20), "the new instance rendered", || {
        std::fs::read_to_string(&out)
            .ok()?
            .contains("10.2.0.2:1000")
            .then_some(())
    });
}

#[test]
fn a_registrant_whose_nodes_all_expire_at_once_never_renders_an_empty_list() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-expiry";
    let dir = tempfile::tempdir().expect("a folder");
    let out = dir.path().join("instances.json");
    let spec = format!(
        "{}:{}",
        template("instances.json.j2").display(),
        out.display()
    );
    let follower = render(&hosts, &["--path", base, "--template", &spec], &[]);
    let session = observer(&zk);
    let listed = |path: &Path| -> Option<usize> {
        let text = std::fs::read_to_string(path).ok()?;
        let services: zkutil::serde_json::Value = zkutil::serde_json::from_str(&text).ok()?;
        services[0]["instances"].as_array().map(Vec::len)
    };
    // Each round: ten nodes of one session, gone together when it expires
    // (the render's snapshot may still list some while their reads find
    // none: that must not be written as an empty list).
    for round in 0..3 {
        let mut server = ServerProcess::start(
            &[
                &[
                    "--zk",
                    &hosts,
                    "--base-path",
                    base,
                    "--session-timeout",
                    "4s",
                ][..],
                &["--listen"; 10]
                    .iter()
                    .flat_map(|flag| [*flag, "127.0.0.1:0"])
                    .collect::<Vec<_>>(),
            ]
            .concat(),
        );
        server.registered(10);
        wait_until(Duration::from_secs(20), "ten instances rendered", || {
            (listed(&out)? == 10).then_some(())
        });
        server.signal("KILL");
        let _ = server.wait(Duration::from_secs(10));
        wait_until(Duration::from_secs(30), "the session's nodes gone", || {
            crate::support::children(&session, base)
                .is_empty()
                .then_some(())
        });
        // The render has seen the empty registry (it logs its refusal).
        follower.wait_for_log(
            "lists no instance in rotation",
            round + 1,
            Duration::from_secs(20),
        );
        assert_eq!(
            listed(&out),
            Some(10),
            "round {round}: an empty list was written:\n{}",
            follower.stderr_text()
        );
    }
}

#[test]
fn an_exec_owed_for_a_write_runs_on_the_next_run_even_when_the_file_is_already_right() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-owed";
    let session = observer(&zk);
    session.ensure_path(base).expect("the base path");
    session
        .create_ephemeral(&format!("{base}/10.4.0.1:80"), b"")
        .expect("an instance");
    let dir = tempfile::tempdir().expect("a folder");
    let out = dir.path().join("instances.json");
    let spec = format!(
        "{}:{}",
        template("instances.json.j2").display(),
        out.display()
    );
    let reloaded = dir.path().join("reloaded");
    // The reload fails: the write is in place, its reload still owed.
    let failed = render_once_failing(
        &hosts,
        &["--path", base, "--template", &spec, "--exec", "exit 1"],
    );
    assert!(failed.contains("--exec command failed"), "{failed}");
    assert!(out.exists());
    // A second run finds the file right and still reloads.
    let exec = format!("touch {}", reloaded.display());
    render_once(
        &hosts,
        &["--path", base, "--template", &spec, "--exec", &exec],
        &[],
    );
    assert!(reloaded.exists(), "the owed reload never ran");
    // Once done, it is owed no more.
    std::fs::remove_file(&reloaded).expect("removed");
    render_once(
        &hosts,
        &["--path", base, "--template", &spec, "--exec", &exec],
        &[],
    );
    assert!(!reloaded.exists(), "a reload with nothing owed");
}
