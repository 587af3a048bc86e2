//! What a scrape and `/healthz` say: exactly the requests made, in text
//! Prometheus parses, and 503 while ZooKeeper is down.

use std::io::Write;
use std::time::Duration;

use zkutil::testing::{http_get, metric_value as metric, wait_until};

use crate::support::{ServerProcess, zookeeper};

#[test]
fn metrics_count_exactly_the_requests_made_and_parse_as_exposition_text() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    server.registered(1);
    let metrics = server.logged_addr("metrics=");
    wait_until(Duration::from_secs(10), "healthy", || {
        (http_get(metrics, "/healthz").ok()? == (200, "ok\n".to_owned())).then_some(())
    });
    let config = time_client::Config {
        count: 25,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!(summary.ok, 25, "{}", summary.line());

    // A connection is counted once its reply and FIN are sent, which may
    // be after the client has read them: wait for the last count.
    let text = wait_until(Duration::from_secs(10), "all 25 answers counted", || {
        let (status, text) = http_get(metrics, "/metrics").ok()?;
        let answered = |name| metric(&text, name).is_some_and(|n| n >= 25.0);
        (status == 200
            && answered("time_server_connections_answered_total")
            && answered("time_server_reply_seconds_count"))
        .then_some(text)
    });
    for (name, value) in [
        ("time_server_connections_accepted_total", 25.0),
        ("time_server_connections_answered_total", 25.0),
        ("time_server_connections_failed_total", 0.0),
        ("time_server_reply_seconds_count", 25.0),
        ("time_server_registrations", 1.0),
        ("time_server_zookeeper_connected", 1.0),
    ] {
        assert_eq!(metric(&text, name), Some(value), "{name} in:\n{text}");
    }

    // Every ZooKeeper call is timed: the registration made at least a
    // create.
    assert!(
        metric(
            &text,
            "time_server_zookeeper_request_seconds_count{op=\"create\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // Prometheus's own parser (promtool): it parses; its only remarks are
    // lint, on OpenMetrics counters (HELP on the name, samples on _total).
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/zk.sh install installs prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writes");
    let output = promtool.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_ne!(output.status.code(), Some(1), "a parse error: {said}");
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.ends_with("_total no help text"), "promtool: {line}");
    }
}

#[test]
fn healthz_says_503_while_zookeeper_is_down_and_200_again_after() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--session-timeout",
        "4s",
    ]);
    server.registered(1);
    let metrics = server.logged_addr("metrics=");
    let health = || {
        http_get(metrics, "/healthz")
            .map(|(status, _)| status)
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(10), "healthy", || {
        (health() == 200).then_some(())
    });
    zk.kill();
    let (_, reason) = wait_until(
        Duration::from_secs(30),
        "503 while ZooKeeper is down",
        || {
            http_get(metrics, "/healthz")
                .ok()
                .filter(|(status, _)| *status == 503)
        },
    );
    assert!(reason.contains("ZooKeeper unreachable"), "{reason}");
    zk.restart().expect("ZooKeeper restarts");
    wait_until(Duration::from_secs(60), "200 again", || {
        (health() == 200).then_some(())
    });
}

/// A stop deletes the registrations first, then serves its drain: the
/// registrations gauge and `/healthz` say so meanwhile, rather than the
/// count from the start and a re-registration that is not happening.
#[test]
fn during_a_stops_drain_the_registrations_gauge_is_zero_and_healthz_says_stopping() {
    let zk = zookeeper();
    let (mut server, _, metrics) = super::start_with_metrics_and(&zk, &["--drain", "60s"]);
    let gauge = || {
        metric(
            &http_get(metrics, "/metrics").ok()?.1,
            "time_server_registrations",
        )
    };
    wait_until(Duration::from_secs(10), "one registration counted", || {
        (gauge() == Some(1.0)).then_some(())
    });
    let observer = crate::support::observer(&zk);
    server.signal("TERM");
    wait_until(Duration::from_secs(20), "the node deleted", || {
        crate::support::children(&observer, "/go_servers")
            .is_empty()
            .then_some(())
    });
    assert_eq!(gauge(), Some(0.0), "{}", server.stderr());
    let (status, reason) = http_get(metrics, "/healthz").expect("served during the drain");
    assert_eq!(status, 503);
    assert!(reason.contains("stopping"), "{reason}");
    // A second signal ends the drain at once.
    server.signal("TERM");
    server.wait(Duration::from_secs(30));
}

/// A stop answers the connections accepted after its switch (and those
/// left in the backlog): they are counted like every other, and the
/// server's own wake-up connections are not.
#[test]
fn replies_given_while_the_server_stops_are_counted_exactly() {
    use std::io::Read;
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let zk = zookeeper();
    let listen = format!("127.0.0.1:{}", crate::support::free_ports(1)[0]);
    let addr: SocketAddr = listen.parse().expect("an address");
    let mut server = ServerProcess::start(&[
        "--zk",
        &zk.connect_string(),
        "--listen",
        &listen,
        "--metrics-listen",
        "127.0.0.1:0",
        "--drain",
        "0s",
    ]);
    server.registered(1);
    let metrics = server.logged_addr("metrics=");
    let ask = |stream: &mut TcpStream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        reply.starts_with(format!("{addr}: ").as_bytes())
    };
    // An idle client: the stop waits for it (2 s at most), and the metrics
    // port stays up meanwhile. Clients keep coming until refused.
    let mut idle = TcpStream::connect(addr).expect("connects");
    let _ = idle.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = idle.read(&mut [0u8; 256]);
    let answered = AtomicUsize::new(1);
    let refused = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while !refused.load(Ordering::SeqCst) {
                    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                        Ok(mut stream) => {
                            if ask(&mut stream) {
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(_) => refused.store(true, Ordering::SeqCst),
                    }
                }
            });
        }
        // Clients under way before the stop, not a wait for anything.
        std::thread::sleep(Duration::from_millis(300));
        server.signal("TERM");
    });
    let answered = answered.load(Ordering::SeqCst) as f64;
    // A reply is counted just after it is sent: poll, while the idle
    // client holds the stop.
    let count = |name| metric(&http_get(metrics, "/metrics").ok()?.1, name);
    let counted = zkutil::testing::poll_until(
        Duration::from_millis(1500),
        Duration::from_millis(20),
        || {
            let counted = count("time_server_connections_answered_total")?;
            (counted >= answered).then_some(counted)
        },
    )
    .or_else(|| count("time_server_connections_answered_total"));
    let accepted = count("time_server_connections_accepted_total");
    drop(idle);
    server.wait(Duration::from_secs(30));
    assert_eq!(
        counted,
        Some(answered),
        "replies the clients got against time_server_connections_answered_total \
         (accepted_total {accepted:?})"
    );
    assert_eq!(accepted, Some(answered), "accepted_total");
}
