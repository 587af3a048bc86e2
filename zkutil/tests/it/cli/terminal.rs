//! `zkutil` as a shell tool: a closed pipe, colours on a terminal and
//! `NO_COLOR`, completions and man pages.

use std::net::TcpListener;
use std::process::Command;

use zkutil::Registration;

use crate::support::{session, zookeeper};

use super::{register, text, zkutil};

#[test]
fn a_closed_stdout_ends_zkutil_quietly() {
    let zk = zookeeper();
    let s = session(&zk);
    let _regs: Vec<Registration> = (1..=3)
        .map(|port| {
            register(
                &s,
                format!("127.0.0.1:{port}")
                    .parse()
                    .expect("a valid literal"),
            )
        })
        .collect();
    let script = format!(
        "set -o pipefail; {} --zk {} ls | head -1",
        crate::support::zkutil_binary().display(),
        zk.connect_string()
    );
    let output = Command::new("bash")
        .args(["-c", &script])
        .env_remove("ZK_HOSTS")
        .output()
        .expect("runs bash");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("ENDPOINT "));
    assert!(
        !text(&output.stderr).contains("error"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn completions_and_man_pages_are_generated_from_the_flags() {
    let bash = zkutil(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    assert!(
        script.contains("complete -F _zkutil") && script.contains("--base-path"),
        "{script}"
    );
    let page = zkutil(&["man-page"]);
    let page = text(&page.stdout);
    assert!(
        page.contains(".TH zkutil 1") && page.contains("register"),
        "{page}"
    );
}

#[test]
fn no_color_means_no_escape_codes_and_logs_name_no_module_paths() {
    // A host that accepts and never answers: the wait logs "connecting to
    // ZooKeeper at …" after a second, then times out.
    let silent = TcpListener::bind("127.0.0.1:0").expect("binds");
    let command = format!(
        "{} --zk {} --zk-connect-timeout 2s ls",
        crate::support::zkutil_binary().display(),
        silent.local_addr().expect("bound")
    );
    // On a terminal (script's pseudo-terminal) logs are in colour ...
    let run = |no_color: bool| {
        let mut script = Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .env_remove("RUST_LOG");
        if no_color {
            script.env("NO_COLOR", "1");
        } else {
            script.env_remove("NO_COLOR");
        }
        let output = script.output().expect("runs script (util-linux)");
        format!("{}{}", text(&output.stdout), text(&output.stderr))
    };
    let coloured = run(false);
    assert!(
        coloured.contains("connecting to ZooKeeper") && coloured.contains('\u{1b}'),
        "on a terminal logs are in colour: {coloured:?}"
    );
    // ... and NO_COLOR wins.
    let plain = run(true);
    assert!(plain.contains("connecting to ZooKeeper"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "escape codes: {plain:?}");
    assert!(!plain.contains("zkutil::"), "module paths: {plain}");
}
