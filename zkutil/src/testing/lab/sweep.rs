//! The lab's names, and the sweep of what dead runs left behind.
//!
//! Every namespace, veth and bridge of a run starts with the run's prefix:
//! `zkl`, the PID of the test process in 6 hex digits, one character
//! counting the labs of that process. A run killed with SIGKILL cannot
//! clean up; the next run finds its names, sees that the PID is gone, and
//! removes them. Interface names are at most 15 characters: the prefix
//! takes 10, a bridge adds `br`, a veth `v` and the host's number.

use std::sync::atomic::{AtomicU32, Ordering};

use super::ip::{ip_quietly, kill_all_in, links, namespaces};

/// What every name of the lab starts with.
const TAG: &str = "zkl";

/// A new prefix for a lab of this process.
pub(super) fn new_prefix() -> String {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed) % 36;
    let digit = char::from_digit(n, 36).unwrap_or('z');
    format!("{TAG}{:06x}{digit}", std::process::id())
}

/// The PID of the run that made `name`, if it is a lab's name.
fn owner(name: &str) -> Option<u32> {
    let hex = name.strip_prefix(TAG)?.get(..6)?;
    u32::from_str_radix(hex, 16).ok()
}

/// Whether a process `pid` exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes every namespace and link whose run is dead; returns their names.
pub(super) fn sweep_dead_runs() -> Vec<String> {
    let dead = |name: &String| owner(name).is_some_and(|pid| !alive(pid));
    let namespaces: Vec<String> = namespaces().into_iter().filter(dead).collect();
    let links: Vec<String> = links().into_iter().filter(dead).collect();
    remove(&namespaces, &links);
    namespaces.into_iter().chain(links).collect()
}

/// Removes `namespaces` (their processes killed first) and `links`: the
/// processes go first, as they hold their namespace, then the links (a
/// veth's deletion takes its peer with it), then the namespaces. Never
/// fails: what is already gone is skipped.
pub(super) fn remove(namespaces: &[String], links: &[String]) {
    for namespace in namespaces {
        kill_all_in(namespace);
    }
    for link in links {
        ip_quietly(&["link", "del", link]);
    }
    for namespace in namespaces {
        ip_quietly(&["netns", "del", namespace]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_carries_the_pid_of_the_run_that_made_it() {
        let prefix = new_prefix();
        assert_eq!(owner(&format!("{prefix}br")), Some(std::process::id()));
        assert_eq!(owner(&format!("{prefix}-zk1")), Some(std::process::id()));
        assert!(format!("{prefix}v99").len() <= 15, "{prefix}");
    }

    #[test]
    fn names_of_others_are_not_the_labs() {
        assert_eq!(owner("eth0"), None);
        assert_eq!(owner("zkl"), None);
        assert_eq!(owner("zklzzzzzz0br"), None);
    }
}
