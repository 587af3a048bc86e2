//! A real Prometheus (2.42, Debian) discovers our time-servers through the
//! registry, with `serverset_sd_configs` and no per-server configuration.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zkutil::BasePath;
use zkutil::testing::{Prometheus, wait_until};

use crate::support::{ServerProcess, observer, zookeeper};

/// `host:port` of each target Prometheus discovered from the serverset.
fn discovered(prometheus: &Prometheus) -> BTreeSet<String> {
    prometheus
        .active_targets()
        .unwrap_or_default()
        .iter()
        .filter_map(|target| {
            let labels = &target["discoveredLabels"];
            Some(format!(
                "{}:{}",
                labels["__meta_serverset_endpoint_host"].as_str()?,
                labels["__meta_serverset_endpoint_port"].as_str()?
            ))
        })
        .collect()
}

#[test]
fn prometheus_discovers_exactly_our_live_servers_and_drops_a_stopped_one() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let args = |listen| {
        vec![
            "--zk".to_owned(),
            hosts.clone(),
            "--serverset-path".to_owned(),
            "/aurora/time".to_owned(),
            "--format".to_owned(),
            "serverset".to_owned(),
            "--listen".to_owned(),
            listen,
            "--drain".to_owned(),
            "0s".to_owned(),
        ]
    };
    let start = |listen: &str| {
        let args = args(listen.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ServerProcess::start(&args)
    };
    let mut first = start("127.0.0.1:0");
    let second = start("127.0.0.1:0,127.0.0.1:0");
    first.registered(1);
    second.registered(2);
    let obs = observer(&zk);
    let ours: BTreeSet<String> =
        zkutil::list_instances(&obs, &BasePath::from_static("/aurora/time"), false)
            .expect("lists")
            .iter()
            .map(|i| i.endpoint().to_string())
            .collect();
    assert_eq!(ours.len(), 3, "{ours:?}");

    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: time\n    \
         serverset_sd_configs:\n      - servers: ['{}']\n        paths: ['/aurora/time']\n        timeout: 10s\n",
        zk.connect_string()
    );
    let prometheus = Prometheus::start(&config).unwrap_or_else(|err| panic!("{err}"));
    let started = Instant::now();
    wait_until(
        Duration::from_secs(60),
        "Prometheus lists our three servers",
        || (discovered(&prometheus) == ours).then_some(()),
    );
    eprintln!(
        "Prometheus listed our servers {:?} after it was ready",
        started.elapsed()
    );

    let stopped = first.listening();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    let sigterm = Instant::now();
    first.signal("TERM");
    let status = first.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let left: BTreeSet<String> = ours.difference(&stopped).cloned().collect();
    wait_until(
        Duration::from_secs(60),
        "Prometheus drops the stopped server",
        || (discovered(&prometheus) == left).then_some(()),
    );
    eprintln!(
        "Prometheus dropped the SIGTERMed server {:?} after the signal",
        sigterm.elapsed()
    );
}

#[test]
fn prometheus_scrapes_each_servers_metrics_found_through_the_registry() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let start = || {
        ServerProcess::start(&[
            "--zk",
            &hosts,
            "--serverset-path",
            "/aurora/time",
            "--format",
            "serverset",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--drain",
            "0s",
        ])
    };
    let frozen = start();
    let mut stopped = start();
    frozen.registered(1);
    stopped.registered(1);
    let (frozen_metrics, stopped_metrics) = (
        frozen.logged_addr("metrics=").to_string(),
        stopped.logged_addr("metrics=").to_string(),
    );
    // The metrics endpoint of each member, and nothing per server.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n  - job_name: time\n    \
         serverset_sd_configs:\n      - servers: ['{}']\n        paths: ['/aurora/time']\n    \
         relabel_configs:\n      - source_labels: [__meta_serverset_endpoint_host_metrics, __meta_serverset_endpoint_port_metrics]\n        \
         separator: ':'\n        target_label: __address__\n",
        zk.connect_string()
    );
    let prometheus = Prometheus::start(&config).unwrap_or_else(|err| panic!("{err}"));
    let up = || -> BTreeSet<(String, u64)> {
        prometheus
            .query("up{job=\"time\"}")
            .unwrap_or_default()
            .iter()
            .filter_map(|(labels, value)| {
                Some((labels["instance"].as_str()?.to_owned(), *value as u64))
            })
            .collect()
    };
    let both_up = BTreeSet::from([(frozen_metrics.clone(), 1), (stopped_metrics.clone(), 1)]);
    wait_until(
        Duration::from_secs(60),
        "up == 1 for both servers' metrics",
        || (up() == both_up).then_some(()),
    );
    let answered = prometheus
        .query("time_server_connections_accepted_total")
        .unwrap_or_default();
    assert_eq!(
        answered.len(),
        2,
        "each server's counters are scraped: {answered:?}"
    );

    // Frozen: scrapes time out, up == 0.
    frozen.signal("STOP");
    wait_until(
        Duration::from_secs(60),
        "up == 0 for the frozen server",
        || up().contains(&(frozen_metrics.clone(), 0)).then_some(()),
    );
    frozen.signal("CONT");

    // Stopped: deregistered, so no longer a target.
    stopped.signal("TERM");
    stopped.wait(Duration::from_secs(30));
    wait_until(
        Duration::from_secs(60),
        "the stopped server is no target",
        || {
            let targets: Vec<String> = prometheus
                .active_targets()
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t["labels"]["instance"].as_str().map(str::to_owned))
                .collect();
            (targets == [frozen_metrics.clone()]).then_some(())
        },
    );
}
