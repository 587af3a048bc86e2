//! Hostile servers and hostile registry data: each bad attempt is a
//! one-line error within the deadline, then the request succeeds elsewhere;
//! bad registry entries are skipped with one warning each.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use zkutil::{BasePath, Endpoint, Metadata, Registration, SessionConfig};

use zkutil::testing::{Behaviour, Responder};

use crate::support::{Servers, run_client, zookeeper};

#[test]
fn each_hostile_server_is_a_one_line_error_then_the_request_succeeds_elsewhere() {
    let zk = zookeeper();
    let _good = Servers::start(&zk, "/go_servers", 1);
    let session = SessionConfig::new(zk.connect_string())
        .connect()
        .map(Arc::new)
        .expect("connects to ZooKeeper");
    let hosts = zk.connect_string();
    let cases = [
        (Behaviour::HugeReply, "is longer than 4096 bytes"),
        (Behaviour::EndlessReply, "is longer than 4096 bytes"),
        (Behaviour::NoReply, "timed out"),
        (Behaviour::NotUtf8, "not UTF-8 text"),
        // Closing without reading: an empty reply, or a reset if our
        // request arrived first.
        (
            Behaviour::ImmediateClose,
            "empty reply|reset by peer|not connected|Broken pipe",
        ),
    ];
    for (how, causes) in cases {
        let fake = Responder::start(how).expect("a misbehaving server");
        let endpoint = Endpoint::new(fake.addr());
        let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "fake");
        let registration = Registration::register(
            &session,
            &BasePath::from_static("/go_servers"),
            endpoint,
            &metadata,
        )
        .expect("registers");
        let started = Instant::now();
        // Round robin: the fake server gets one of the first two requests.
        let output = run_client(&[
            "--zk",
            &hosts,
            "--count",
            "4",
            "--interval",
            "0s",
            "--strategy",
            "round-robin",
            "--timeout",
            "500ms",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{how:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{how:?}: took {:?}",
            started.elapsed()
        );
        let failures: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("retrying on another server"))
            .collect();
        assert_eq!(failures.len(), 1, "{how:?}: {stderr}");
        let named = causes.split('|').any(|cause| failures[0].contains(cause));
        assert!(
            named && failures[0].contains(&fake.addr().to_string()),
            "{how:?}: {}",
            failures[0]
        );
        assert!(
            stderr.contains("4 ok, 0 failed (1 retried)"),
            "{how:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{how:?}: {stderr}");
        registration.deregister().expect("deregisters");
    }
}

#[test]
fn hostile_registry_entries_are_skipped_with_one_warning_each_and_valid_ones_used() {
    let zk = zookeeper();
    let session = SessionConfig::new(zk.connect_string())
        .connect()
        .map(Arc::new)
        .expect("connects to ZooKeeper");
    // A valid IPv6 server next to an IPv4 one.
    let v6 = TcpListener::bind("[::1]:0").expect("binds");
    let v6_addr = v6.local_addr().expect("a bound address");
    let v6_server = std::thread::spawn(move || {
        for stream in v6.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.write_all(
                format!(
                    "{v6_addr}: {}\n",
                    humantime::format_rfc3339(SystemTime::now())
                )
                .as_bytes(),
            );
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read_to_end(&mut Vec::new());
        }
    });
    let v6_endpoint = Endpoint::new(v6_addr);
    let _v6_reg = Registration::register(
        &session,
        &BasePath::from_static("/go_servers"),
        v6_endpoint,
        &Metadata::for_this_process(v6_endpoint, SystemTime::now(), "v6"),
    )
    .expect("registers");
    let long_name = "9".repeat(1024);
    let bad_names = [
        "foo",
        "1.2.3.4:99999",
        "256.0.0.1:80",
        ":80",
        long_name.as_str(),
    ];
    for name in bad_names {
        session
            .create_ephemeral(&format!("/go_servers/{name}"), b"{}")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let hosts = zk.connect_string();
    let output = run_client(&[
        "--zk",
        &hosts,
        "--count",
        "20",
        "--interval",
        "10ms",
        "--strategy",
        "round-robin",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("20 requests: 20 ok, 0 failed\n"),
        "{stderr}"
    );
    assert!(
        stdout_hosts(&output.stdout).contains(&v6_endpoint.to_string()),
        "the IPv6 server was never used"
    );
    assert_eq!(
        stderr.matches("skipping malformed child").count(),
        bad_names.len(),
        "{stderr}"
    );
    drop(v6_server);
}

fn stdout_hosts(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once("] ")?.1.split(' ').next().map(str::to_owned))
        .filter(|server| server != "FAILED")
        .collect()
}
