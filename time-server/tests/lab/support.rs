//! The lab's setup for these tests: a 3-node ensemble, each node in its
//! own host, the binaries started in hosts, and what the control host (the
//! test process) observes from outside.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use zkutil::Session;
use zkutil::testing::lab::{Host, Lab, WanLink};
use zkutil::testing::{TestProcess, ZkEnsemble};

/// Where the registrations go.
pub const BASE: &str = "/lab";
/// The time service's port in every server host (each host has its own).
pub const TIME_PORT: u16 = 8897;
/// The metrics and health port in every server host.
pub const METRICS_PORT: u16 = 9100;

/// A lab with three ZooKeeper hosts serving an ensemble. Fields drop in
/// order: the JVMs, then the lab, then the lock.
pub struct ZkLab {
    pub ensemble: ZkEnsemble,
    pub lab: Lab,
    pub zk: Vec<Host>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

/// The right to build a lab: one test at a time holds it; `None`, after
/// printing why, when this process cannot build one (not root).
pub fn one_at_a_time() -> Option<MutexGuard<'static, ()>> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if let Err(why) = Lab::available() {
        println!("skipped: {why}");
        return None;
    }
    // A test that failed still leaves a usable lock: its lab was dropped.
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    zkutil::testing::init_test_logging();
    Some(guard)
}

/// The lab for one test, with `zk1`–`zk3` serving; `None`, after printing
/// why, when this process cannot build one (not root).
pub fn zk_lab() -> Option<ZkLab> {
    let guard = one_at_a_time()?;
    let mut lab = Lab::new().expect("a lab");
    let zk: Vec<Host> = ["zk1", "zk2", "zk3"]
        .iter()
        .map(|name| lab.host(name).expect("a ZooKeeper host"))
        .collect();
    let ensemble = lab
        .ensemble(&zk.iter().collect::<Vec<_>>())
        .unwrap_or_else(|e| panic!("the ensemble in the lab: {e}"));
    Some(ZkLab {
        ensemble,
        lab,
        zk,
        _one_at_a_time: guard,
    })
}

/// Two regions: voters `zk1`–`zk3` in A, observers `b1`, `b2` in B that
/// reach A through a [`WanLink`] of `rtt`; `zk` lists all five, voters
/// first. `None`, after printing why, when this process cannot build one.
pub fn region_lab(rtt: Duration) -> Option<(ZkLab, WanLink)> {
    let guard = one_at_a_time()?;
    let mut lab = Lab::new().expect("a lab");
    let zk: Vec<Host> = ["zk1", "zk2", "zk3", "b1", "b2"]
        .iter()
        .map(|name| lab.host(name).expect("a ZooKeeper host"))
        .collect();
    let (voters, observers): (Vec<&Host>, Vec<&Host>) =
        (zk[..3].iter().collect(), zk[3..].iter().collect());
    let (ensemble, wan) = lab
        .ensemble_with_observers(&voters, &observers, rtt)
        .unwrap_or_else(|e| panic!("the two regions in the lab: {e}"));
    let world = ZkLab {
        ensemble,
        lab,
        zk,
        _one_at_a_time: guard,
    };
    Some((world, wan))
}

impl ZkLab {
    /// A new host.
    pub fn host(&mut self, name: &str) -> Host {
        self.lab.host(name).expect("a lab host")
    }

    /// A session of the control host on the whole ensemble.
    pub fn observer(&self) -> Arc<Session> {
        observer_on(&self.ensemble.connect_string())
    }

    /// A session of the control host on ZooKeeper nodes `nodes` alone: one
    /// that no isolation of another node can reach (an isolated host is
    /// cut off from the control host too).
    pub fn observer_of(&self, nodes: &[usize]) -> Arc<Session> {
        let hosts: Vec<String> = nodes
            .iter()
            .map(|&i| self.zk[i].socket(2181).to_string())
            .collect();
        observer_on(&hosts.join(","))
    }

    /// A time-server in `host`, listening on its address, registering
    /// under [`BASE`] with `session_timeout`, metrics on [`METRICS_PORT`].
    pub fn time_server(&self, host: &Host, session_timeout: &str) -> TestProcess {
        self.time_server_on(host, &self.ensemble.connect_string(), session_timeout)
    }

    /// As [`ZkLab::time_server`], with the connect string `zk`.
    pub fn time_server_on(&self, host: &Host, zk: &str, session_timeout: &str) -> TestProcess {
        let listen = host.socket(TIME_PORT).to_string();
        let metrics = host.socket(METRICS_PORT).to_string();
        host.start(
            env!("CARGO_BIN_EXE_time-server"),
            &[
                "--zk",
                zk,
                "--base-path",
                BASE,
                "--session-timeout",
                session_timeout,
                "--listen",
                &listen,
                "--metrics-listen",
                &metrics,
                "--drain",
                "0s",
            ],
            &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
        )
    }

