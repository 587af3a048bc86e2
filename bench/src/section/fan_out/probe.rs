//! What the fan-out section reads off the processes themselves: ZooKeeper's
//! live heap (its `mntr` has watch counts and `zk_watch_bytes`, but no JVM
//! memory figure, so the heap is asked of the JVM with `jcmd`), and the CPU
//! time each side spends (`/proc/<pid>/stat`), to tell where a change's
//! time goes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `jcmd` may take (it starts a JVM of its own and attaches):
/// past it the child is killed and the figure is left out.
const JCMD_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `jcmd <pid> <command>`, its stdout; `None` when it is missing,
/// fails or takes longer than [`JCMD_TIMEOUT`].
fn jcmd(pid: u32, command: &str) -> Option<String> {
    let mut child = Command::new("jcmd")
        .arg(pid.to_string())
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + JCMD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

/// The live heap of JVM `pid` in KiB: a full collection first (`GC.run`,
/// so that only what is reachable is counted), then the generations'
/// `used` from `GC.heap_info` (metaspace left out).
pub fn live_heap_kib(pid: u32) -> Option<u64> {
    jcmd(pid, "GC.run")?;
    let info = jcmd(pid, "GC.heap_info")?;
    let used: Vec<u64> = info
        .lines()
        .filter(|line| line.contains("generation") || line.contains("region size"))
        .filter_map(|line| {
            let after = line.split("used ").nth(1)?;
            after.split(['K', ' ', ',']).next()?.parse().ok()
        })
        .collect();
    (!used.is_empty()).then(|| used.iter().sum())
}

/// The live heap of each of `pids`, summed, measured on all at once (each
/// `jcmd` takes a JVM start); `None` when any one cannot be read.
pub fn live_heap_total_kib(pids: &[u32]) -> Option<u64> {
    std::thread::scope(|scope| {
        let each: Vec<_> = pids
            .iter()
            .map(|&pid| scope.spawn(move || live_heap_kib(pid)))
            .collect();
        each.into_iter()
            .map(|h| h.join().ok().flatten())
            .sum::<Option<u64>>()
    })
}

/// CPU time (user + system) of process `pid` so far; zero when it cannot
/// be read. `/proc` counts in clock ticks, 100 per second on Linux.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The command name may hold spaces: fields are counted after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Duration::from_millis((user + system) * 10),
        _ => Duration::ZERO,
    }
}

/// The CPU time of all of `pids`.
pub fn cpu_time_of(pids: &[u32]) -> Duration {
    pids.iter().map(|&pid| cpu_time(pid)).sum()
}
