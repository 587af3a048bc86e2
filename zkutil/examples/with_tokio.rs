//! A tokio service that registers itself and discovers a peer: which
//! zkutil calls may block, and how to keep them off the async workers.
//!
//! ```text
//! scripts/zk.sh start                      # a ZooKeeper on 127.0.0.1:2181
//! cargo run -p zkutil --example with_tokio
//! ```
//!
//! zkutil's API is blocking. The calls that talk to ZooKeeper — connect,
//! `Registration::register` and `deregister`, `Discovery::start`,
//! `Control::apply_to` — may wait up to their timeouts (seconds), so they
//! go through `spawn_blocking`. Reading a snapshot
//! (`Discovery::snapshot`, `Selector::pick`) touches no network: call it
//! from async code directly, once per request.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zkutil::{
    BasePath, Discovery, Endpoint, Metadata, Registration, Selector, SessionConfig, Strategy,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let hosts = std::env::var("ZK_HOSTS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let base = BasePath::new("/tokio_example")?;

    // A tiny async service: answers every connection with a line.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = Endpoint::new(listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(b"hello from tokio\n").await;
            });
        }
    });

    // Blocking calls: off the async workers.
    let (registration, discovery) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || -> zkutil::Result<(Registration, Discovery)> {
            let session = Arc::new(SessionConfig::new(hosts).connect()?);
            let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0");
            let registration = Registration::register(&session, &base, endpoint, &metadata)?;
            let discovery = Discovery::start(session, &base)?;
            Ok((registration, discovery))
        }
    })
    .await??;
    println!("registered {}", registration.path());

    // Non-blocking: the snapshot is in memory. (A real service would pick a
    // peer other than itself; here it is the only one.)
    let selector = Selector::new(Strategy::Random);
    let peer = loop {
        let snapshot = discovery.snapshot();
        if let Some(instance) = selector.pick(snapshot.instances()) {
            break instance.endpoint();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stream = tokio::net::TcpStream::connect(peer.addr()).await?;
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut reply)).await??;
    println!("asked {peer}: {}", reply.trim());

    // Blocking again on the way out: deregister, then stop watching.
    tokio::task::spawn_blocking(move || {
        let result = registration.deregister();
        drop(discovery);
        result
    })
    .await??;
    println!("deregistered");
    Ok(())
}
