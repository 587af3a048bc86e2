//! `secrets`: credentials kept off the command line. `ps` (and
//! `/proc/PID/cmdline`) shows every process's arguments to every user on
//! the host, so a flag that takes a secret, `--zk-auth`, has a companion
//! that names a file instead, `--zk-auth-file`, and says so when the
//! secret is typed on the command line after all.
//!
//! * [`read_secret_file`]: one secret on one line of a file, with a
//!   warning when others may read that file.
//! * [`SecretFileParser`]: the same as a clap value parser, for a
//!   `--*-file` flag (the file is read when the flags are parsed, so a bad
//!   file is a usage error before anything is contacted).
//! * [`SecretParser`]: a secret given as the value itself; it warns once
//!   when that value came from the command line.
//!
//! No message here ever contains a secret, or any part of a secret file:
//! a mistyped password is still a password.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::parser::ValueSource;

use crate::session::Secret;

/// The most a secret file may hold: a credential is a line, and a path
/// such as `/dev/zero` must not be read forever.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Why a secret file gave no secret. Every message names the file and
/// never its content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file could not be opened or read (missing, a directory, no
    /// permission).
    #[error("cannot read secret file {path:?}")]
    Read {
        /// The file as given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing but whitespace in it.
    #[error("secret file {path:?} is empty")]
    Empty {
        /// The file as given.
        path: PathBuf,
    },
    /// Its content is not a single line of text, or not the expected form.
    #[error("secret file {path:?}: expected {expected} (the content is not shown)")]
    Malformed {
        /// The file as given.
        path: PathBuf,
        /// What it should hold: "user:password on one line", "one line of UTF-8 text"…
        expected: &'static str,
    },
}

/// Reads the secret in the file at `path`: its one line, trailing
/// whitespace (the newline an editor adds) trimmed. Says once on stderr
/// when the file is readable by its group or by others, with the fix
/// (`chmod 600`): a secret file shared with the host is a secret on the
/// command line by another name.
///
/// What the secret means (`user:password`, a key's passphrase) is the
/// caller's; [`SecretFileParser::user_password`] checks the digest form.
///
/// # Errors
///
/// [`SecretFileError`]: the file cannot be read (the OS error is the
/// source), holds nothing, more than one line, or bytes that are not UTF-8.
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretFileError> {
    let read = |source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    // The mode of the file opened, not of whatever is at `path` now.
    let mode = mode_bits(&file.metadata().map_err(read)?);
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    let malformed = |expected| SecretFileError::Malformed {
        path: path.to_owned(),
        expected,
    };
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(malformed("one line, not over 64 KiB"));
    }
    let text = String::from_utf8(bytes).map_err(|_| malformed("one line of UTF-8 text"))?;
    let line = text.trim_end();
    if line.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_owned(),
        });
    }
    if line.contains(['\n', '\r']) {
        return Err(malformed("one line, not several"));
    }
    // Only a file that gave a secret is worth a warning about who else
    // can read it.
    warn_if_readable_by_others(path, mode);
    Ok(Secret::new(line))
}

#[cfg(unix)]
fn mode_bits(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode()
}

#[cfg(not(unix))]
fn mode_bits(_: &std::fs::Metadata) -> u32 {
    0o600
}

/// `--zk-tls-key`'s parser: the path, and the same warning as for a secret
/// file when its group or others may read it (an unencrypted key is the
/// client's identity). A file that cannot be read is the session's error
/// to give, with the other TLS files.
///
/// # Errors
///
/// Never: the path is taken as given.
pub fn private_key_path(text: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(text);
    if let Ok(metadata) = std::fs::metadata(&path) {
        warn_if_readable_by_others(&path, mode_bits(&metadata));
    }
    Ok(path)
}

/// The warning for a secret file that its group or others may read, once
/// per file per process (a file named by two flags is one warning).
fn warn_if_readable_by_others(path: &Path, mode: u32) {
    if mode & 0o077 == 0 || !first_time(format!("file {}", path.display())) {
        return;
    }
    eprintln!(
        "{}: warning: secret file {path:?} can be read by its group or others (mode {:04o}); \
         run: chmod 600 {}",
        program(),
        mode & 0o777,
        path.display()
    );
}

/// Whether `key` is seen for the first time in this process: each warning
/// here is said once, however often clap parses its flag.
fn first_time(key: String) -> bool {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    crate::sync::lock(&SEEN).insert(key)
}

/// The name of the running program, for the prefix of a warning that is
/// said before logging is set up (the flags are still being parsed).
fn program() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "warning".to_owned())
}

/// The one-line clap usage error of a secret flag (exit 2): the message
/// alone, without the usage block, so that the reason is the line the user
/// reads.
fn usage_error(message: String) -> clap::Error {
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{message}\n"),
    )
}

/// The flag as the user typed it, for messages: `--zk-auth`.
fn flag_name(arg: Option<&clap::Arg>, default: &str) -> String {
    arg.and_then(clap::Arg::get_long)
        .map_or_else(|| default.to_owned(), |long| format!("--{long}"))
}

