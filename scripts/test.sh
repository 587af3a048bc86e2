#!/usr/bin/env bash
# test.sh: every check and test of the project, as CI runs them (.ci/run calls this and nothing else).
#
# Installs ZooKeeper and the interop peers (Apache Curator, a JDK, Prometheus) when missing (the tests start their own
# servers from their jars), then: rustfmt check,
# clippy with warnings as errors, `cargo test --workspace` (real ZooKeeper, never a mock; the doctests too), the
# vendored zookeeper-client checked against its published source (--full: and its unit tests), zkutil's
# register and discover examples against a real ZooKeeper, the demo end to
# end (`scripts/demo.sh --count 5 --interval 100ms` on free ports), checking that it leaves no process behind,
# man pages and completions (scripts/man.sh), the TLS walk-through of docs/security.md as written
# (scripts/docs-run.sh), and a 60 s chaos soak with a fixed seed (--full: 10 minutes) (scripts/chaos.sh; network faults
# too, in a network lab, when run as root), and 30 s of it against a TLS-only ZooKeeper.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# --full: also the vendored client's own unit tests and a 10-minute chaos soak (not in CI: over its 30 minutes).
full=""
case "${1:-}" in
    --full) full=1 ;;
    "") ;;
    *) echo "usage: scripts/test.sh [--full]" >&2; exit 2 ;;
esac
# shellcheck source=zk.sh
source scripts/zk.sh

test_log="$(mktemp)" pidfile="$(mktemp)"
trap 'rm -f "$test_log" "$pidfile" "$pidfile.out"' EXIT

zk_install
zk_install_peers
# The post's own Go programs (a peer of the interop tests), built from ../shared/peers/seed-go (installs Debian's Go
# and go-zookeeper when missing); the tests find them in $SEED_GO_OUT.
export SEED_GO_OUT="${SEED_GO_OUT:-/tmp/seed-go}"
[[ -f ../shared/peers/seed-go/build.sh ]] ||
    { echo "test.sh: ../shared/peers/seed-go is missing: the shared folder must sit beside this checkout" >&2; exit 1; }
bash ../shared/peers/seed-go/build.sh >/dev/null
echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== structure (file sizes, import cycles)" >&2
scripts/structure.sh
echo "== cargo doc (the library and the binaries' crates, warnings as errors)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc -p zkutil -p time-server -p time-client --no-deps --all-features --quiet
echo "== cargo test" >&2
cargo test --workspace 2>&1 | tee "$test_log"
# The patched zookeeper-client, outside the workspace: exactly the published crate plus what its PATCHED.md lists; with
# --full, its own unit tests too (upstream's, with its own Cargo.lock: a second build of 2 min 20 s that CI's 30
# minutes no longer hold; our patches are attacked by the workspace's tests above). Its Docker-based tests are not in
# the copy.
echo "== vendored zookeeper-client: vendor-check${full:+, unit tests}" >&2
scripts/vendor-check.sh
if [[ -n "$full" ]]; then
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
        cargo test --manifest-path vendor/zookeeper-client/Cargo.toml --lib --locked 2>&1 | tee -a "$test_log"
fi

# The library's plain examples against a real ZooKeeper: `register` holds a registration, `discover` must list it,
# and a SIGTERM must deregister it (built by `cargo test` above).
echo "== zkutil examples" >&2
(
    work="$(mktemp -d)" reg=""
    finish() {
        set +e
        [[ -n "$reg" ]] && kill -KILL "$reg" 2>/dev/null && wait "$reg" 2>/dev/null
        zk_stop "$work/zk"
        rm -rf "$work"
    }
    trap finish EXIT
    zk_use 1 "$work/zk" 0
    target/debug/examples/register 127.0.0.1:18897 >"$work/register.out" 2>&1 &
    reg=$!
    for _ in $(seq 1 100); do grep -q '^registered' "$work/register.out" && break; sleep 0.1; done
    DISCOVER_FOR=3s target/debug/examples/discover >"$work/discover.out"
    grep -qx '  127.0.0.1:18897' "$work/discover.out" ||
        { echo "test.sh: discover did not list the registered endpoint:" >&2; cat "$work/discover.out" >&2; exit 1; }
    kill -TERM "$reg"
    wait "$reg"
    reg=""
    grep -qx 'deregistered' "$work/register.out" ||
        { echo "test.sh: register did not deregister on SIGTERM:" >&2; cat "$work/register.out" >&2; exit 1; }
    echo "examples ok: discover listed what register held; SIGTERM deregistered it" >&2
)

