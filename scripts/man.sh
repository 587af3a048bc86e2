#!/usr/bin/env bash
# man.sh: write the man pages and shell completions of the three binaries,
# generated from their flag definitions (never edited by hand).
#
#   scripts/man.sh [OUT_DIR]     default OUT_DIR: target/doc-cli
#
# Writes OUT_DIR/man/{time-server,time-client,zkutil}.1 and
# OUT_DIR/completions/{bash,zsh,fish}/<binary>. Try: man -l target/doc-cli/man/zkutil.1
# With MAN_BIN_DIR set (e.g. target/release), uses the binaries there instead of building debug ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-target/doc-cli}
bin_dir=${MAN_BIN_DIR:-}
if [[ -z "$bin_dir" ]]; then
    cargo build --quiet --bins
    bin_dir=target/debug
fi
mkdir -p "$out/man"
for shell in bash zsh fish; do mkdir -p "$out/completions/$shell"; done
for bin in time-server time-client; do
    "$bin_dir/$bin" --man-page >"$out/man/$bin.1"
    for shell in bash zsh fish; do "$bin_dir/$bin" --completions "$shell" >"$out/completions/$shell/$bin"; done
done
"$bin_dir/zkutil" man-page >"$out/man/zkutil.1"
for shell in bash zsh fish; do "$bin_dir/zkutil" completions "$shell" >"$out/completions/$shell/zkutil"; done
echo "man.sh: wrote $out/man/*.1 and $out/completions/{bash,zsh,fish}/*" >&2
