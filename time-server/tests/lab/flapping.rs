//! A time-server's link to ZooKeeper flapping: down 1 s, up 1 s, 20 times,
//! with a session that outlives each cut. Every reconnect is a chance to
//! register twice, to set a watch again without dropping the old one, or
//! to leave a thread or a socket behind; none of it may pile up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zkutil::testing::lab::Host;
use zkutil::testing::{poll_until, wait_until};

use crate::support::{BASE, ZkLab, snapshot, zk_lab};
use crate::traffic::{lost_nothing, start_client};

/// Down this long, then up this long, this many times.
const DOWN: Duration = Duration::from_secs(1);
const UP: Duration = Duration::from_secs(1);
const ROUNDS: usize = 20;

/// The watches ZooKeeper holds, summed over the nodes (a session's watches
/// live on the node it is connected to, which may change with each cut).
fn watch_count(world: &ZkLab) -> Option<u64> {
    world.zk.iter().try_fold(0, |sum, zk| {
        let addr = SocketAddr::from((zk.address(), 2181));
        let mntr = zkutil::admin::four_letter_word(addr, "mntr", Duration::from_secs(1)).ok()?;
        let count: u64 = mntr
            .lines()
            .find_map(|line| line.strip_prefix("zk_watch_count\t"))?
            .trim()
            .parse()
            .ok()?;
        Some(sum + count)
    })
}

/// The process's threads and open descriptors.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let threads = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a thread count");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("its descriptors")
        .count();
    (threads, fds)
}

/// Samples the registry from `since` for `period`: panics on a duplicate.
/// Whether every sample was `expected` (the same node, owner and ctime).
fn sample(
    world: &ZkLab,
    observer: &zkutil::Session,
    expected: &[(String, zkutil::SessionId, i64)],
    period: Duration,
) -> bool {
    let since = Instant::now();
    let mut same = true;
    while since.elapsed() < period {
        let nodes = snapshot(observer, BASE);
        assert!(
            nodes.len() <= 1,
            "a duplicate registration: {nodes:?}; {}",
            world.report()
        );
        same &= nodes == expected;
        // Sampling is enough: a flap leaves a new owner and ctime behind.
        std::thread::sleep(Duration::from_millis(50));
    }
    same
}

#[test]
fn a_flapping_zookeeper_link_leaves_no_duplicate_no_watch_no_thread_and_no_descriptor_behind() {
    let Some(mut world) = zk_lab() else { return };
    let (host, client_host) = (world.host("server"), world.host("client"));
    let server = world.time_server(&host, "4s");
    let observer = world.observer();
    let before = wait_until(Duration::from_secs(30), "the server registers", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 1).then_some(nodes)
    });
    let client = start_client(&world, &client_host);
    let watches = wait_until(Duration::from_secs(10), "mntr answers", || {
        watch_count(&world)
    });
    let (threads, fds) = threads_and_fds(server.pid());

    let zk: Vec<Host> = world.zk.clone();
    let zk: Vec<&Host> = zk.iter().collect();
    let started = Instant::now();
    let mut unchanged = 0;
    for _ in 0..ROUNDS {
        world.lab.partition(&[&host], &zk);
        let down = sample(&world, &observer, &before, DOWN);
        world.lab.heal();
        let up = sample(&world, &observer, &before, UP);
        unchanged += usize::from(down && up);
    }
    let flapped = started.elapsed();

    let healed_at = Instant::now();
    let watches_back = wait_until(
        Duration::from_secs(30),
        &format!(
            "the watches are back to {watches} ({:?} at the last heal)",
            watch_count(&world)
        ),
        || (watch_count(&world) == Some(watches)).then(|| healed_at.elapsed()),
    );
    let settled = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let (t, f) = threads_and_fds(server.pid());
        (t <= threads + 2 && f <= fds + 3).then_some((t, f))
    });
    let after = snapshot(&observer, BASE);
    let reconnects = server.log_count("reconnected to ZooKeeper");
    let summary = lost_nothing(&world, client);
    println!(
        "flapping link: {ROUNDS} rounds of {DOWN:?} down, {UP:?} up in {flapped:?}; \
         the server reconnected {reconnects} times; registration unchanged through {unchanged} rounds; watches {watches} again \
         {watches_back:?} after the last heal; threads/fds {threads}/{fds} before, \
         {settled:?} after; client: {summary}"
    );
    let (now_threads, now_fds) = threads_and_fds(server.pid());
    assert!(
        settled.is_some(),
        "threads/fds grew: {threads}/{fds} before, {now_threads}/{now_fds} after; {}",
        world.report()
    );
    // The flaps were felt: each reconnect is what could leak.
    assert!(
        reconnects > 0,
        "no flap reached the server; {}",
        world.report()
    );
    // The session outlived every cut: the same node all along.
    assert_eq!(after, before, "{}", world.report());
    assert_eq!(unchanged, ROUNDS, "the node changed; {}", world.report());
}
