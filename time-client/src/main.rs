//! `time-client`: parses flags and hands them to [`time_client::run`].

use std::process::ExitCode;

use clap::Parser;
use time_client::report;

fn main() -> ExitCode {
    let config = time_client::Args::parse().config();
    zkutil::cli::init_logging();
    let out = &mut std::io::stdout().lock();
    let result = zkutil::cli::on_signals()
        .and_then(|stop| time_client::run(&config, out, &stop))
        .map(|summary| {
            report::summary(out, config.format, &summary);
            if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        });
    zkutil::cli::exit("time-client", result)
}
