//! The `zkutil` binary, run as a process against real ZooKeeper: stdout
//! (text and JSON), stderr and exit codes. One file per command or
//! concern; the helpers that run the binary are here.

mod auth;
mod errors;
mod health;
mod ls;
mod metrics;
mod register;
mod secrets;
mod terminal;
mod watch;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::TestProcess;
use zkutil::{BasePath, Endpoint, Metadata, Registration};

fn zkutil(args: &[&str]) -> Output {
    Command::new(crate::support::zkutil_binary())
        .args(args)
        .env_remove("ZK_HOSTS")
        .env_remove("ZK_AUTH")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running zkutil: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A long-running `zkutil`, its stdout recorded line by line.
fn running(args: &[&str]) -> TestProcess {
    TestProcess::start(crate::support::zkutil_binary(), args, &[])
}

fn lines(process: &TestProcess) -> Vec<String> {
    process
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, line)| line)
        .collect()
}

/// Stops it with `signal` and waits for the exit.
fn stop_with(process: &mut TestProcess, signal: &str) -> std::process::ExitStatus {
    process.signal(signal);
    process.wait(Duration::from_secs(15))
}

fn register(s: &Arc<zkutil::Session>, endpoint: Endpoint) -> Registration {
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    Registration::register(
        s,
        &BasePath::from_static("/go_servers"),
        endpoint,
        &metadata,
    )
    .expect("registers")
}

/// The most memory (peak resident set, KiB) a process has used, from
/// `/proc/<pid>/status`.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How many nodes of nearly a megabyte (ZooKeeper's limit per node; the
/// number of nodes has none) the memory tests put in a roomy ZooKeeper.
const HUGE_NODES: usize = 150;

/// Padding that makes a record nearly a megabyte.
fn megabyte_pad() -> String {
    "x".repeat(999_000)
}

/// Asserts that `process`, which has read [`HUGE_NODES`] nodes of nearly a
/// megabyte, never held all of their bytes at once: its peak memory stayed
/// well below their 150 MB.
fn assert_never_held_them_all(process: &TestProcess, what: &str) {
    let peak = peak_rss_kib(process.pid()).expect("the process's peak memory");
    assert!(
        peak < 80 * 1024,
        "{what} peaked at {} MiB among {HUGE_NODES} MB of nodes",
        peak / 1024
    );
}

/// A ZooKeeper with room for 150 MB of nodes: it keeps every one in
/// memory, and the tests' usual heap holds about 80 MB of them.
fn roomy_zookeeper() -> zkutil::testing::ZkServer {
    zkutil::testing::ZkServer::start_with(zkutil::testing::ZkOptions {
        heap_mib: Some(1024),
        ..zkutil::testing::ZkOptions::default()
    })
    .expect("ZooKeeper starts")
}
