//! `zkutil register --check`: the sidecar keeps a service in rotation only
//! while its health checks pass. The services here are real processes: a
//! time-server (its own `/healthz`, frozen with SIGSTOP), a TCP port this
//! test opens and closes, and a command that forks and hangs.
//!
//! Services whose port a test closes and opens again listen on 127.0.0.2:
//! a port given back on 127.0.0.1 could be taken meanwhile by a ZooKeeper
//! fixture of a test running beside (its quorum and election ports are
//! found free on 127.0.0.1), and a node without its election port never
//! elects a leader.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use zkutil::testing::TestProcess;
use zkutil::{BasePath, Session};

use crate::support::{ServerProcess, observer, zkutil_binary, zookeeper};

/// What clients see of `endpoint` under `base`: in rotation, and why not.
pub(crate) type Rotation = Option<(bool, Option<String>)>;

pub(crate) fn rotation(session: &Session, base: &str, endpoint: &str) -> Rotation {
    let base = BasePath::new(base).expect("a base path");
    let listed = zkutil::list_instances(session, &base, true).ok()?;
    let instance = listed
        .iter()
        .find(|instance| instance.endpoint().to_string() == endpoint)?;
    Some((
        instance.is_enabled(),
        instance.disabled_reason().map(str::to_owned),
    ))
}

/// Waits up to `deadline` for `endpoint`'s rotation to satisfy `wanted`.
#[track_caller]
pub(crate) fn wait_rotation(
    session: &Session,
    (base, endpoint): (&str, &str),
    what: &str,
    sidecar: &TestProcess,
    wanted: impl Fn(&Rotation) -> bool,
) {
    let mut last = None;
    let seen =
        zkutil::testing::poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
            let now = rotation(session, base, endpoint);
            let ok = wanted(&now);
            last = Some(now);
            ok.then_some(())
        });
    assert!(
        seen.is_some(),
        "{what}: never; last {last:?}\nsidecar:\n{}",
        sidecar.stderr_text()
    );
}

pub(crate) fn in_rotation(rotation: &Rotation) -> bool {
    matches!(rotation, Some((true, None)))
}

/// Out of rotation by a health check whose cause starts with `check`.
pub(crate) fn out_by_check(check: &str) -> impl Fn(&Rotation) -> bool + '_ {
    move |rotation| {
        matches!(rotation, Some((false, Some(reason)))
            if reason.starts_with(&format!("health check failing: {check}")))
    }
}

/// `zkutil register endpoint` under `base` with `args` after it.
pub(crate) fn sidecar(hosts: &str, base: &str, endpoint: &str, args: &[&str]) -> TestProcess {
    sidecar_logging(hosts, (base, endpoint), args, "info")
}

/// [`sidecar`] with `RUST_LOG=filter`.
pub(crate) fn sidecar_logging(
    hosts: &str,
    (base, endpoint): (&str, &str),
    args: &[&str],
    filter: &str,
) -> TestProcess {
    let mut all = vec!["--zk", hosts, "--base-path", base, "register", endpoint];
    all.extend_from_slice(args);
    let zkutil = zkutil_binary();
    TestProcess::start(
        zkutil.to_str().expect("a UTF-8 path"),
        &all,
        &[("RUST_LOG", filter)],
    )
}

