//! The post's own Go programs, built from its source: our client calls
//! their servers (a reply without a newline, ended by their close), and
//! their client calls ours.

use std::time::Duration;

use zkutil::testing::{SeedGo, free_ports, wait_until};

use crate::support::{RUN_DEADLINE, Servers, run_client, zookeeper};

fn seed() -> SeedGo {
    SeedGo::get().unwrap_or_else(|e| panic!("building the post's Go programs: {e}"))
}

#[test]
fn our_client_gets_every_answer_from_the_posts_go_servers() {
    let zk = zookeeper();
    let ports = free_ports(3).expect("free ports");
    let listen: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
    let _go = seed().server(&zk.connect_string(), &listen);
    let session = zkutil::testing::connect(&zk, Duration::from_secs(10));
    wait_until(Duration::from_secs(30), "the Go servers registered", || {
        let children = session.children("/go_servers").ok()?;
        listen
            .iter()
            .all(|a| children.iter().any(|c| c == a))
            .then_some(())
    });
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "20",
        "--interval",
        "0s",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "time-client failed:\n{stdout}\n{stderr}"
    );
    let answered = stdout
        .lines()
        .filter(|l| listen.iter().any(|a| l.contains(&format!("{a}: "))))
        .count();
    assert_eq!(
        answered, 20,
        "20 of 20 answered by the Go servers:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("malformed"), "{stderr}");
}

#[test]
fn the_posts_go_client_gets_every_answer_from_our_servers() {
    let zk = zookeeper();
    // Three: the post's client picks `serverList[rand.Intn(3)]`.
    let servers = Servers::start(&zk, "/go_servers", 3);
    let mut client = seed().client(&zk.connect_string(), 20, 0);
    let status = client.wait(RUN_DEADLINE);
    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert!(
        status.success(),
        "the Go client failed: {lines:?}\n{}",
        client.stderr_text()
    );
    let answered = lines
        .iter()
        .filter(|l| {
            servers
                .endpoints()
                .iter()
                .any(|e| l.starts_with(&format!("{e}: ")))
        })
        .count();
    assert_eq!(
        answered, 20,
        "20 of 20 replies printed by the Go client: {lines:?}"
    );
}