echo "== demo end to end" >&2
DEMO_LISTEN=127.0.0.1:0,127.0.0.1:0,127.0.0.1:0 DEMO_PIDFILE="$pidfile" DEMO_PROFILE=debug \
    scripts/demo.sh --count 5 --interval 100ms >"$pidfile.out"
lines=$(grep -cE '^\[ *[0-9]+/5\] 127\.0\.0\.1:[0-9]+ ' "$pidfile.out" || true)
rm -f "$pidfile.out"
[[ "$lines" == 5 ]] || { echo "test.sh: demo printed $lines requests, expected 5" >&2; exit 1; }
# A process killed a moment ago may linger as a zombie until init reaps it: not "left behind".
running() { [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
while read -r pid; do
    for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then echo "test.sh: demo left process $pid behind: $(tr '\0' ' ' <"/proc/$pid/cmdline")" >&2; exit 1; fi
done <"$pidfile"
echo "demo ok: 5 requests answered, no process left behind" >&2

# Man pages and completions generate for every binary.
echo "== man pages and completions" >&2
docs="$(mktemp -d)"
# On the debug binaries `cargo test` built (one build in all: no release build in CI).
MAN_BIN_DIR=target/debug scripts/man.sh "$docs"
for bin in time-server time-client zkutil; do
    grep -q "^\.TH $bin 1" "$docs/man/$bin.1" || { echo "test.sh: no man page for $bin" >&2; exit 1; }
    for shell in bash zsh fish; do
        [[ -s "$docs/completions/$shell/$bin" ]] || { echo "test.sh: no $shell completions for $bin" >&2; exit 1; }
    done
done
rm -rf "$docs"

# Installed the ordinary way: `cargo install --locked` of each binary from this checkout (CI's clean clone),
# reusing the build above (--debug, the shared target folder); each installed binary runs --version and
# --help, and the installed zkutil lists a ZooKeeper of its own. The library alone compiles none of the
# command line's dependencies.
echo "== cargo install: zkutil, time-server, time-client" >&2
root="$(mktemp -d)"
for package in zkutil/cli time-server time-client; do
    CARGO_TARGET_DIR="$PWD/target" cargo install --quiet --locked --debug --path "$package" --root "$root" \
        2> >(grep -v -e '^warning: be sure to add' -e 'PATH' >&2)
done
for bin in zkutil time-server time-client; do
    "$root/bin/$bin" --version >/dev/null && "$root/bin/$bin" --help >/dev/null ||
        { echo "test.sh: the installed $bin does not run" >&2; exit 1; }
done
scripts/zk.sh start --port 2185 --dir "$root/zk" >/dev/null
ZK_HOSTS=127.0.0.1:2185 "$root/bin/zkutil" ls >/dev/null 2>&1 ||
    { scripts/zk.sh stop --dir "$root/zk"; echo "test.sh: the installed zkutil cannot list ZooKeeper" >&2; exit 1; }
scripts/zk.sh stop --dir "$root/zk" >/dev/null
rm -rf "$root"
if cargo tree -q -p zkutil -e normal --prefix none | grep -E '^(clap|hyper|prometheus-client|minijinja|tracing-subscriber) v'; then
    echo "test.sh: the zkutil library compiles a command line's dependency without the cli feature" >&2; exit 1
fi
echo "install ok: three binaries installed with cargo install --locked; the library needs no CLI crate" >&2

# The Debian packages (cargo-deb, from the debug builds above), as root: installed with dpkg -i, each
# binary run from /usr/bin, its man page shown, the installed units verified with their man pages, then
# purged with dpkg -P, leaving nothing of theirs under /usr, /etc or /var/lib/systemd.
if [[ "$(id -u)" == 0 ]]; then
    echo "== Debian packages: built, installed, run, purged" >&2
    DEB_PROFILE=debug scripts/deb.sh
    ours() { find /usr /etc /var/lib/systemd -xdev \( -name '*time-server*' -o -name '*time-client*' -o -name '*zkutil*' \) 2>/dev/null | sort; }
    before="$(ours)"
    purge() { dpkg -P time-server time-client zkutil >/dev/null 2>&1 || true; }
    trap purge EXIT
    dpkg -i target/debian/time-server_*.deb target/debian/time-client_*.deb target/debian/zkutil_*.deb >/dev/null
    for bin in time-server time-client zkutil; do
        "/usr/bin/$bin" --version >/dev/null || { echo "test.sh: the packaged $bin does not run" >&2; exit 1; }
        MANPAGER=cat man -l "/usr/share/man/man1/$bin.1.gz" 2>/dev/null | grep -q "$bin" ||
            { echo "test.sh: the packaged man page of $bin does not show" >&2; exit 1; }
    done
    units="$(mktemp -d)"
    cp /usr/lib/systemd/system/time-server.service /usr/lib/systemd/system/zkutil-sidecar.service "$units/"
    cp "/usr/lib/systemd/system/zkutil-register@.service" "$units/zkutil-register@web.service"
    said="$(systemd-analyze verify "$units"/*.service 2>&1)"
    rm -rf "$units"
    [[ -z "$said" ]] || { echo "test.sh: systemd-analyze verify on the installed units: $said" >&2; exit 1; }
    dpkg -P time-server time-client zkutil >/dev/null
    trap - EXIT
    after="$(ours)"
    [[ "$before" == "$after" ]] ||
        { echo "test.sh: the purged packages left: $(comm -13 <(echo "$before") <(echo "$after"))" >&2; exit 1; }
    echo "debs ok: time-server, time-client and zkutil installed, run, man pages shown, units verified, purged clean" >&2
fi

# The docs' TLS walk-through, exactly as written (a TLS-only ZooKeeper, every binary over TLS with certificates).
echo "== docs: the TLS walk-through as written (docs/security.md)" >&2
scripts/docs-run.sh docs/security.md "Try it on one machine"
echo "== docs: the sidecar walk-through as written (docs/sidecar.md)" >&2
scripts/docs-run.sh docs/sidecar.md "Try it on one machine"
echo "== docs: HAProxy in front of the registry as written (docs/render.md)" >&2
scripts/docs-run.sh docs/render.md "Try it on one machine"

# The randomized fault soak, 60 s with a fixed seed (--full: 10 minutes; any run: scripts/chaos.sh --duration 10m --seed N).
soak="${full:+10m}"
echo "== chaos soak (${soak:-60s}, seed 20261127)" >&2
CHAOS_PROFILE=debug scripts/chaos.sh --duration "${soak:-60s}" --seed 20261127
# The same against a TLS-only ensemble that needs client certificates: restarts force TLS reconnects.
echo "== chaos soak over TLS (30 s, seed 20261203)" >&2
CHAOS_PROFILE=debug scripts/chaos.sh --duration 30s --seed 20261203 --tls

# The minimum supported Rust version (rust-version in Cargo.toml), when that toolchain can be installed: with the
# repository's own Cargo.lock (--locked: what `cargo install --locked` builds), the library with every feature and
# the three binaries, type-checked with it (cargo check: what an older compiler refuses).
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
echo "== the library and the binaries on the minimum Rust, $msrv, with Cargo.lock" >&2
if command -v rustup >/dev/null && rustup toolchain install "$msrv" --profile minimal >/dev/null 2>&1; then
    { CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check --quiet --locked -p zkutil --lib --all-features &&
        CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check --quiet --locked -p zkutil-cli -p time-server -p time-client --bins; } ||
        { echo "test.sh: Rust $msrv cannot build them with Cargo.lock (lower a pin: CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo update -p CRATE)" >&2; exit 1; }
    echo "msrv ok: the library and the binaries compile with Rust $msrv and Cargo.lock" >&2
else
    echo "msrv skipped: Rust $msrv cannot be installed here (no rustup, or no network to its dist server)" >&2
fi

# One closing line for the whole run: the sum of cargo's "test result" lines.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$test_log"
