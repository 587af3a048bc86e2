#!/usr/bin/env bash
# bench.sh: measure the system against baselines in the same run and write bench/RESULTS.md and bench/RESULTS.svg.
#
#   scripts/bench.sh            full run (under 10 minutes)
#   scripts/bench.sh --quick    smaller samples (under 1 minute); writes bench/RESULTS-quick.md and .svg
#   scripts/bench.sh --quick --only SECTION    some sections only, repeatable (names: --help; without --quick
#                               it rewrites RESULTS.md with those sections alone)
#
# Installs ZooKeeper and the peers when missing, builds release (time-server, time-client, zkutil and the benchmark
# crate, bench/),
# then runs it: it starts its own ZooKeeper on a free loopback port in a temp dir,
# its own time-servers, and stops all of them. Not run in CI (figures are for reading, never asserted).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=zk.sh
source scripts/zk.sh

zk_install
# Curator (section 9) and HAProxy (section 14) are peers of the benchmark as of the tests.
zk_install_peers
cargo build --release --quiet -p time-server -p time-client -p zkutil-cli -p bench --bins
exec target/release/bench --server-bin target/release/time-server --client-bin target/release/time-client \
    --out bench "$@"
