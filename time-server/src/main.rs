//! `time-server`: parses flags and hands them to [`time_server::run`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = time_server::Args::parse();
    if let Some(done) = args.generate() {
        return done;
    }
    zkutil::cli::init_logging(args.quiet(), args.log_format());
    let config = args.config();
    let result = zkutil::cli::on_signals()
        .map_err(anyhow::Error::from)
        .and_then(|signals| time_server::run(&config, signals));
    zkutil::cli::exit("time-server", result.map(|()| ExitCode::SUCCESS))
}
