//! The `nft` commands the lab runs for what a route cannot make (loss, and
//! a cut the sender is not told of): a table `inet lab` in a host's
//! namespace, its chain on the input hook, a rule per sender.
//!
//! Loss is made where the packets arrive, on the input hook of the
//! receiving namespace: the packet is dropped silently, so TCP retransmits
//! for real. A rule on the sender's output hook would instead fail the
//! send at once with EPERM, which no real network does.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The table every lab rule lives in: deleting it removes them all.
const TABLE: &str = "lab";

/// Runs `nft args…` in `namespace`; an error names the command and what
/// `nft` said (a hint when it is not installed: `scripts/zk.sh install`).
fn nft(namespace: &str, args: &[&str]) -> std::io::Result<()> {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, "nft"])
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let hint = if said.contains("No such file") || said.contains("exec of \"nft\" failed") {
        " (is nftables installed? `scripts/zk.sh install` installs it)"
    } else {
        ""
    };
    Err(std::io::Error::other(format!(
        "nft {} in {namespace}: {}{hint}",
        args.join(" "),
        said.trim()
    )))
}

/// Drops `percent` % of what `from` sends that arrives in `namespace`,
/// at random per packet (100 or more: every packet, a silent cut).
pub(super) fn drop_from(namespace: &str, from: Ipv4Addr, percent: u8) -> std::io::Result<()> {
    nft(namespace, &["add", "table", "inet", TABLE])?;
    nft(
        namespace,
        &[
            "add",
            "chain",
            "inet",
            TABLE,
            "in",
            "{ type filter hook input priority 0; }",
        ],
    )?;
    let from = from.to_string();
    let share = percent.to_string();
    let mut rule = vec!["add", "rule", "inet", TABLE, "in", "ip", "saddr", &from];
    // `numgen random mod 100` is 0–99: `< 100` is refused, and needless.
    if percent < 100 {
        rule.extend(["numgen", "random", "mod", "100", "<", &share]);
    }
    rule.extend(["counter", "drop"]);
    nft(namespace, &rule)
}

/// Removes every lab rule of `namespace` (its table).
pub(super) fn clear(namespace: &str) -> std::io::Result<()> {
    nft(namespace, &["delete", "table", "inet", TABLE])
}