/// `zkutil disable|enable endpoint` under `base`, which must succeed.
pub(crate) fn operator(hosts: &str, base: &str, args: &[&str]) {
    let output = std::process::Command::new(zkutil_binary())
        .args(["--zk", hosts, "--base-path", base])
        .args(args)
        .output()
        .expect("runs zkutil");
    assert!(
        output.status.success(),
        "zkutil {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn stop(mut sidecar: TestProcess) {
    sidecar.signal("TERM");
    let status = sidecar.wait(Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", sidecar.stderr_text());
}

#[test]
fn a_frozen_time_server_goes_out_of_rotation_and_comes_back_when_it_thaws() {
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
    let endpoint = server.registered(1).remove(0);
    let check = format!("http://{}/healthz", server.logged_addr("metrics="));
    // The time-server registers itself under /go_servers: the sidecar's
    // registration of the same address lives under a base path of its own.
    let sidecar = sidecar(
        &hosts,
        "/sidecar",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--check-timeout",
            "300ms",
            "--rise",
            "2",
            "--fall",
            "2",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar", endpoint.as_str());
    wait_rotation(
        &watcher,
        at,
        "in rotation once the checks pass",
        &sidecar,
        in_rotation,
    );
    server.signal("STOP");
    let frozen = Instant::now();
    wait_rotation(
        &watcher,
        at,
        "out of rotation while frozen",
        &sidecar,
        out_by_check(&check),
    );
    // fall × interval + timeout is 0.7 s; the wait above allows 20 s.
    eprintln!("out of rotation {:?} after SIGSTOP", frozen.elapsed());
    server.signal("CONT");
    wait_rotation(
        &watcher,
        at,
        "back in rotation once thawed",
        &sidecar,
        in_rotation,
    );
    stop(sidecar);
    assert_eq!(
        rotation(&watcher, "/sidecar", &endpoint),
        None,
        "deregistered on SIGTERM"
    );
}

#[test]
fn an_operators_disable_outlives_passing_checks_and_an_enable_does_not_outlive_failing_ones() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let service = TcpListener::bind("127.0.0.2:0").expect("a service port");
    let endpoint = service.local_addr().expect("bound").to_string();
    let check = format!("tcp://{endpoint}");
    let sidecar = sidecar(
        &hosts,
        "/sidecar-ops",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "100ms",
            "--rise",
            "1",
            "--fall",
            "1",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar-ops", endpoint.as_str());
    wait_rotation(&watcher, at, "in rotation", &sidecar, in_rotation);

    operator(
        &hosts,
        "/sidecar-ops",
        &["disable", &endpoint, "--reason", "maintenance"],
    );
    // Twenty passing checks later, the operator's word still stands.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(
            rotation(&watcher, "/sidecar-ops", &endpoint),
            Some((false, Some("maintenance".to_owned()))),
            "a passing check undid the operator's disable:\n{}",
            sidecar.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    operator(&hosts, "/sidecar-ops", &["enable", &endpoint]);
    wait_rotation(
        &watcher,
        at,
        "in rotation after enable",
        &sidecar,
        in_rotation,
    );

    drop(service);
    wait_rotation(
        &watcher,
        at,
        "out once the port closed",
        &sidecar,
        out_by_check(&check),
    );
    // An operator's enable does not put a failing service back for long.
    operator(&hosts, "/sidecar-ops", &["enable", &endpoint]);
    wait_rotation(
        &watcher,
        at,
        "out again after an enable while failing",
        &sidecar,
        out_by_check(&check),
    );

    let _service = TcpListener::bind(&endpoint).expect("the same port again");
    wait_rotation(
        &watcher,
        at,
        "back once the port opened",
        &sidecar,
        in_rotation,
    );
    stop(sidecar);
}

/// ZooKeeper away while the service fails: the sidecar cannot write then,
/// and writes the state as it is once ZooKeeper is back.
#[test]
fn a_failure_while_zookeeper_is_away_is_written_when_it_is_back() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let service = TcpListener::bind("127.0.0.1:0").expect("a service port");
    let endpoint = service.local_addr().expect("bound").to_string();
    let check = format!("tcp://{endpoint}");
    // A session that outlives the outage: the node stays, only its state is
    // to be written.
    let sidecar = sidecar(
        &hosts,
        "/sidecar-away",
        &endpoint,
        &[
            "--session-timeout",
            "30s",
            "--check",
            &check,
            "--check-interval",
            "100ms",
            "--rise",
            "1",
            "--fall",
            "1",
        ],
    );
    let at = ("/sidecar-away", endpoint.as_str());
    {
        let watcher = observer(&zk);
        wait_rotation(&watcher, at, "in rotation", &sidecar, in_rotation);
    }
    zk.kill();
    drop(service);
    sidecar.wait_for_log(
        "cannot write the health state yet",
        1,
        Duration::from_secs(20),
    );
    zk.restart().expect("ZooKeeper comes back");
    let watcher = observer(&zk);
    wait_rotation(
        &watcher,
        at,
        "out once ZooKeeper is back",
        &sidecar,
        out_by_check(&check),
    );
    stop(sidecar);
}

/// With `--on-fail deregister` the node goes while failing: an operator's
/// disable of it comes back with it, not undone by the passing checks.
#[test]
fn with_deregister_an_operators_disable_comes_back_with_the_node() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let service = TcpListener::bind("127.0.0.2:0").expect("a service port");
    let endpoint = service.local_addr().expect("bound").to_string();
    let check = format!("tcp://{endpoint}");
    let sidecar = sidecar(
        &hosts,
        "/sidecar-dereg",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "100ms",
            "--rise",
            "1",
            "--fall",
            "1",
            "--on-fail",
            "deregister",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar-dereg", endpoint.as_str());
    wait_rotation(&watcher, at, "in rotation", &sidecar, in_rotation);
    operator(
        &hosts,
        "/sidecar-dereg",
        &["disable", &endpoint, "--reason", "maint"],
    );
    let maint = |r: &Rotation| matches!(r, Some((false, Some(reason))) if reason == "maint");
    wait_rotation(&watcher, at, "disabled by the operator", &sidecar, maint);
    drop(service);
    wait_rotation(
        &watcher,
        at,
        "deregistered while failing",
        &sidecar,
        Option::is_none,
    );
    let _service = TcpListener::bind(&endpoint).expect("the same port again");
    wait_rotation(&watcher, at, "back, still the operator's", &sidecar, maint);
    stop(sidecar);
}
