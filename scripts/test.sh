#!/usr/bin/env bash
# test.sh: every check and test of the project, as CI runs them (.ci/run calls this and nothing else).
#
# Installs ZooKeeper when missing (the tests start their own servers from its jars), then: rustfmt check,
# clippy with warnings as errors, `cargo test --workspace` (real ZooKeeper, never a mock), and the demo end to
# end (`scripts/demo.sh --count 5 --interval 100ms` on free ports), checking that it leaves no process behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=zk.sh
source scripts/zk.sh

zk_install
echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test" >&2
cargo test --workspace

echo "== demo end to end" >&2
pidfile="$(mktemp)"
trap 'rm -f "$pidfile"' EXIT
DEMO_LISTEN=127.0.0.1:0,127.0.0.1:0,127.0.0.1:0 DEMO_PIDFILE="$pidfile" \
    scripts/demo.sh --count 5 --interval 100ms >"$pidfile.out"
lines=$(grep -c '^connect host: ' "$pidfile.out" || true)
rm -f "$pidfile.out"
[[ "$lines" == 5 ]] || { echo "test.sh: demo printed $lines requests, expected 5" >&2; exit 1; }
while read -r pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "test.sh: demo left process $pid behind" >&2; exit 1; fi
done <"$pidfile"
echo "demo: 5 passed, 0 failed" >&2
