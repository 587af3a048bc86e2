//! `time-client`: parses flags and hands them to [`time_client::run`].

use std::process::ExitCode;

use clap::Parser;
use time_client::report;

fn main() -> ExitCode {
    let args = time_client::Args::parse();
    if let Some(done) = args.generate() {
        return done;
    }
    zkutil::cli::init_logging(args.quiet(), args.log_format());
    let config = args.config();
    let out = &mut std::io::stdout().lock();
    let result = zkutil::cli::on_signals()
        .map_err(anyhow::Error::from)
        .and_then(|stop| time_client::run(&config, out, &stop))
        .map(|summary| {
            if summary.output_closed {
                return ExitCode::SUCCESS;
            }
            report::summary(out, config.format, &summary);
            if summary.interrupted {
                ExitCode::from(130)
            } else if summary.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        });
    zkutil::cli::exit("time-client", result)
}
