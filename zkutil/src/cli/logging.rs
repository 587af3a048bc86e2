//! `logging`: how every binary logs. The library itself never installs a
//! subscriber; a binary calls [`init_logging`] once in `main`.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`init_logging`] installed JSON logs.
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether this process logs JSON lines (its last error line is one too).
pub(crate) fn json_active() -> bool {
    JSON.load(Ordering::SeqCst)
}

/// How log lines look (`--log-format`, `ZK_LOG_FORMAT`; any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line, for log shippers: `timestamp`, `level`,
    /// `target`, `message` and the event's fields, the same as the text.
    Json,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, or `warn` when
/// `quiet`; the ZooKeeper client's own chatter at `warn`), as `format`
/// says. Text is in colour only on a terminal and never with `NO_COLOR`
/// set (no-color.org), with module paths only when `RUST_LOG` is set
/// (someone is debugging); JSON always names the module.
pub fn init_logging(quiet: bool, format: LogFormat) {
    use std::io::IsTerminal;
    let debugging = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let default = if quiet {
        "warn"
    } else {
        "info,zookeeper_client=warn"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    // A log reader that went away (a closed pipe) must not panic the
    // thread that logs: the default reports the failed write with
    // `eprintln!`, which panics, and a stop path that panics never
    // deregisters nor exits. Lines that cannot be written are lost.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color)
            .with_target(debugging)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
            .inspect(|()| JSON.store(true, Ordering::SeqCst)),
    };
}
