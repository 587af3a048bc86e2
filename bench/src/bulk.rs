//! Big registries, registered fast: the scale, change-cost and Curator
//! sections start from thousands of nodes.

use std::net::SocketAddr;
use std::sync::Arc;

use zkutil::{Endpoint, Session};

/// `n` plain children `10.x.y.z:8897` under `base`, created by 8 threads
/// on one session.
pub fn register_many(owner: &Arc<Session>, base: &str, n: usize) -> anyhow::Result<()> {
    owner.ensure_path(base)?;
    create_many(owner, n, |i| {
        (format!("{base}/{}", nth_endpoint(i)), b"{}".to_vec())
    })
}

/// Creates the `n` ephemeral nodes `node(i)` names (path, data), from 8
/// threads of one session.
pub fn create_many(
    owner: &Arc<Session>,
    n: usize,
    node: impl Fn(usize) -> (String, Vec<u8>) + Sync,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let node = &node;
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let owner = owner.clone();
                scope.spawn(move || -> zkutil::Result<()> {
                    for i in (w..n).step_by(8) {
                        let (path, data) = node(i);
                        owner.create_ephemeral(&path, &data)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })
}

/// The endpoint of the `i`-th instance of a big registry.
pub fn nth_endpoint(i: usize) -> Endpoint {
    Endpoint::new(SocketAddr::from((
        [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        8897,
    )))
}
