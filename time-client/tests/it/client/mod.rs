//! The client against real ZooKeeper and real servers.

mod errors;
mod interrupt;
mod output;
mod picking;
mod session;

use std::time::Duration;

use time_client::report::Summary;
use time_client::{Config, run};

fn config(hosts: &str, count: u64) -> Config {
    Config {
        count,
        interval: Duration::ZERO,
        ..Config::new(hosts)
    }
}

/// Runs the client in this process to the end (no stop request).
fn run_all(config: &Config, out: &mut impl std::io::Write) -> Summary {
    let (_keep, stop) = std::sync::mpsc::channel();
    run(config, out, &stop).expect("runs")
}
