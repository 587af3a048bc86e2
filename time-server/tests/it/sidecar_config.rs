//! `zkutil sidecar --config FILE`: many services from one TOML file, the
//! whole file checked first (every mistake with its line), SIGHUP to add
//! and remove services, and a broken file on SIGHUP changing nothing.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use zkutil::testing::TestProcess;

use crate::sidecar::{in_rotation, out_by_check, rotation, wait_rotation};
use crate::support::{observer, zkutil_binary, zookeeper};

/// A service entry checked by a TCP connect to its own address.
fn entry(name: &str, endpoint: &str) -> String {
    format!(
        "[services.{name}]\nendpoint = \"{endpoint}\"\nbase_path = \"/fleet\"\nchecks = [\"tcp://{endpoint}\"]\n"
    )
}

fn write(path: &Path, text: &str) {
    // Written whole, then renamed: SIGHUP never reads half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).expect("writes the config");
    std::fs::rename(&partial, path).expect("moves it in place");
}

fn check_config(path: &Path) -> std::process::Output {
    std::process::Command::new(zkutil_binary())
        .args(["sidecar", "--check-config", "--config"])
        .arg(path)
        .output()
        .expect("runs zkutil")
}

#[test]
fn a_config_with_mistakes_is_refused_with_every_mistake_and_its_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("sidecar.toml");
    let file = path.display().to_string();

    write(
        &path,
        "rise = 2\n[services.web\nendpoint = \"127.0.0.1:80\"\n",
    );
    let output = check_config(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{file}:2: ")),
        "the syntax error's line: {stderr}"
    );

    write(
        &path,
        "fall = 0\n\
         [services.a]\n\
         endpoint = \"nowhere\"\n\
         checks = [\"tcp://127.0.0.1:80\"]\n\
         [services.b]\n\
         endpoint = \"127.0.0.1:81\"\n\
         checks = [\"ftp://127.0.0.1:1\"]\n\
         on_fail = \"explode\"\n",
    );
    let output = check_config(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for expected in [
        format!("{file}:1: services.a: fall: must be 1 or more"),
        format!("{file}:3: services.a: endpoint: "),
        format!("{file}:7: services.b: checks: "),
        format!("{file}:8: services.b: on_fail: \"explode\""),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    }

    write(
        &path,
        "[services.\"a/b\"]\n\
         endpoint = \"127.0.0.1:80\"\n\
         checks = [\"tcp://127.0.0.1:80\"]\n\
         [services.c]\n\
         endpoint = \"127.0.0.1:81\"\n\
         base_path = \"/s/web\"\n\
         checks = [\"tcp://127.0.0.1:81\"]\n\
         [services.web]\n\
         endpoint = \"127.0.0.1:81\"\n\
         base_path = \"/s\"\n\
         format = \"curator\"\n\
         checks = [\"tcp://127.0.0.1:81\"]\n\
         metadata = { enabled = false }\n",
    );
    let output = check_config(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for expected in [
        format!("{file}:1: services.a/b: service_name: "),
        format!("{file}:13: services.web: metadata: \"enabled\" is the registry's own field"),
        format!("{file}:8: services.web: 127.0.0.1:81 in /s/web is services.c too"),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    }

    write(&path, &entry("web", "127.0.0.1:80"));
    let output = check_config(&path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "web: 127.0.0.1:80 under /fleet (plain), checks: tcp://127.0.0.1:80"
    );
}

#[test]
fn sighup_adds_and_removes_services_and_a_broken_file_keeps_the_running_ones() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let (a, b) = (
        TcpListener::bind("127.0.0.1:0").expect("service a"),
        TcpListener::bind("127.0.0.1:0").expect("service b"),
    );
    let (a, b) = (
        a.local_addr().expect("bound").to_string(),
        b.local_addr().expect("bound").to_string(),
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("sidecar.toml");
    let defaults = "check_interval = \"100ms\"\nrise = 1\n";
    write(&path, &format!("{defaults}{}", entry("a", &a)));
    let zkutil = zkutil_binary();
    let config = path.display().to_string();
    let sidecar = TestProcess::start(
        zkutil.to_str().expect("a UTF-8 path"),
        &[
            "--zk",
            &hosts,
            "sidecar",
            "--config",
            &config,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[("RUST_LOG", "info")],
    );
    let watcher = observer(&zk);
    wait_rotation(
        &watcher,
        ("/fleet", &a),
        "a registered",
        &sidecar,
        in_rotation,
    );
    let metrics = sidecar.logged_addr("metrics=");
    let scrape = || {
        let (status, text) = zkutil::testing::http_get(metrics, "/metrics").expect("scrapes");
        assert_eq!(status, 200, "{text}");
        text
    };
    let text = scrape();
    let a_check = format!("{{service=\"a\",check=\"tcp://{a}\"}}");
    assert_eq!(
        zkutil::testing::metric_value(&text, "zkutil_sidecar_service_healthy{service=\"a\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        zkutil::testing::metric_value(&text, &format!("zkutil_sidecar_check_passing{a_check}")),
        Some(1.0),
        "{text}"
    );
    assert!(
        zkutil::testing::metric_value(
            &text,
            &format!("zkutil_sidecar_check_duration_seconds_count{a_check}")
        )
        .is_some_and(|runs| runs >= 1.0),
        "{text}"
    );
    let (status, _) = zkutil::testing::http_get(metrics, "/healthz").expect("asks");
    assert_eq!(status, 200);

    write(&path, &format!("{defaults}{}", entry("b", &b)));
    sidecar.signal("HUP");
    wait_rotation(&watcher, ("/fleet", &b), "b added", &sidecar, in_rotation);
    wait_rotation(
        &watcher,
        ("/fleet", &a),
        "a removed",
        &sidecar,
        Option::is_none,
    );
    let gone =
        zkutil::testing::poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
            (!scrape().contains("service=\"a\"")).then_some(())
        });
    assert!(
        gone.is_some(),
        "a's series stay after its removal:\n{}",
        scrape()
    );

    write(&path, "[services.b\n");
    sidecar.signal("HUP");
    sidecar.wait_for_log("keeping the running config", 1, Duration::from_secs(20));
    // Ten check intervals later, b is still there: nothing was stopped.
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < until {
        assert!(
            in_rotation(&rotation(&watcher, "/fleet", &b)),
            "a broken file changed the running services:\n{}",
            sidecar.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // b's checks changed (to a port nobody listens on): updated in place,
    // the same node taken out of rotation, not a new one made.
    let created = |session: &zkutil::Session| {
        session
            .stat(&format!("/fleet/{b}"))
            .ok()
            .flatten()
            .map(|stat| stat.ctime_ms())
    };
    let before = created(&watcher);
    let closed = zkutil::testing::free_ports(1).expect("a free port")[0];
    let failing = format!("tcp://127.0.0.1:{closed}");
    write(
        &path,
        &format!(
            "{defaults}[services.b]\nendpoint = \"{b}\"\nbase_path = \"/fleet\"\nchecks = [\"{failing}\"]\nfall = 1\n"
        ),
    );
    sidecar.signal("HUP");
    wait_rotation(
        &watcher,
        ("/fleet", &b),
        "b out by its new check",
        &sidecar,
        out_by_check(&failing),
    );
    assert_eq!(
        created(&watcher),
        before,
        "b was registered anew, not updated in place"
    );

    let mut sidecar = sidecar;
    sidecar.signal("TERM");
    let status = sidecar.wait(Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", sidecar.stderr_text());
    assert_eq!(
        rotation(&watcher, "/fleet", &b),
        None,
        "deregistered on SIGTERM"
    );
}

/// A SIGHUP that changes a service's registration (here its weight),
/// while a slow check runs: the service is registered again with the new
/// weight, never lost, and an operator's disable goes over to the new node.
#[test]
fn sighup_changing_a_registration_under_a_slow_check_keeps_it_and_the_operators_disable() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let endpoint = "127.0.0.1:18126";
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("sidecar.toml");
    let file = |weight: u32| {
        format!(
            "check_interval = \"100ms\"\nrise = 1\n[services.slow]\nendpoint = \"{endpoint}\"\n\
             base_path = \"/fleet-slow\"\nchecks = [\"exec:sleep 0.5\"]\nweight = {weight}\n"
        )
    };
    write(&path, &file(100));
    let zkutil = zkutil_binary();
    let config = path.display().to_string();
    let sidecar = TestProcess::start(
        zkutil.to_str().expect("a UTF-8 path"),
        &["--zk", &hosts, "sidecar", "--config", &config],
        &[("RUST_LOG", "info")],
    );
    let watcher = observer(&zk);
    let at = ("/fleet-slow", endpoint);
    wait_rotation(&watcher, at, "in rotation", &sidecar, in_rotation);
    let output = std::process::Command::new(&zkutil)
        .args([
            "--zk",
            &hosts,
            "--base-path",
            "/fleet-slow",
            "disable",
            endpoint,
        ])
        .args(["--reason", "maintenance"])
        .output()
        .expect("runs zkutil");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    write(&path, &file(300));
    sidecar.signal("HUP");
    let weight = || {
        let base = zkutil::BasePath::from_static("/fleet-slow");
        zkutil::list_instances(&watcher, &base, true)
            .ok()?
            .iter()
            .find(|i| i.endpoint().to_string() == endpoint)
            .map(zkutil::Instance::weight)
    };
    let reweighed =
        zkutil::testing::poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
            (weight() == Some(300)).then_some(())
        });
    assert!(
        reweighed.is_some(),
        "never registered with weight 300:\n{}",
        sidecar.stderr_text()
    );
    // Ten checks later it is there, and still the operator's.
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        assert_eq!(
            rotation(&watcher, "/fleet-slow", endpoint),
            Some((false, Some("maintenance".to_owned()))),
            "{}",
            sidecar.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut sidecar = sidecar;
    sidecar.signal("TERM");
    assert!(sidecar.wait(Duration::from_secs(15)).success());
}
