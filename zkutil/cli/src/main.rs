//! `zkutil`: the registry's command-line tool. Parses flags ([`args`]) and
//! hands them to the subcommands ([`commands`], [`health`], [`operate`]),
//! which use the library (no second implementation).

mod args;
mod commands;
mod connect;
mod console;
mod health;
mod operate;
mod render;
mod sidecar;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, Common};

fn main() -> ExitCode {
    let cli = Cli::parse();
    zkutil::cli::init_logging(cli.common.zk.quiet, cli.common.zk.log_format);
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

impl Command {
    /// Runs the subcommand: `Ok(false)` for a problem found (exit 1).
    pub fn run(self, common: &Common) -> anyhow::Result<bool> {
        match self {
            Command::Ls { json, under } => commands::ls(common, json, under.as_deref()),
            Command::Watch {
                json,
                metrics_listen,
            } => commands::watch(common, json, metrics_listen),
            Command::Get { endpoint } => commands::get(common, endpoint),
            Command::Register {
                endpoint,
                metadata,
                force,
                tighten_acl,
                format,
                layout,
                service_name,
                metrics_listen,
                health,
            } => commands::register(
                common,
                endpoint,
                metadata.as_deref(),
                (force, tighten_acl),
                (format, &layout),
                (&service_name, metrics_listen),
                &health,
            ),
            Command::Sidecar {
                config,
                check_config,
                metrics_listen,
                drain,
            } => sidecar::fleet::run(common, &config, check_config, (metrics_listen, drain)),
            Command::Render { args } => render::run(&common.zk, &args),
            Command::Console { args } => console::run(&common.zk, &args),
            Command::Disable { endpoint, reason } => {
                operate::control(common, endpoint, &zkutil::Control::Disable { reason })
            }
            Command::Enable { endpoint } => {
                operate::control(common, endpoint, &zkutil::Control::Enable)
            }
            Command::Weight { endpoint, weight } => {
                operate::control(common, endpoint, &zkutil::Control::Weight(weight))
            }
            Command::Check {
                timeout,
                probe,
                min,
                json,
            } => health::check(common, probe, timeout, min, json),
            Command::Status { timeout, json } => health::status(common, timeout, json),
            // Printed by main, which knows the whole command line.
            Command::Completions { .. } | Command::ManPage => Ok(true),
        }
    }
}