    /// Whether ZooKeeper node `i` lists `session` among its connections
    /// (`cons`).
    pub fn holds(&self, i: usize, session: zkutil::SessionId) -> bool {
        let addr = SocketAddr::from((self.zk[i].address(), 2181));
        zkutil::admin::four_letter_word(addr, "cons", Duration::from_secs(1))
            .unwrap_or_default()
            .contains(&format!("sid=0x{session:x}"))
    }

    /// The number of open sessions ZooKeeper's leader counts (`mntr`).
    pub fn global_sessions(&self) -> Option<u64> {
        let leader = self.ensemble.leader()?;
        let addr = SocketAddr::from((self.zk[leader].address(), 2181));
        zkutil::admin::four_letter_word(addr, "mntr", Duration::from_secs(1))
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("zk_global_sessions\t"))?
            .trim()
            .parse()
            .ok()
    }

    /// A time-client in `host` asking every 20 ms under [`BASE`] (4 s
    /// session, JSON lines), until sent SIGINT.
    pub fn time_client(&self, host: &Host) -> TestProcess {
        host.start(
            time_client_binary(),
            &[
                "--zk",
                &self.ensemble.connect_string(),
                "--base-path",
                BASE,
                "--session-timeout",
                "4s",
                "--count",
                "100000",
                "--interval",
                "20ms",
                "--json",
            ],
            &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
        )
    }

    /// Everything a failure message needs: the faults and each node's mode.
    pub fn report(&self) -> String {
        let modes: Vec<String> = (0..self.ensemble.len())
            .map(|i| format!("zk{}={:?}", i + 1, self.ensemble.mode(i)))
            .collect();
        format!(
            "faults:\n{}\nmodes: {}",
            self.lab.fault_log(),
            modes.join(" ")
        )
    }
}

/// The time-client binary, beside time-server's.
pub fn time_client_binary() -> PathBuf {
    let client =
        std::path::Path::new(env!("CARGO_BIN_EXE_time-server")).with_file_name("time-client");
    assert!(
        client.exists(),
        "{} is missing: `cargo test --workspace` builds it; alone, run `cargo build -p time-client` first",
        client.display()
    );
    client
}

/// Stops `client` (SIGINT) and returns its JSON summary line.
pub fn stop_client(mut client: TestProcess) -> (String, TestProcess) {
    client.signal("INT");
    client.wait(Duration::from_secs(30));
    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let summary = lines
        .iter()
        .find(|l| l.contains("\"type\":\"summary\""))
        .unwrap_or_else(|| panic!("no summary; stdout ends with {:?}", lines.last()))
        .clone();
    (summary, client)
}

/// The sorted children of `path`, or empty when it does not exist.
pub fn children(session: &Session, path: &str) -> Vec<String> {
    let mut names = match session.children(path) {
        Ok(names) => names,
        Err(err) if err.is_no_node() => Vec::new(),
        Err(err) => panic!("listing {path}: {err}"),
    };
    names.sort();
    names
}

/// Each child of `base`: (name, owner session, creation time).
pub fn snapshot(session: &Session, base: &str) -> Vec<(String, zkutil::SessionId, i64)> {
    children(session, base)
        .into_iter()
        .filter_map(|name| {
            let stat = session.stat(&format!("{base}/{name}")).ok().flatten()?;
            Some((name, stat.ephemeral_owner(), stat.ctime_ms()))
        })
        .collect()
}

/// As [`snapshot`], `None` when ZooKeeper does not answer every read (no
/// quorum, or the session on its way to another node): a sample that can
/// be missing but never wrong.
pub fn try_snapshot(
    session: &Session,
    base: &str,
) -> Option<Vec<(String, zkutil::SessionId, i64)>> {
    let mut names = session.children(base).ok()?;
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let stat = session.stat(&format!("{base}/{name}")).ok()??;
            Some((name, stat.ephemeral_owner(), stat.ctime_ms()))
        })
        .collect()
}

/// `/healthz`'s status code, `None` when it does not answer.
pub fn health(addr: SocketAddr) -> Option<u16> {
    zkutil::testing::http_get(addr, "/healthz")
        .ok()
        .map(|(status, _)| status)
}

/// Asks `addr` for the time; the reply, or the error.
pub fn ask(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// A session of the control host on `hosts`.
fn observer_on(hosts: &str) -> Arc<Session> {
    zkutil::SessionConfig::new(hosts)
        .with_session_timeout(Duration::from_secs(10))
        .connect()
        .map(Arc::new)
        .unwrap_or_else(|e| panic!("an observer on {hosts}: {e}"))
}
