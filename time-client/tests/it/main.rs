//! time-client's integration tests, one binary: real ZooKeeper, real
//! time-servers (in process, on port 0), and the client binary.

mod cache;
mod client;
mod drain;
mod failover;
mod hostile;
mod metrics;
mod partition;
mod post;
mod properties;
mod seed;
mod support;
