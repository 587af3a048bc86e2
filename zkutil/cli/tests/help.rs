//! The `zkutil` command as a newcomer first meets it: `--version`, and
//! `--help` for every subcommand, each exiting 0. (These tests also make
//! `cargo test --workspace` build the binary, which the other packages'
//! tests run from beside their own.)

use std::process::Command;

const SUBCOMMANDS: [&str; 13] = [
    "ls",
    "watch",
    "get",
    "register",
    "sidecar",
    "render",
    "console",
    "disable",
    "enable",
    "weight",
    "check",
    "status",
    "completions",
];

#[test]
fn every_subcommand_answers_help_and_the_version_is_the_packages() {
    let zkutil = env!("CARGO_BIN_EXE_zkutil");
    for subcommand in SUBCOMMANDS {
        let output = Command::new(zkutil)
            .args([subcommand, "--help"])
            .output()
            .expect("runs zkutil");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains("Usage: zkutil"),
            "zkutil {subcommand} --help: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let version = Command::new(zkutil)
        .arg("--version")
        .output()
        .expect("runs zkutil");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{version:?}"
    );
}

#[test]
fn an_on_off_flag_variable_left_empty_or_set_to_any_word_is_no_usage_error() {
    let zkutil = env!("CARGO_BIN_EXE_zkutil");
    // `completions` parses every global flag and needs no ZooKeeper.
    for value in ["", "0", "false", "off", "1", "true", "yes"] {
        let output = Command::new(zkutil)
            .args(["completions", "bash"])
            .env("ZK_QUIET", value)
            .output()
            .expect("runs zkutil");
        assert!(
            output.status.success(),
            "ZK_QUIET={value:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
