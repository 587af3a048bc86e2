//! zkutil's integration tests, one binary (matklad): every test talks to a
//! real ZooKeeper started by `zkutil::testing`.

mod cli;
mod discovery;
mod fixture;
mod registry;
mod session;
mod support;
