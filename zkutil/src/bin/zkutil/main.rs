//! `zkutil`: the registry's command-line tool. Parses flags ([`args`]) and
//! hands them to [`commands`], which uses the library (no second
//! implementation).

mod args;
mod commands;
mod health;
mod operate;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, Common};

fn main() -> ExitCode {
    let cli = Cli::parse();
    zkutil::cli::init_logging(cli.common.zk.quiet);
    let result = match cli.command {
        Command::Completions { shell } => return zkutil::cli::print_completions::<Cli>(shell),
        Command::ManPage => return zkutil::cli::print_man_page::<Cli>(),
        command => command.run(&cli.common),
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
