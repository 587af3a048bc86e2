#!/usr/bin/env bash
# demo.sh: the whole system end to end, on a machine with nothing running.
#
#   scripts/demo.sh [time-client flags...]      e.g. scripts/demo.sh --count 10 --interval 200ms
#
# Installs ZooKeeper when missing (apt, as root), starts a standalone one on a free loopback port in a temp dir,
# builds release, starts a time-server (listeners: $DEMO_LISTEN, default the post's 127.0.0.1:8897,8898,8899),
# runs the time-client with your flags, then stops everything it started, also on Ctrl-C or failure.
# Exits with the client's exit code. DEMO_PIDFILE=FILE records the PIDs it started (tests check they are gone);
# DEMO_PROFILE=debug uses debug binaries (the test command's, already built) instead of building release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=zk.sh
source scripts/zk.sh

listen="${DEMO_LISTEN:-127.0.0.1:8897,127.0.0.1:8898,127.0.0.1:8899}"
n_listeners=$(( $(tr -cd ',' <<<"$listen" | wc -c) + 1 ))
work="$(mktemp -d "${TMPDIR:-/tmp}/zkutil-demo.XXXXXX")"
server_pid=""

cleanup() {
    local rc=$?
    set +e
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [[ -f "$work/server.log" ]]; then
        echo "--- time-server log ---" >&2
        cat "$work/server.log" >&2
    fi
    zk_stop "$work/zk"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

zk_install
zk_use 1 "$work/zk" 0
if [[ -n "${DEMO_PIDFILE:-}" ]]; then cat "$work"/zk/node*/pid >"$DEMO_PIDFILE"; fi

profile="${DEMO_PROFILE:-release}"
case "$profile" in
    release) echo "demo: building release binaries" >&2; cargo build --release --quiet -p time-server -p time-client ;;
    # The targets and features of `cargo test --workspace`: nothing to build after it.
    debug) cargo build --quiet --workspace --all-targets ;;
    *) echo "demo.sh: DEMO_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac

target/"$profile"/time-server --listen "$listen" --drain 200ms >"$work/server.log" 2>&1 &
server_pid=$!
if [[ -n "${DEMO_PIDFILE:-}" ]]; then echo "$server_pid" >>"$DEMO_PIDFILE"; fi

# Wait until every listener is registered (or the server gave up).
deadline=$(( SECONDS + 30 ))
until [[ "$(grep -c ' registered ' "$work/server.log" || true)" -ge "$n_listeners" ]]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "demo: error: time-server exited before registering" >&2
        exit 1
    fi
    if (( SECONDS > deadline )); then echo "demo: error: time-server did not register within 30 s" >&2; exit 1; fi
    sleep 0.1
done
echo "demo: ZooKeeper at $ZK_HOSTS, time-server pid $server_pid registered $n_listeners listener(s); running time-client $*" >&2

set +e
target/"$profile"/time-client "$@"
rc=$?
set -e
exit "$rc"
