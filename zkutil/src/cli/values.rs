//! `values`: parsers of the binaries' flag values that are not
//! ZooKeeper's own: durations, timeouts, a writable registry format. clap
//! turns their errors into a one-line message and exit 2.

use std::time::Duration;

use crate::error::Error;

/// The parser of an on/off flag's environment variable: empty, `0`,
/// `false`, `no`, `off` (any case) are off, anything else on, as an
/// `EnvironmentFile` line `ZK_QUIET=` means "not set" rather than a usage
/// error. On the command line the flag takes no value, as before.
pub fn env_flag() -> clap::builder::FalseyValueParser {
    clap::builder::FalseyValueParser::new()
}

/// The longest duration any flag accepts. Longer is a typo (a missing
/// unit, `99999999999years`), and would overflow a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A flag's duration (`500ms`, `2s`, `1h 30m`), zero allowed: for pauses
/// such as `--drain` or `--interval`. clap turns an error into a one-line
/// message and exit 2.
///
/// # Errors
///
/// Unparseable text, or more than [`MAX_DURATION`].
pub fn duration(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if value > MAX_DURATION {
        return Err(format!(
            "{text} is too long: at most {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(value)
}

/// Like [`duration`], for timeouts: zero is refused (nothing could ever
/// finish within it).
///
/// # Errors
///
/// As [`duration`], and a zero duration.
pub fn timeout(text: &str) -> Result<Duration, String> {
    let value = duration(text)?;
    if value.is_zero() {
        return Err("a timeout must be more than 0".to_owned());
    }
    Ok(value)
}

/// A registry format that can be written: every one of
/// [`Format::WRITABLE`](crate::Format::WRITABLE) (`plain`, `curator`,
/// `spring`, `serverset`).
///
/// # Errors
///
/// An unknown name, or a format that is read only.
pub fn writable_format(text: &str) -> Result<crate::Format, String> {
    let format: crate::Format = text.parse().map_err(|err: Error| err.to_string())?;
    if crate::Format::WRITABLE.contains(&format) {
        Ok(format)
    } else {
        Err(format!("{format} cannot be written"))
    }
}
