//! `cli`: what the three binaries share, so that they take the same
//! ZooKeeper flags (with the same env fallbacks) and log the same way.
//!
//! * `zk_args`: [`ZkArgs`], [`LayoutArgs`], the ZooKeeper flags; [`zk_hosts`].
//! * `secrets`: [`read_secret_file`], [`SecretFileParser`], [`SecretParser`]: credentials kept off
//!   the command line (`ps` shows it to every user on the host).
//! * `values`: [`duration`], [`timeout`], [`writable_format`], other flag values.
//! * `generate`: [`GenerateArgs`], shell completions and man pages.
//! * `logging`: [`init_logging`], stderr filtered by `RUST_LOG`.
//! * `signals`: [`on_signals`], [`interrupt`], a graceful stop.
//! * [`exit`]: a binary's exit code and one-line error.
//! * [`metrics`]: `/metrics` and `/healthz` for `--metrics-listen`.
//! * [`http`]: the bounded HTTP/1 server under it and the web console
//!   (hyper, one thread).
//! * [`command`]: an operator's shell command run with a deadline, its
//!   output kept (checks, `zkutil render`'s validation and reload).
//! * [`check`]: health checks (HTTP, TCP, a command) and their rise/fall,
//!   for `zkutil register --check`.
//!
//! The flags are clap's: [`clap`], [`Shell`] and [`anyhow`] are
//! re-exported so that a binary names the same versions these items take.

pub mod check;
pub mod command;
mod generate;
pub mod http;
mod logging;
pub mod metrics;
mod secrets;
mod signals;
mod values;
mod zk_args;

use std::process::ExitCode;

use crate::error::Error;

/// The error of the binaries' `main`, which [`exit`] reports: re-exported
/// so that a binary's `anyhow` is the one [`exit`] takes.
pub use anyhow;
/// The clap these flags derive from: a binary that flattens [`ZkArgs`]
/// must use this version (its `Args` trait) for its own flags.
pub use clap;
/// The shells [`print_completions`] writes for: clap_complete's own list,
/// so that a binary can take it as a flag value (`value_enum`).
pub use clap_complete::Shell;

pub use self::generate::{GenerateArgs, print_completions, print_man_page};
pub use self::logging::{LogFormat, init_logging};
pub use self::secrets::{SecretFileError, SecretFileParser, SecretParser, read_secret_file};
pub use self::signals::{interrupt, on_signals};
pub use self::values::{MAX_DURATION, duration, env_flag, timeout, writable_format};
pub use self::zk_args::{LayoutArgs, ZK_IDENTITY, ZkArgs, zk_hosts};
/// The binaries take poisoned locks the way the library does.
pub use crate::sync::lock;

/// A binary's exit (the binaries' glue, so it takes their `anyhow` result):
/// the code of a result, or for an error one line
/// `<binary>: error: <cause: cause…>` on stderr and exit 1. A wait ended by
/// Ctrl-C exits 130 (as the shell reports a SIGINT) without an error line;
/// a closed stdout (`| head -1`: the reader has what it wanted) exits 0
/// quietly.
pub fn exit(binary: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    let err = match result {
        Ok(code) => return code,
        Err(err) => err,
    };
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let zk_error = err.chain().find_map(|cause| cause.downcast_ref::<Error>());
    let line = match zk_error {
        Some(Error::Interrupted) => return ExitCode::from(130),
        Some(Error::Refused { .. }) => {
            format!("{err:#} Start one with: scripts/zk.sh start")
        }
        _ => format!("{err:#}"),
    };
    // With JSON logs, the last word is a JSON line too: a log shipper
    // reads every line of stderr.
    if logging::json_active() {
        tracing::error!(exit = 1, "{line}");
    } else {
        eprintln!("{binary}: error: {line}");
    }
    ExitCode::FAILURE
}
