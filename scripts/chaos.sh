#!/usr/bin/env bash
# chaos.sh: a seeded, randomized fault soak of the whole system, invariants checked all along.
#
#   scripts/chaos.sh [--duration 60s] [--seed N] [--no-network] [--tls] [--only TEXT]
#
# Installs ZooKeeper (and nftables) when missing, builds release (time-server, time-client and the soak driver,
# time-client/examples/chaos), then runs it: a 3-node ensemble, three time-servers with three listeners each, a
# time-client asking every 10 ms and an observer, with one fault at a time (ZooKeeper leader or follower killed,
# all of ZooKeeper down shorter and longer than the session timeout, a ZooKeeper node frozen, a time-server killed,
# frozen or restarted, a registration deleted, hostile clients, ...). As root, each runs in a host of its own in a
# network lab (network namespaces) and network faults join in: hosts isolated, partitions, one-way drops, a
# minority split, slow and flapping links. Exits 1 on the first broken invariant, printing the seed to replay it
# with; prints a table of faults at the end. Stops all it started, and the lab deletes what it made.
# CHAOS_PROFILE=debug runs the debug builds instead (the test command's, already built by `cargo test`: one build in
# all for CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=zk.sh
source scripts/zk.sh

zk_install
zk_install_lab
profile="${CHAOS_PROFILE:-release}"
case "$profile" in
    release) cargo build --release --quiet -p time-server -p time-client --bins --example chaos ;;
    # The targets and features of `cargo test --workspace`: nothing to build after it.
    debug) cargo build --quiet --workspace --all-targets ;;
    *) echo "chaos.sh: CHAOS_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac
exec target/"$profile"/examples/chaos \
    --server-bin target/"$profile"/time-server --client-bin target/"$profile"/time-client "$@"
