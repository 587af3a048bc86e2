//! time-server's integration tests, one binary: the protocol in process
//! (port 0), and the real binary against a real ZooKeeper.

mod browser;
mod console;
mod console_http;
mod console_scale;
mod faults;
mod hostile;
mod logs;
mod metrics;
mod process;
mod prometheus;
mod protocol;
mod render;
mod render_exec;
mod render_files;
mod rotation;
mod secrets;
mod security;
mod shutdown;
mod sidecar;
mod sidecar_config;
mod sidecar_exec;
mod sidecar_peers;
mod support;
mod systemd;
mod tls;
