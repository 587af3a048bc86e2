//! `--metrics-listen`: Prometheus metrics and a health check of a real
//! time-server process, against real ZooKeeper.

mod bad_requests;
mod floods;
mod scrape;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zkutil::testing::{http_get, wait_until};

use crate::support::ServerProcess;

/// A time-server with a time listener and a metrics port, healthy.
fn start_with_metrics(zk: &zkutil::testing::ZkServer) -> (ServerProcess, SocketAddr, SocketAddr) {
    start_with_metrics_and(zk, &[])
}

/// [`start_with_metrics`], with `more` arguments.
fn start_with_metrics_and(
    zk: &zkutil::testing::ZkServer,
    more: &[&str],
) -> (ServerProcess, SocketAddr, SocketAddr) {
    let hosts = zk.connect_string();
    let mut args = vec![
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(more);
    let server = ServerProcess::start(&args);
    let names = server.registered(1);
    let listener: SocketAddr = names[0].parse().expect("an endpoint");
    let metrics = server.logged_addr("metrics=");
    wait_until(Duration::from_secs(10), "healthy", || {
        (http_get(metrics, "/healthz").ok()? == (200, "ok\n".to_owned())).then_some(())
    });
    (server, listener, metrics)
}

/// `/healthz` from a fresh client: 200 within `within`; how long it took.
#[track_caller]
fn healthz_answers(metrics: SocketAddr, within: Duration, server: &ServerProcess) -> Duration {
    let started = Instant::now();
    let answer = http_get(metrics, "/healthz");
    let took = started.elapsed();
    match answer {
        Ok((200, _)) if took < within => took,
        other => panic!(
            "/healthz: {other:?} after {took:?}; log:\n{}",
            server.stderr()
        ),
    }
}
