//! `zkutil`: the registry's command-line tool. Parses flags ([`args`]) and
//! hands them to [`commands`], which uses the library (no second
//! implementation).

mod args;
mod commands;
mod health;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, Common};

fn main() -> ExitCode {
    let cli = Cli::parse();
    zkutil::cli::init_logging(cli.common.zk.quiet);
    let common = &cli.common;
    let result = match cli.command {
        Command::Ls { json } => commands::ls(common, json),
        Command::Watch {
            json,
            metrics_listen,
        } => commands::watch(common, json, metrics_listen),
        Command::Get { endpoint } => commands::get(common, endpoint),
        Command::Register {
            endpoint,
            metadata,
            force,
            format,
            service_name,
            metrics_listen,
        } => commands::register(
            common,
            endpoint,
            metadata.as_deref(),
            force,
            format,
            &service_name,
            metrics_listen,
        ),
        Command::Check {
            timeout,
            probe,
            min,
            json,
        } => health::check(common, probe, timeout, min, json),
        Command::Status { timeout, json } => health::status(common, timeout, json),
        Command::Completions { shell } => return zkutil::cli::print_completions::<Cli>(shell),
        Command::ManPage => return zkutil::cli::print_man_page::<Cli>(),
    };
    let code = result.map(|ok| {
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    });
    zkutil::cli::exit("zkutil", code)
}
