//! `zkutil render` in front of a real HAProxy 2.6 (Debian's): the
//! ready-made template renders the registered time-servers, HAProxy
//! serves them, and every change of the registry reaches it through a
//! seamless master-worker reload, with no request failing on the way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zkutil::testing::{TestProcess, http_get, metric_value, poll_until, wait_until};

use crate::support::{ServerProcess, ask, zkutil_binary, zookeeper};

/// A ready-made template of `zkutil/cli/templates/`.
pub(crate) fn template(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../zkutil/cli/templates")
        .join(name)
}

/// `zkutil --zk hosts render args…`, logging at info.
pub(crate) fn render(hosts: &str, args: &[&str], envs: &[(&str, &str)]) -> TestProcess {
    let mut all = vec!["--zk", hosts, "render"];
    all.extend_from_slice(args);
    let mut envs = envs.to_vec();
    envs.push(("RUST_LOG", "info"));
    TestProcess::start(zkutil_binary(), &all, &envs)
}

/// [`render`] with `--once`, which must exit 0.
pub(crate) fn render_once(hosts: &str, args: &[&str], envs: &[(&str, &str)]) {
    let mut all = vec!["--once"];
    all.extend_from_slice(args);
    let mut once = render(hosts, &all, envs);
    let status = once.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}: {}", once.stderr_text());
}

/// A sample of `zkutil render`'s metrics on `addr` (0 when absent).
pub(crate) fn render_metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, text) = http_get(addr, "/metrics").expect("metrics answer");
    metric_value(&text, series).unwrap_or(0.0)
}

/// A free port on 127.0.0.2, where no ZooKeeper fixture looks for ports.
fn free_port_on_127_0_0_2() -> u16 {
    TcpListener::bind("127.0.0.2:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.2")
        .port()
}

/// HAProxy in master-worker mode (`-W`, in the foreground), dying with the
/// test process (a parent-death signal).
pub(crate) struct Haproxy {
    process: TestProcess,
    /// Where clients connect.
    pub(crate) addr: SocketAddr,
    /// The admin socket of the current worker.
    stats: PathBuf,
    /// The master's command socket.
    master: PathBuf,
}

impl Haproxy {
    /// The environment the template reads for an HAProxy in `dir`.
    pub(crate) fn env(dir: &Path) -> (String, String) {
        let addr = format!("127.0.0.2:{}", free_port_on_127_0_0_2());
        (addr, dir.join("admin.sock").display().to_string())
    }

    /// Starts HAProxy on `config` (rendered with `bind` and `stats`), once
    /// `haproxy -c` accepts it; waits until it accepts connections.
    pub(crate) fn start(config: &Path, (bind, stats): &(String, String)) -> Haproxy {
        let config = config.to_str().expect("a UTF-8 path");
        let checked = std::process::Command::new("haproxy")
            .args(["-c", "-f", config])
            .output()
            .expect("runs haproxy -c (scripts/zk.sh install installs it)");
        assert!(
            checked.status.success(),
            "haproxy -c refuses the rendered file: {}{}\n{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr),
            std::fs::read_to_string(config).unwrap_or_default()
        );
        let stats = PathBuf::from(stats);
        let master = stats.with_file_name("master.sock");
        let master_text = master.to_str().expect("a UTF-8 path");
        let process = TestProcess::start(
            "setpriv",
            &[
                "--pdeathsig",
                "KILL",
                "haproxy",
                "-W",
                "-db",
                "-S",
                master_text,
                "-f",
                config,
            ],
            &[],
        );
        let addr: SocketAddr = bind.parse().expect("an address");
        let up = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        assert!(
            up.is_some(),
            "HAProxy never listened on {addr}:\n{}",
            process.stderr_text()
        );
        Haproxy {
            process,
            addr,
            stats,
            master,
        }
    }

    /// The master's PID: what a reload signals.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server that answered a request through HAProxy (the reply
    /// names it: `ip:port: time`).
    pub(crate) fn ask(&self) -> Result<String, String> {
        ask_through(self.addr)
    }

    /// `show stat` from the current worker: (server, status) of each server.
    pub(crate) fn servers(&self) -> Vec<(String, String)> {
        command(&self.stats, "show stat")
            .lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| fields.len() > 17 && !["FRONTEND", "BACKEND"].contains(&fields[1]))
            .filter(|fields| !fields[0].starts_with('#'))
            .map(|fields| (fields[1].to_owned(), fields[17].to_owned()))
            .collect()
    }

    /// Workers of earlier configurations still running (finishing their
    /// connections): in the master's `show proc`, HAProxy 2.6 lists them
    /// among the workers with the reloads they survived (the current one
    /// has survived none).
    pub(crate) fn old_workers(&self) -> Option<usize> {
        let text = command(&self.master, "show proc");
        let (_, workers) = text.split_once("# workers")?;
        Some(
            workers
                .lines()
                .skip(1)
                .take_while(|line| !line.starts_with('#'))
                .filter(|line| {
                    line.split_whitespace()
                        .nth(2)
                        .is_some_and(|reloads| reloads != "0")
                })
                .count(),
        )
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        self.process.stderr_text()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers before it exits.
        self.process.signal("TERM");
        let _ = poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
            self.process.try_status()
        });
    }
}

