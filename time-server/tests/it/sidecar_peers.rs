//! The sidecar in front of services that will never link zkutil: nginx
//! from Debian (an HTTP check) and the post's own Go server (a TCP check),
//! each registered by the sidecar under a base path of its own, taken out
//! of rotation when it stops and, for nginx, back when it starts again.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::sidecar::{in_rotation, out_by_check, sidecar, stop, wait_rotation};
use crate::support::{observer, zookeeper};

/// nginx serving `200 ok` on `port`, in the foreground, one process; killed
/// on drop.
struct Nginx(Child);

impl Nginx {
    fn start(dir: &Path, port: u16) -> Nginx {
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                 server {{ listen 127.0.0.2:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
            ),
        )
        .expect("writes nginx.conf");
        let child = Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts nginx (scripts/zk.sh install installs it)");
        let up =
            zkutil::testing::poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
                std::net::TcpStream::connect(("127.0.0.2", port))
                    .ok()
                    .map(drop)
            });
        assert!(up.is_some(), "nginx did not listen on {port}");
        Nginx(child)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.2, where the services of these tests listen:
/// closed and opened again, they never take a port a ZooKeeper fixture
/// (on 127.0.0.1) was given.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn nginx_stopped_goes_out_of_rotation_and_started_comes_back() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = free_port();
    let endpoint = format!("127.0.0.2:{port}");
    let check = format!("http://{endpoint}/");
    let nginx = Nginx::start(dir.path(), port);
    let sidecar = sidecar(
        &hosts,
        "/sidecar-nginx",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--rise",
            "2",
            "--fall",
            "2",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar-nginx", endpoint.as_str());
    wait_rotation(
        &watcher,
        at,
        "in rotation while nginx serves",
        &sidecar,
        in_rotation,
    );
    drop(nginx);
    wait_rotation(
        &watcher,
        at,
        "out once nginx stopped",
        &sidecar,
        out_by_check(&check),
    );
    let _nginx = Nginx::start(dir.path(), port);
    wait_rotation(
        &watcher,
        at,
        "back once nginx started",
        &sidecar,
        in_rotation,
    );
    stop(sidecar);
}

#[test]
fn the_posts_go_server_registered_by_the_sidecar_is_called_by_our_client_and_taken_out_when_killed()
{
    let seed =
        zkutil::testing::SeedGo::get().unwrap_or_else(|e| panic!("building the Go peer: {e}"));
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let endpoint = format!("127.0.0.2:{}", free_port());
    let go = seed.server(&hosts, &[&endpoint]);
    let check = format!("tcp://{endpoint}");
    // The Go server writes its own /go_servers/ip:port: the sidecar's
    // registration lives under a base path of its own.
    let sidecar = sidecar(
        &hosts,
        "/sidecar-go",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--rise",
            "1",
            "--fall",
            "2",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar-go", endpoint.as_str());
    wait_rotation(
        &watcher,
        at,
        "in rotation while the Go server listens",
        &sidecar,
        in_rotation,
    );
    let config = time_client::Config {
        count: 5,
        interval: Duration::ZERO,
        base_path: zkutil::BasePath::from_static("/sidecar-go"),
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop_client) = std::sync::mpsc::channel();
    let summary =
        time_client::run(&config, &mut std::io::sink(), &stop_client).expect("the client runs");
    assert_eq!(
        summary.ok, 5,
        "our client through the sidecar's registration: {summary:?}"
    );
    go.signal("KILL");
    wait_rotation(
        &watcher,
        at,
        "out once the Go server was killed",
        &sidecar,
        out_by_check(&check),
    );
    stop(sidecar);
}

/// `--drain`: on SIGTERM the registration goes first, and the sidecar
/// waits the drain out before exiting (what stops the service next waits
/// for it), as the time-server does.
#[test]
fn on_sigterm_the_sidecar_deregisters_then_waits_its_drain_before_exiting() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let service = TcpListener::bind("127.0.0.2:0").expect("a service port");
    let endpoint = service.local_addr().expect("bound").to_string();
    let check = format!("tcp://{endpoint}");
    let mut sidecar = sidecar(
        &hosts,
        "/sidecar-drain",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "100ms",
            "--rise",
            "1",
            "--drain",
            "3s",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar-drain", endpoint.as_str());
    wait_rotation(&watcher, at, "in rotation", &sidecar, in_rotation);
    sidecar.signal("TERM");
    wait_rotation(
        &watcher,
        at,
        "deregistered at once",
        &sidecar,
        Option::is_none,
    );
    assert!(
        sidecar.try_status().is_none(),
        "exited without draining:\n{}",
        sidecar.stderr_text()
    );
    let status = sidecar.wait(Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", sidecar.stderr_text());
}

/// A service healthy 1 s, unhealthy 1 s, checked every 500 ms with rise 3
/// and fall 3: two results of each kind in a row at most, so no state
/// change ever, and the registration never leaves rotation.
#[test]
fn a_flapping_service_never_changes_state_with_rise_and_fall_of_three() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let port = free_port();
    let endpoint = format!("127.0.0.2:{port}");
    let check = format!("tcp://{endpoint}");
    let mut service = Some(TcpListener::bind(&endpoint).expect("the service port"));
    let sidecar = sidecar(
        &hosts,
        "/sidecar-flap",
        &endpoint,
        &[
            "--check",
            &check,
            "--check-interval",
            "500ms",
            "--rise",
            "3",
            "--fall",
            "3",
        ],
    );
    let watcher = observer(&zk);
    let at = ("/sidecar-flap", endpoint.as_str());
    wait_rotation(&watcher, at, "in rotation", &sidecar, in_rotation);
    // Periods of 800 ms: a 500 ms interval fits at most two checks in
    // each, as in "1 s up, 1 s down", even with a toggle up to 200 ms late
    // (each waits out a ZooKeeper read first); and at least one.
    let period = Duration::from_millis(800);
    let started = std::time::Instant::now();
    for k in 1..=8u32 {
        let boundary = started + period * k;
        while let Some(left) = boundary.checked_duration_since(std::time::Instant::now()) {
            assert!(
                in_rotation(&crate::sidecar::rotation(
                    &watcher,
                    "/sidecar-flap",
                    &endpoint
                )),
                "a flapping service left rotation after {:?}:\n{}",
                started.elapsed(),
                sidecar.stderr_text()
            );
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        // Down at the first boundary, up at the next, and so on.
        service = match service {
            Some(_) => None,
            None => Some(TcpListener::bind(&endpoint).expect("the port again")),
        };
    }
    assert_eq!(
        sidecar.log_count("failing: fall reached"),
        0,
        "{}",
        sidecar.stderr_text()
    );
    stop(sidecar);
}
