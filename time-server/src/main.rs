//! `time-server`: parses flags and hands them to [`time_server::run`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let config = time_server::Args::parse().config();
    zkutil::cli::init_logging();
    match zkutil::cli::on_signals().and_then(|signals| time_server::run(&config, signals)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("time-server: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
