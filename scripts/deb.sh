#!/usr/bin/env bash
# deb.sh: Debian packages of the three binaries, built by cargo-deb: time-server, time-client and zkutil
# (each with its man page and shell completions; time-server and zkutil with their systemd units and
# /etc/default files), written to target/debian/.
#
#   scripts/deb.sh                      release builds (cargo-deb is installed when missing)
#   DEB_PROFILE=debug scripts/deb.sh    the debug builds already there, unstripped (the test command's)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The version whose options these are (--profile, --no-build, --fast).
# A debug build of the tool itself: it takes two thirds of a release build's time, and packs as fast.
command -v cargo-deb >/dev/null || cargo install --quiet --locked --debug cargo-deb@3.8.0
profile="${DEB_PROFILE:-release}"
case "$profile" in
    release)
        cargo build --release --quiet -p time-server -p time-client -p zkutil-cli --bins
        MAN_BIN_DIR=target/release scripts/man.sh
        flags=(--profile release) ;;
    debug)
        MAN_BIN_DIR=target/debug scripts/man.sh
        flags=(--profile dev --no-strip --fast) ;;
    *) echo "deb.sh: DEB_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac
mkdir -p target/debian
for package in time-server time-client zkutil-cli; do
    # cargo-deb's notes on assets outside target/release (the man pages) and on the dev profile are
    # expected here.
    cargo deb --quiet -p "$package" --no-build "${flags[@]}" -o target/debian/ 2> >(grep -v -e '^warning: Only source paths' \
        -e 'dev profile is not supported' -e 'To enable debug symbols' >&2)
done
ls target/debian/*.deb >&2
