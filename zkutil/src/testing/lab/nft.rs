//! The nftables rules the lab runs, for the one fault a route cannot
//! make: packets dropped as they arrive, so that the sender learns nothing
//! (a blackhole route fails the sender's own sends at once).

use std::process::{Command, Stdio};

/// The table every lab rule lives in, one per namespace: deleting it
/// removes them all.
const TABLE: &str = "lab";

/// Runs `nft args…` in `namespace`; an error naming the command and what
/// `nft` said, or that it is missing and which package has it.
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
    if said.contains("No such file") || said.contains("not found") {
        return Err(std::io::Error::other(
            "nft is missing: apt-get install nftables (scripts/zk.sh install does)",
        ));
    }
    Err(std::io::Error::other(format!(
        "nft {} in {namespace}: {}",
        args.join(" "),
        said.trim()
    )))
}

/// Drops every packet from `from` as it arrives in `namespace` (the input
/// hook: the receiving namespace never sees it, the sender gets no error).
pub(super) fn drop_from(namespace: &str, from: std::net::Ipv4Addr) -> std::io::Result<()> {
    // `add` keeps a table or chain that is already there.
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
    nft(
        namespace,
        &[
            "add", "rule", "inet", TABLE, "in", "ip", "saddr", &from, "counter", "drop",
        ],
    )
}

/// Removes every rule of the lab's table in `namespace`.
pub(super) fn remove_all(namespace: &str) -> std::io::Result<()> {
    nft(namespace, &["delete", "table", "inet", TABLE])
}