/// `line` sent to the HAProxy socket at `path`: the answer (empty when
/// the socket does not answer).
fn command(path: &Path, line: &str) -> String {
    let Ok(mut socket) = std::os::unix::net::UnixStream::connect(path) else {
        return String::new();
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
    // The master's socket waits for more commands unless told to quit.
    let _ = socket.write_all(format!("{line}\nquit\n").as_bytes());
    let mut text = String::new();
    let _ = socket.take(1 << 20).read_to_string(&mut text);
    text
}

/// The server that answered a request through `addr` (the reply names
/// it: `ip:port: time`).
fn ask_through(addr: SocketAddr) -> Result<String, String> {
    let reply = ask(addr).map_err(|err| err.to_string())?;
    reply
        .split_once(": ")
        .map(|(server, _)| server.to_owned())
        .ok_or_else(|| format!("not a time reply: {reply:?}"))
}

/// The name the template gives `endpoint`'s server.
pub(crate) fn server_id(endpoint: &str) -> String {
    endpoint.replace('.', "_").replace(':', "-")
}

/// Each request's time, and the server that answered or the failure.
pub(crate) type Answers = Vec<(Instant, Result<String, String>)>;

/// Requests through HAProxy every 10 ms on a thread, until dropped: each
/// answer's server, or the failure.
pub(crate) struct Traffic {
    stop: Arc<AtomicBool>,
    made: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Answers>>,
}

impl Traffic {
    pub(crate) fn start(haproxy: &Haproxy) -> Traffic {
        let addr = haproxy.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicUsize::new(0));
        let (stopping, counted) = (stop.clone(), made.clone());
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                seen.push((Instant::now(), ask_through(addr)));
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        Traffic {
            stop,
            made,
            thread: Some(thread),
        }
    }

    /// Requests made so far.
    pub(crate) fn count(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    /// Stops it: every answer, in order.
    pub(crate) fn finish(mut self) -> Answers {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map(|thread| thread.join().expect("the traffic thread"))
            .unwrap_or_default()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A time-server with one listener under `base`: its endpoint.
pub(crate) fn time_server(hosts: &str, base: &str) -> (ServerProcess, String) {
    let server = ServerProcess::start(&[
        "--zk",
        hosts,
        "--base-path",
        base,
        "--listen",
        "127.0.0.1:0",
    ]);
    let endpoint = server.registered(1).remove(0);
    (server, endpoint)
}

#[test]
fn haproxy_serves_the_registry_and_follows_it_through_reloads_without_failing_a_request() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-haproxy";
    let (_a, first) = time_server(&hosts, base);
    let (_b, second) = time_server(&hosts, base);
    let dir = tempfile::tempdir().expect("a folder");
    let config = dir.path().join("haproxy.cfg");
    let env = Haproxy::env(dir.path());
    let spec = format!(
        "{}:{}",
        template("haproxy.cfg.j2").display(),
        config.display()
    );
    let envs = [
        ("HAPROXY_BIND", env.0.as_str()),
        ("HAPROXY_STATS_SOCKET", env.1.as_str()),
    ];
    render_once(&hosts, &["--path", base, "--template", &spec], &envs);
    let haproxy = Haproxy::start(&config, &env);

    // Each registered server answers through HAProxy.
    let mut answered = std::collections::BTreeSet::new();
    for _ in 0..20 {
        answered.insert(haproxy.ask().expect("an answer through HAProxy"));
    }
    assert_eq!(
        answered,
        [first.clone(), second.clone()].into_iter().collect()
    );

    let reload = format!("kill -USR2 {}", haproxy.pid());
    let follower = render(
        &hosts,
        &[
            "--path",
            base,
            "--template",
            &spec,
            "--check",
            "haproxy -c -q -f {}",
            "--exec",
            &reload,
        ],
        &envs,
    );
    let traffic = Traffic::start(&haproxy);

    // A new server: re-rendered, reloaded, and answering through HAProxy.
    let (_c, third) = time_server(&hosts, base);
    let registered = Instant::now();
    wait_until(
        Duration::from_secs(20),
        "the new server answers through HAProxy",
        || (haproxy.ask().ok()? == third).then_some(()),
    );
    eprintln!(
        "the new server answered through HAProxy {:?} after its registration",
        registered.elapsed()
    );

    // Taken out of rotation: once the new worker runs, it gets nothing.
    let zkutil = std::process::Command::new(zkutil_binary())
        .args([
            "--zk",
            &hosts,
            "--base-path",
            base,
            "disable",
            &first,
            "--reason",
            "test",
        ])
        .output()
        .expect("runs zkutil disable");
    assert!(
        zkutil.status.success(),
        "{}",
        String::from_utf8_lossy(&zkutil.stderr)
    );
    let first_id = server_id(&first);
    wait_until(
        Duration::from_secs(20),
        "HAProxy's new worker has it in maintenance",
        || {
            haproxy
                .servers()
                .iter()
                .any(|(server, status)| *server == first_id && status == "MAINT")
                .then_some(())
        },
    );
    // The old worker may still accept until the master has stopped it.
    wait_until(Duration::from_secs(20), "the old workers are gone", || {
        (haproxy.old_workers()? == 0).then_some(())
    });
    let after_reload = Instant::now();
    let made = traffic.count();
    wait_until(
        Duration::from_secs(20),
        "50 requests after the reload",
        || (traffic.count() >= made + 50).then_some(()),
    );
    let answers = traffic.finish();
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, answer)| answer.is_err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed through the reloads: {failed:?}\nHAProxy:\n{}\nrender:\n{}",
        failed.len(),
        answers.len(),
        haproxy.log(),
        follower.stderr_text()
    );
    let late: Vec<_> = answers
        .iter()
        .filter(|(at, answer)| *at >= after_reload && answer.as_deref() == Ok(first.as_str()))
        .collect();
    assert!(
        late.is_empty(),
        "{} requests reached the disabled server after the reload",
        late.len()
    );
    eprintln!("{} requests through HAProxy, none failed", answers.len());
}
