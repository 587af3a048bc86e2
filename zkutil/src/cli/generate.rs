//! `generate`: shell completions and man pages, generated from the clap
//! definitions so that they never drift from `--help`.

use std::process::ExitCode;

/// Hidden flags of the binaries without subcommands: print shell
/// completions or the man page instead of running (`scripts/man.sh` uses
/// them). `zkutil` has a `completions` subcommand instead.
#[derive(Debug, Clone, clap::Args)]
///
/// # Example
///
/// ```
/// use clap::Parser;
///
/// #[derive(clap::Parser)]
/// #[command(name = "app")]
/// struct Args {
///     #[command(flatten)]
///     generate: zkutil::cli::GenerateArgs,
/// }
///
/// let args = Args::parse_from(["app"]);
/// assert!(args.generate.generate::<Args>().is_none(), "nothing asked: run the binary");
/// ```
pub struct GenerateArgs {
    /// Print completions for this shell and exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<clap_complete::Shell>,
    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub man_page: bool,
}

impl GenerateArgs {
    /// Prints what was asked for the binary whose flags are `C`; `None`
    /// when nothing was (run the binary).
    pub fn generate<C: clap::CommandFactory>(&self) -> Option<ExitCode> {
        if let Some(shell) = self.completions {
            return Some(print_completions::<C>(shell));
        }
        self.man_page.then(print_man_page::<C>)
    }
}

/// Writes the completion script of `shell` for the binary whose flags are
/// `C` to stdout.
pub fn print_completions<C: clap::CommandFactory>(shell: clap_complete::Shell) -> ExitCode {
    let mut command = C::command();
    let name = command.get_name().to_owned();
    // Into memory first: the generator panics on a failed write (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    write_stdout(&script)
}

/// Writes `bytes` to stdout; a closed pipe is not an error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing to stdout: {err}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Writes the man page (roff) of the binary whose flags are `C` to stdout.
pub fn print_man_page<C: clap::CommandFactory>() -> ExitCode {
    let mut page = Vec::new();
    match clap_mangen::Man::new(C::command()).render(&mut page) {
        Ok(()) => write_stdout(&page),
        Err(err) => {
            eprintln!("error: rendering the man page: {err}");
            ExitCode::FAILURE
        }
    }
}
