//! The sidecar's exec checks: a command that forks and hangs is killed
//! whole at its timeout, and one whose child escapes its group leaves
//! nothing behind: no process, no zombie, no thread.

use std::time::{Duration, Instant};

use crate::sidecar::{sidecar, sidecar_logging, stop};
use crate::support::zookeeper;

/// The command lines of the live (not zombie) processes that start with
/// `text`.
fn live_processes_with(text: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (state != 'Z' && cmdline.starts_with(text)).then(|| format!("{pid} {cmdline}"))
        })
        .collect()
}

#[test]
fn an_exec_check_that_forks_and_hangs_is_killed_whole_at_its_timeout() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    // A duration no other process on the machine sleeps for.
    let marker = "47.31415";
    let check = format!("exec:sleep {marker} & sleep {marker}");
    // Every failed run is logged at debug: three of them, three kills.
    let sidecar = sidecar_logging(
        &hosts,
        ("/sidecar-exec", "127.0.0.1:18124"),
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--check-timeout",
            "300ms",
        ],
        "info,zkutil::sidecar=debug",
    );
    sidecar.wait_for_log(
        "still running after 300ms; killed",
        3,
        Duration::from_secs(20),
    );
    stop(sidecar);
    let left =
        zkutil::testing::poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
            live_processes_with(&format!("sleep {marker}"))
                .is_empty()
                .then_some(())
        });
    assert!(
        left.is_some(),
        "left running: {:?}",
        live_processes_with(&format!("sleep {marker}"))
    );
}

/// The children of `pid` that are zombies, and its thread count.
fn zombies_and_threads(pid: u32) -> (usize, u64) {
    let zombies = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&pid.to_string().as_str())
        })
        .count();
    let threads = zkutil::testing::proc_status(pid, "Threads:").unwrap_or(0);
    (zombies, threads)
}

/// A check whose command leaves its group (`setsid`) and keeps the output
/// pipe open: nothing piles up, neither zombies nor threads, and nothing
/// of it outlives its run.
#[test]
fn an_exec_check_whose_child_escapes_its_group_leaves_no_zombie_thread_or_process() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    // A duration no other process sleeps for, this run's own.
    let marker = format!("58.{}", std::process::id());
    let check = format!("exec:setsid sleep {marker} & true");
    let sidecar = sidecar(
        &hosts,
        "/sidecar-escape",
        "127.0.0.1:18125",
        &[
            "--check",
            &check,
            "--check-interval",
            "100ms",
            "--check-timeout",
            "300ms",
        ],
    );
    sidecar.wait_for_log("healthy: rise reached", 1, Duration::from_secs(20));
    // Thirty runs later.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (zombies, threads) = zombies_and_threads(sidecar.pid());
    assert!(zombies <= 1, "{zombies} zombie children");
    assert!(threads < 30, "{threads} threads");
    let escaped = live_processes_with(&format!("sleep {marker}"));
    assert!(
        escaped.len() <= 1,
        "escaped processes left running: {escaped:?}"
    );
    stop(sidecar);
    let left =
        zkutil::testing::poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
            live_processes_with(&format!("sleep {marker}"))
                .is_empty()
                .then_some(())
        });
    assert!(
        left.is_some(),
        "left running: {:?}",
        live_processes_with(&format!("sleep {marker}"))
    );
}
