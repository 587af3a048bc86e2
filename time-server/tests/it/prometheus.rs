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
            "--base-path".to_owned(),
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