/// Parses a `--*-file PATH` flag into the secret the file holds
/// ([`read_secret_file`]), as a one-line usage error naming the file (and
/// never its content) when it gives none.
#[derive(Debug, Clone, Copy)]
///
/// # Example
///
/// ```
/// use std::ffi::OsStr;
/// use clap::Parser;
/// #[derive(clap::Parser)]
/// struct Args {
///     #[arg(long, value_parser = zkutil::cli::SecretFileParser::user_password())]
///     operator_file: Option<zkutil::Secret>,
/// }
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("operator");
/// std::fs::write(&path, "ops:s3cret\n")?;
/// # #[cfg(unix)]
/// # std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
/// let argv: [&OsStr; 3] = ["app".as_ref(), "--operator-file".as_ref(), path.as_os_str()];
/// let args = Args::try_parse_from(argv)?;
/// assert_eq!(args.operator_file.map(|s| s.expose().to_owned()), Some("ops:s3cret".into()));
///
/// std::fs::write(&path, "no-colon-s3cret")?;
/// let err = Args::try_parse_from(argv).err().expect("refused");
/// assert!(err.to_string().contains("expected user:password"), "{err}");
/// assert!(!err.to_string().contains("s3cret"), "never shown: {err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SecretFileParser {
    user_password: bool,
}

impl SecretFileParser {
    /// A file holding `user:password` (ZooKeeper's digest scheme).
    pub fn user_password() -> SecretFileParser {
        SecretFileParser {
            user_password: true,
        }
    }

    /// A file holding any one-line secret (a password, a passphrase).
    pub fn password() -> SecretFileParser {
        SecretFileParser {
            user_password: false,
        }
    }
}

impl clap::builder::TypedValueParser for SecretFileParser {
    type Value = Secret;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Secret, clap::Error> {
        let flag = flag_name(arg, "the secret file");
        let secret = read_secret_file(Path::new(value)).map_err(|err| {
            let cause = std::error::Error::source(&err)
                .map(|source| format!(": {source}"))
                .unwrap_or_default();
            usage_error(format!("{flag}: {err}{cause}"))
        })?;
        if self.user_password && secret.expose().parse::<Secret>().is_err() {
            let err = SecretFileError::Malformed {
                path: PathBuf::from(value),
                expected: "user:password on one line",
            };
            return Err(usage_error(format!("{flag}: {err}")));
        }
        Ok(secret)
    }
}

/// Parses a secret given as the flag's value (`--zk-auth user:password`)
/// without ever repeating the value in an error: it may be a mistyped
/// password. When the value came from the command line (not from the
/// flag's environment variable), says once on stderr that `ps` shows it to
/// every user on the host, and what to use instead: the flag's
/// `--*-file` companion or its environment variable.
#[derive(Debug, Clone, Copy)]
///
/// # Example
///
/// ```
/// #[derive(clap::Parser)]
/// struct Args {
///     #[arg(long, value_parser = zkutil::cli::SecretParser)]
///     operator: zkutil::Secret,
/// }
/// use clap::Parser;
/// let err = Args::try_parse_from(["app", "--operator", "no-colon-s3cret"]).err().expect("refused");
/// assert!(!err.to_string().contains("s3cret"), "never echoed: {err}");
/// ```
pub struct SecretParser;

impl clap::builder::TypedValueParser for SecretParser {
    type Value = Secret;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Secret, clap::Error> {
        let name = flag_name(arg, "--zk-auth");
        value
            .to_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                clap::Error::raw(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid value for {name}: expected user:password (the value is not shown)\n"),
                )
                .with_cmd(cmd)
            })
    }

    /// As `parse_ref`, and the `ps` warning when
    /// `source` is the command line: the parser is the one place that
    /// sees where a value came from while every binary still parses with
    /// `Args::parse()`.
    fn parse_ref_(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
        source: ValueSource,
    ) -> Result<Secret, clap::Error> {
        let secret = self.parse_ref(cmd, arg, value)?;
        if source == ValueSource::CommandLine {
            warn_on_command_line(cmd, arg);
        }
        Ok(secret)
    }
}

/// The warning for a secret typed on the command line, naming what to use
/// instead: the flag's `--*-file` companion when the command has one, and
/// its environment variable.
fn warn_on_command_line(cmd: &clap::Command, arg: Option<&clap::Arg>) {
    let flag = flag_name(arg, "a secret flag");
    if !first_time(format!("flag {flag}")) {
        return;
    }
    let file_flag = format!("{flag}-file");
    let mut instead = Vec::new();
    if cmd.get_arguments().any(|other| {
        other
            .get_long()
            .is_some_and(|long| format!("--{long}") == file_flag)
    }) {
        instead.push(format!("{file_flag} PATH (a file only you can read)"));
    }
    if let Some(env) = arg.and_then(clap::Arg::get_env) {
        instead.push(format!(
            "the {} environment variable",
            env.to_string_lossy()
        ));
    }
    let instead = if instead.is_empty() {
        String::new()
    } else {
        format!("; use {} instead", instead.join(" or "))
    };
    eprintln!(
        "{}: warning: the secret given with {flag} on the command line is shown by ps to every user \
         on this host{instead}",
        program()
    );
}
