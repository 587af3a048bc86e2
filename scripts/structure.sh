#!/usr/bin/env bash
# structure.sh: the codebase's shape, checked (scripts/test.sh runs it).
#
# 1. No Rust source file over 450 lines (the vendored zookeeper-client aside): a longer file holds more than one
#    concept, or one concept that wants a folder.
# 2. No import cycle between the files of a folder (scripts/imports.py --levels): a subfolder counts as one file;
#    the crate roots and a folder's own mod.rs are left out (they declare and re-export their children), and so is
#    error.rs, the one error type, which names the types its variants carry (an Endpoint, a Format) while every
#    module returns it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
max=450 bad=0
while read -r lines file; do
    [[ "$file" == total ]] && continue
    if ((lines > max)); then echo "structure.sh: $file has $lines lines (at most $max)" >&2; bad=1; fi
done < <(git ls-files -- '*.rs' ':!vendor/**' | xargs wc -l)
python3 scripts/imports.py --levels --exclude=error --exclude=lib --exclude=main \
    zkutil/src/lib.rs zkutil/cli/src/main.rs time-server/src/lib.rs time-server/src/main.rs \
    time-client/src/lib.rs time-client/src/main.rs time-client/examples/chaos/main.rs bench/src/main.rs >&2 || bad=1
((bad == 0)) || exit 1
echo "structure ok: no file over $max lines, no import cycle" >&2
