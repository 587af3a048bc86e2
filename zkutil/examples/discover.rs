//! Print the live list of registered servers and each change: what a
//! client keeps.
//!
//! ```text
//! scripts/zk.sh start                      # a ZooKeeper on 127.0.0.1:2181
//! cargo run -p zkutil --example discover   # and, elsewhere, the register example
//! ```
//!
//! `ZK_HOSTS` overrides the connect string; `DISCOVER_FOR=5s` stops after
//! that long (otherwise it runs until killed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use zkutil::{BasePath, Change, Discovery, SessionConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hosts = std::env::var("ZK_HOSTS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let run_for = match std::env::var("DISCOVER_FOR") {
        Ok(text) => Some(humantime::parse_duration(&text)?),
        Err(_) => None,
    };

    let session = Arc::new(SessionConfig::new(hosts).connect()?);
    // Where the register example (and the time-servers) register.
    let base = BasePath::new("/go_servers")?;
    // Watched from now on: one notification per change, no polling.
    let discovery = Discovery::start(session, &base)?;
    let changes = discovery.subscribe();
    let snapshot = discovery.snapshot();
    println!("{} registered:", snapshot.instances().len());
    for instance in snapshot.instances().iter() {
        println!("  {}", instance.endpoint());
    }

    let started = Instant::now();
    loop {
        let wait = match run_for {
            Some(limit) if started.elapsed() >= limit => return Ok(()),
            Some(limit) => limit - started.elapsed(),
            None => Duration::from_secs(3600),
        };
        match changes.recv_timeout(wait) {
            Ok(Change::Added(instance)) => println!("+ {}", instance.endpoint()),
            Ok(Change::Removed(instance)) => println!("- {}", instance.endpoint()),
            // ZooKeeper unreachable: the list is the last one known.
            Ok(Change::Stale) => println!("(stale: ZooKeeper unreachable)"),
            Ok(Change::Fresh) => println!("(fresh again)"),
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
