//! Network faults, in a lab of Linux network namespaces
//! (`zkutil::testing::lab`): each ZooKeeper node, time-server and client in
//! a host of its own, and the network between them broken on purpose.
//!
//! Needs root: as any other user each test prints `skipped: needs root`
//! and passes. The tests share the machine's bridges and routes, so they
//! run one at a time (`support::lab` holds a lock), and in a binary of
//! their own. The time-client binary is taken from beside time-server's
//! (`cargo test --workspace` builds both; alone, `cargo build -p
//! time-client` first).

mod client_partitioned;
mod ensemble_cut_off;
mod faults;
mod flapping;
mod follower_isolated;
mod leader_isolated;
mod lossy;
mod one_way;
mod region;
mod relay;
mod server_partitioned;
mod slow;
mod support;
mod traffic;
