//! Hold a registration until Ctrl-C, with metadata: what a server does.
//!
//! ```text
//! scripts/zk.sh start                      # a ZooKeeper on 127.0.0.1:2181
//! cargo run -p zkutil --example register -- 127.0.0.1:8897
//! ```
//!
//! `ZK_HOSTS` overrides the connect string. Stop it with Ctrl-C (or
//! SIGTERM): the node is deleted at once, and clients stop picking it.
//! Signal handling comes from zkutil's `cli` feature (`signal-hook`).

use std::sync::Arc;
use std::time::SystemTime;

use zkutil::{BasePath, Endpoint, Metadata, Registration, SessionConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint: Endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8897".into())
        .parse()?;
    let hosts = std::env::var("ZK_HOSTS").unwrap_or_else(|_| "127.0.0.1:2181".into());

    let session = Arc::new(SessionConfig::new(hosts).connect()?);
    let metadata =
        Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0").with_weight(Some(100));
    // Where the discover example (and time-client, zkutil ls) look.
    let base = BasePath::new("/go_servers")?;
    let registration = Registration::register(&session, &base, endpoint, &metadata)?;
    println!(
        "registered {} ({})",
        registration.path(),
        registration.outcome()
    );

    // Wait for Ctrl-C or SIGTERM. The registration's own thread keeps the
    // node meanwhile: re-created after a session expiry or a deletion.
    let signals = zkutil::cli::on_signals()?;
    let _ = signals.recv();

    registration.deregister()?;
    println!("deregistered");
    Ok(())
}
