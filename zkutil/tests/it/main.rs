//! zkutil's integration tests, one binary (matklad): every test that needs
//! ZooKeeper talks to a real one started by `zkutil::testing`.

mod cli;
mod discovery;
mod events;
mod fixture;
mod interop;
mod layout;
mod metrics_server;
mod operator;
mod properties;
mod registry;
mod session;
mod support;
mod tls;
mod tls_errors;
