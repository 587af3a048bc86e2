//! What `zkutil` says when there is nothing to show or the input is wrong:
//! one line, the right exit code, and no contact with ZooKeeper for a usage
//! error.

use crate::support::zookeeper;

use super::{text, zkutil};

#[test]
fn empty_is_not_an_error_but_says_why() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let ls = zkutil(&["--zk", &hosts, "ls"]);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert_eq!(text(&ls.stdout), "(no instances)\n");
    assert_eq!(
        text(&ls.stderr).trim(),
        "zkutil: no server has registered under /go_servers (it does not exist)"
    );
    let check = zkutil(&["--zk", &hosts, "check"]);
    assert!(check.status.success(), "nothing registered is nothing down");
    let at_least_one = zkutil(&["--zk", &hosts, "check", "--min", "1"]);
    assert_eq!(at_least_one.status.code(), Some(1));
    assert!(text(&at_least_one.stderr).contains("0 reachable, fewer than --min 1"));
}

#[test]
fn base_path_typos_are_refused_before_anything_is_contacted() {
    // Port 1: a connect would fail with exit 1, not the usage error's 2.
    for bad in [
        "go_servers",
        "/go_servers/",
        "/go//servers",
        "/",
        "/zookeeper/x",
    ] {
        let output = zkutil(&["--zk", "127.0.0.1:1", "--base-path", bad, "ls"]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("invalid base path"), "{stderr}");
    }
}

#[test]
fn a_bad_connect_string_names_the_host_and_a_bad_secret_is_never_echoed() {
    for (zk, named) in [
        ("127.0.0.1:2181,,127.0.0.2", "an empty host"),
        (
            "127.0.0.1:2181,zk2:99999",
            "host \"zk2:99999\": the port must be 1-65535",
        ),
        ("[::1:2181", "host \"[::1:2181\""),
        ("zk1:2181/app/", "chroot: invalid base path \"/app/\""),
    ] {
        let output = zkutil(&["--zk", zk, "ls"]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{zk}: {stderr}");
        assert!(stderr.contains(named), "{zk}: {stderr}");
    }
    let output = zkutil(&["--zk-auth", "s3cr3t-without-user", "ls"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expected user:password"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "the value was echoed: {stderr}");
}

#[test]
fn unreachable_zookeeper_and_bad_input_are_one_line_errors() {
    let output = zkutil(&["--zk", "127.0.0.1:1", "--zk-connect-timeout", "1s", "ls"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.trim().starts_with("zkutil: error: ") && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    let bad = zkutil(&["get", "not-an-endpoint"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("invalid endpoint"),
        "{}",
        text(&bad.stderr)
    );
}
