//! `ensemble`: each ZooKeeper host as its four-letter words tell it
//! (`srvr`: mode, zxid, connections, latency; `mntr` when whitelisted:
//! outstanding requests, znodes, watches), asked again every
//! [`REFRESH`], each answer bounded by [`TIMEOUT`].
//!
//! They go outside the session, so a host that lost quorum or refuses
//! clients still says why; over TLS when the session uses TLS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use zkutil::admin;
use zkutil::cli::ZkArgs;

/// Between two rounds of questions.
pub const REFRESH: Duration = Duration::from_secs(2);
/// The longest a host's answer may take (a host that hangs costs this).
const TIMEOUT: Duration = Duration::from_secs(1);
/// The `mntr` keys the page shows.
const MNTR_KEYS: [&str; 8] = [
    "zk_outstanding_requests",
    "zk_num_alive_connections",
    "zk_avg_latency",
    "zk_max_latency",
    "zk_znode_count",
    "zk_watch_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
];

/// Asks every host of `zk`'s connect string until `stopping`, handing each
/// round's JSON to `publish`.
pub fn poll(
    zk: &ZkArgs,
    publish: impl Fn(Value),
    stopping: &AtomicBool,
    tick: &mpsc::Receiver<()>,
) {
    let hosts = admin::connect_string_hosts(&zk.zk);
    let tls = zk.tls();
    while !stopping.load(Ordering::SeqCst) {
        let round: Vec<Value> = hosts.iter().map(|host| ask(host, tls.as_ref())).collect();
        publish(Value::Array(round));
        // A tick (or its sender gone at stop) ends the wait early.
        let _ = tick.recv_timeout(REFRESH);
    }
}

/// One host's answers.
fn ask(host: &str, tls: Option<&zkutil::TlsConfig>) -> Value {
    let word = |word: &str| admin::ask_host(host, word, TIMEOUT, tls);
    let srvr = match word("srvr") {
        Ok(answer) => answer,
        Err(err) => return json!({ "host": host, "up": false, "error": err.to_string() }),
    };
    let Some(status) = admin::parse_srvr(&srvr) else {
        let first = srvr.lines().next().unwrap_or("no answer").trim().to_owned();
        return json!({ "host": host, "up": false, "error": first });
    };
    let mut value = json!({
        "host": host,
        "up": true,
        "mode": status.mode,
        "zxid": status.zxid,
        "connections": status.connections,
        "latency": status.latency,
        "version": status.version,
    });
    // Not whitelisted (or not answered): the page shows srvr's alone.
    if let Ok(mntr) = word("mntr") {
        let mut fields = Map::new();
        for line in mntr.lines() {
            if let Some((key, number)) = line.split_once('\t') {
                if MNTR_KEYS.contains(&key) {
                    fields.insert(key.to_owned(), Value::String(number.trim().to_owned()));
                }
            }
        }
        value["mntr"] = Value::Object(fields);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_refuses_is_down_with_its_cause() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let value = ask(&closed.to_string(), None);
        assert_eq!(value["up"], false);
        assert!(value["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}
