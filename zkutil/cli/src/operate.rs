//! The operator subcommands: `disable`, `enable` and `weight` change a
//! live registration in place (the library's [`zkutil::Control`]), each
//! with a conditional write, and print one line per node changed.

use std::io::Write;

use anyhow::Context;
use zkutil::{Control, Endpoint};

use crate::args::Common;
use crate::commands::connect;

/// `zkutil disable`, `enable`, `weight`.
pub fn control(common: &Common, endpoint: Endpoint, control: &Control) -> anyhow::Result<bool> {
    let session = connect(common)?;
    let applied = match control.apply_to(&session, &common.zk.base_path, endpoint) {
        Ok(applied) => applied,
        Err(err) if err.is_no_auth() => {
            return Err(err).context(format!(
                "no WRITE permission on the registration of {endpoint}: pass the operator identity with --zk-auth, \
                 --zk-tls-cert or --zk-sasl (the registrant grants it with --operator or --operator-id)"
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let mut out = std::io::stdout().lock();
    for node in applied {
        let retried = match node.retries {
            0 => String::new(),
            n => format!(", redone {n}x after concurrent writes"),
        };
        writeln!(
            out,
            "{endpoint}: {control} — {} ({}, version {}{retried})",
            node.path, node.format, node.version
        )?;
    }
    Ok(true)
}
