#!/usr/bin/env bash
# docs-run.sh FILE HEADING: runs the first ```sh block under the Markdown heading HEADING of FILE, exactly as
# written, from the repository's root (bash -euo pipefail: any failing command fails the run), so that a
# walk-through in the docs is known to work. The block runs in its own process group: whatever it started in the
# background and left behind when it failed is ended, and the block's own cleanup lines are run again
# (CLEANUP, default: every `scripts/zk.sh stop` line of the block).
#
#   scripts/docs-run.sh docs/security.md "Try it on one machine"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
file="${1:?usage: docs-run.sh FILE HEADING}" heading="${2:?usage: docs-run.sh FILE HEADING}"
[[ -f "$file" ]] || { echo "docs-run.sh: no such file: $file" >&2; exit 2; }
block="$(awk -v heading="$heading" '
    inside && /^```$/ { exit }
    inside { print; next }
    /^#+ / { sub(/^#+ /, ""); under = ($0 == heading); next }
    under && /^```sh$/ { inside = 1; next }
' "$file")"
[[ -n "$block" ]] || { echo "docs-run.sh: no \`\`\`sh block under \"$heading\" in $file" >&2; exit 2; }
command -v curl >/dev/null || {
    [[ "$(id -u)" == 0 ]] || { echo "docs-run.sh: curl is missing (apt-get install curl)" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >&2
}
cleanup="${CLEANUP:-$(grep -E '^scripts/zk\.sh stop' <<<"$block" || true)}"
echo "docs-run.sh: running the block under \"$heading\" in $file" >&2
setsid bash -euo pipefail -c "$block" &
pid=$!
rc=0
wait "$pid" || rc=$?
if [[ "$rc" != 0 ]]; then
    echo "docs-run.sh: the block failed (exit $rc); cleaning up" >&2
    kill -TERM -- "-$pid" 2>/dev/null || true
    bash -c "$cleanup" >&2 || true
fi
exit "$rc"
