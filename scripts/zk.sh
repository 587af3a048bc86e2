#!/usr/bin/env bash
# zk.sh: install, start, stop and inspect Apache ZooKeeper for this project.
#
#   scripts/zk.sh install                               apt-get install zookeeper, and the interop peers the tests
#                                                       speak to (Apache Curator, a JDK, Prometheus), if missing (root)
#   scripts/zk.sh start [--nodes 1|3] [--dir DIR] [--port P] [--tls]
#                                                       start a standalone node or a 3-node ensemble on 127.0.0.1,
#                                                       wait until every node serves, print ZK_HOSTS=...; with --tls
#                                                       TLS only (client certificates required), certificates made
#                                                       in DIR/tls (scripts/zk-tls.sh), and print ZK_TLS_CA=...
#   scripts/zk.sh stop [--dir DIR]                      kill exactly the PIDs that start recorded in DIR
#   scripts/zk.sh status [--dir DIR]                    each node's mode (srvr); exit 1 if one is down
#
# Each node is a plain `java ... QuorumPeerMain DIR/nodeN/zoo.cfg` process (no daemon wrapper), so its PID is
# the JVM's. DIR defaults to $ZK_DIR or ${TMPDIR:-/tmp}/zkutil-zk; P (first client port) to 2181, or a free
# port when 0. Other scripts source this file for zk_install, zk_use (start + export ZK_HOSTS), zk_stop.
set -euo pipefail

ZK_CLASSPATH="${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar}"
ZK_JAVA="${ZK_JAVA:-java}"
# shellcheck source=zk-tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/zk-tls.sh"

zk_die() { echo "zk.sh: error: $*" >&2; exit 1; }
zk_log() { echo "zk.sh: $*" >&2; }

zk_install() {
    local jar="${ZK_CLASSPATH%%:*}"
    if [[ -f "$jar" ]] && command -v "$ZK_JAVA" >/dev/null; then
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        zk_die "ZooKeeper is not installed ($jar missing) and installing needs root: sudo apt-get update && sudo apt-get install -y zookeeper"
    fi
    zk_log "installing Debian's zookeeper package (about 10 s)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || zk_die "apt-get update failed"
    apt-get install -y -qq zookeeper >&2 || zk_die "apt-get install zookeeper failed"
    [[ -f "$jar" ]] || zk_die "zookeeper installed but $jar is still missing"
}

# The interop peers of the tests: Apache Curator's discovery and recipes (Debian's 5.4) and a JDK to compile
# the Java peer against them (zkutil/tests/peers).
ZK_PEER_JARS="/usr/share/java/curator-x-discovery.jar /usr/share/java/curator-recipes.jar"
# ... and Prometheus (2.42), which discovers serversets.

zk_install_peers() {
    local missing=()
    for jar in $ZK_PEER_JARS; do [[ -f "$jar" ]] || missing+=("$jar"); done
    local packages=()
    [[ ${#missing[@]} -eq 0 ]] || packages+=(libcurator-discovery-java libcurator-recipes-java)
    command -v javac >/dev/null || packages+=(default-jdk-headless)
    [[ -x /usr/bin/prometheus ]] || packages+=(prometheus)
    # nginx: a real HTTP service for the sidecar's checks (time-server/tests/it/sidecar.rs).
    [[ -x /usr/sbin/nginx ]] || packages+=(nginx-light)
    # HAProxy 2.6 and nginx's stream module: consumers of `zkutil render`'s files (time-server/tests/it/render*.rs).
    command -v haproxy >/dev/null || packages+=(haproxy)
    [[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]] || packages+=(libnginx-mod-stream)
    # systemd-analyze verifies the packages' units (time-server/tests/it/systemd.rs).
    command -v systemd-analyze >/dev/null || packages+=(systemd)
    # A real browser for the web console's tests (time-server/tests/it/console.rs), driven over WebDriver.
    # Without its recommends (desktop daemons, a sandbox helper the tests turn off).
    local browser=()
    [[ -x /usr/bin/chromium ]] || browser+=(chromium)
    command -v chromedriver >/dev/null || browser+=(chromium-driver)
    # The network lab's drops on arrival and loss are nftables rules (time-server/tests/lab).
    [[ -x /usr/sbin/nft ]] || command -v nft >/dev/null || packages+=(nftables)
    # scripts/structure.sh reads the import graph with a Python script.
    command -v python3 >/dev/null || packages+=(python3-minimal)
    [[ ${#packages[@]} -eq 0 && ${#browser[@]} -eq 0 ]] && return 0
    if [[ "$(id -u)" != 0 ]]; then
        zk_die "the tests' interop peers are not installed and installing needs root: sudo apt-get install -y ${packages[*]} ${browser[*]}"
    fi
    zk_log "installing ${packages[*]} ${browser[*]} (the tests' interop peers)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || zk_die "apt-get update failed"
    if [[ ${#packages[@]} -gt 0 ]]; then
        apt-get install -y -qq "${packages[@]}" >&2 || zk_die "apt-get install ${packages[*]} failed"
    fi
    if [[ ${#browser[@]} -gt 0 ]]; then
        apt-get install -y -qq --no-install-recommends "${browser[@]}" >&2 || zk_die "apt-get install ${browser[*]} failed"
    fi
}

# The network lab's tools (nftables), as root only: without root there is no lab (scripts/chaos.sh).
zk_install_lab() {
    [[ "$(id -u)" == 0 ]] || return 0
    [[ -x /usr/sbin/nft ]] || command -v nft >/dev/null && return 0
    zk_log "installing nftables (the network lab's drops on arrival and loss)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || zk_die "apt-get update failed"
    apt-get install -y -qq nftables >&2 || zk_die "apt-get install nftables failed"
}

# srvr answer of 127.0.0.1:$1 (over TLS with the certificates in $2, if given), empty when the node does not
# answer within 2 s (3 s with TLS).
zk_srvr() {
    if [[ -n "${2:-}" ]]; then zk_srvr_tls "$1" "$2"; return; fi
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && cat <&3" 2>/dev/null || true
}

zk_mode() { zk_srvr "$@" | sed -n 's/^Mode: *//p'; }

# A loopback port nobody listens on now (a race, like every free-port finder).
zk_free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$(( 20000 + RANDOM % 30000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    zk_die "no free port found"
}

zk_default_dir() { echo "${ZK_DIR:-${TMPDIR:-/tmp}/zkutil-zk}"; }

zk_pid_alive() {
    local pid="$1" cfg="$2"
    [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "QuorumPeerMain $cfg"
}

# zk_use NODES DIR PORT: starts ZooKeeper and exports ZK_HOSTS in the calling shell; exits the caller with a
# clear error when it does not start. (`eval "$(zk_start ...)"` would carry on when zk_start fails, because a
# failing command substitution inside eval's argument is not an error, and everything would then talk to the
# default 127.0.0.1:2181.)
zk_use() {
    local out
    out="$(zk_start "$@")" || zk_die "ZooKeeper did not start (see above); nothing was run"
    ZK_HOSTS="$(sed -n 's/^ZK_HOSTS=//p' <<<"$out")"
    [[ -n "$ZK_HOSTS" ]] || zk_die "ZooKeeper started but reported no address"
    export ZK_HOSTS
}

# zk_start NODES DIR PORT [TLS]: prints ZK_HOSTS=... on stdout when every node serves (TLS=1: TLS only, and
# ZK_TLS_CA=... too).
zk_start() {
    local nodes="$1" dir="$2" port="$3" tls="${4:-0}" i tls_dir="" classpath="$ZK_CLASSPATH"
    [[ "$nodes" == 1 || "$nodes" == 3 ]] || zk_die "--nodes must be 1 or 3"
    zk_install
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [[ "$tls" == 1 ]]; then
        tls_dir="$dir/tls"
        zk_tls_certs "$tls_dir"
        classpath="$(zk_tls_classpath)"
    fi
    for i in $(seq 1 "$nodes"); do
        if [[ -f "$dir/node$i/pid" ]] && zk_pid_alive "$(cat "$dir/node$i/pid")" "$dir/node$i/zoo.cfg"; then
            zk_die "ZooKeeper already runs from $dir (pid $(cat "$dir/node$i/pid")); run: scripts/zk.sh stop --dir $dir"
        fi
    done
    local -a client_ports=() servers=()
    for i in $(seq 1 "$nodes"); do
        if [[ "$port" == 0 ]]; then client_ports+=("$(zk_free_port)"); else client_ports+=("$(( port + i - 1 ))"); fi
        if [[ "$nodes" -gt 1 ]]; then servers+=("server.$i=127.0.0.1:$(zk_free_port):$(zk_free_port)"); fi
    done
    local hosts=""
    for i in $(seq 1 "$nodes"); do
        local p="${client_ports[$((i - 1))]}" nd="$dir/node$i"
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then zk_die "port $p is taken (try --port 0)"; fi
        mkdir -p "$nd/data"
        {
            echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"
            echo "dataDir=$nd/data"
            if [[ -n "$tls_dir" ]]; then zk_tls_port_config 127.0.0.1 "$p" "$tls_dir"
            else echo "clientPort=$p"; echo "clientPortAddress=127.0.0.1"; fi
            echo "admin.enableServer=false"; echo "4lw.commands.whitelist=ruok,srvr,stat,mntr,cons"
            echo "maxClientCnxns=0"
            for s in "${servers[@]}"; do echo "$s"; done
        } >"$nd/zoo.cfg"
        [[ "$nodes" -gt 1 ]] && echo "$i" >"$nd/data/myid"
        nohup "$ZK_JAVA" -Xmx512m -cp "$classpath" org.apache.zookeeper.server.quorum.QuorumPeerMain "$nd/zoo.cfg" \
            >"$nd/zookeeper.log" 2>&1 </dev/null &
        echo $! >"$nd/pid"
        hosts="${hosts:+$hosts,}127.0.0.1:$p"
    done
    echo "$hosts" >"$dir/hosts"
    local deadline=$(( SECONDS + 60 ))
    while :; do
        local serving=0 leaders=0
        for i in $(seq 1 "$nodes"); do
            local pid; pid="$(cat "$dir/node$i/pid")"
            if ! kill -0 "$pid" 2>/dev/null; then
                tail -n 20 "$dir/node$i/zookeeper.log" >&2 || true
                zk_stop "$dir"
                zk_die "ZooKeeper node $i exited before it was ready (log: $dir/node$i/zookeeper.log)"
            fi
            local mode; mode="$(zk_mode "${client_ports[$((i - 1))]}" "$tls_dir")"
            [[ -n "$mode" ]] && serving=$(( serving + 1 ))
            [[ "$mode" == leader ]] && leaders=$(( leaders + 1 ))
        done
        if [[ "$serving" == "$nodes" ]] && { [[ "$nodes" == 1 ]] || [[ "$leaders" == 1 ]]; }; then break; fi
        if (( SECONDS > deadline )); then
            zk_stop "$dir"
            zk_die "ZooKeeper not ready after 60 s (logs in $dir)"
        fi
        sleep 0.1
    done
    zk_log "ZooKeeper ($nodes node(s)) serving${tls_dir:+ TLS only} from $dir"
    echo "ZK_HOSTS=$hosts"
    if [[ -n "$tls_dir" ]]; then echo "ZK_TLS_CA=$tls_dir/ca.pem"; fi
}

# zk_stop DIR: ends exactly the JVMs whose PIDs start recorded, TERM then KILL.
zk_stop() {
    local dir="$1" pidfile pid cfg
    shopt -s nullglob
    for pidfile in "$dir"/node*/pid; do
        pid="$(cat "$pidfile")"
        cfg="$(dirname "$pidfile")/zoo.cfg"
        if zk_pid_alive "$pid" "$cfg"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do zk_pid_alive "$pid" "$cfg" || break; sleep 0.1; done
            if zk_pid_alive "$pid" "$cfg"; then
                kill -KILL "$pid" 2>/dev/null || true
                for _ in $(seq 1 50); do zk_pid_alive "$pid" "$cfg" || break; sleep 0.1; done
                if zk_pid_alive "$pid" "$cfg"; then zk_die "ZooKeeper pid $pid is still running after SIGKILL"; fi
            fi
            zk_log "stopped ZooKeeper pid $pid"
        fi
        rm -f "$pidfile"
    done
}

zk_status() {
    local dir="$1" down=0 cfg port
    shopt -s nullglob
    local cfgs=("$dir"/node*/zoo.cfg)
    [[ ${#cfgs[@]} -gt 0 ]] || zk_die "no ZooKeeper configured in $dir"
    for cfg in "${cfgs[@]}"; do
        local tls_dir=""
        port="$(sed -n 's/^clientPort=//p' "$cfg")"
        if [[ -z "$port" ]]; then port="$(sed -n 's/^secureClientPort=//p' "$cfg")"; tls_dir="$dir/tls"; fi
        local mode; mode="$(zk_mode "$port" "$tls_dir")"
        echo "127.0.0.1:$port ${mode:-down}"
        [[ -n "$mode" ]] || down=1
    done
    return "$down"
}

zk_main() {
    local cmd="${1:-}"; shift || true
    local nodes=1 dir port=2181 tls=0
    dir="$(zk_default_dir)"
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --nodes) nodes="${2:?--nodes needs a value}"; shift 2 ;;
            --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
            --port) port="${2:?--port needs a value}"; shift 2 ;;
            --tls) tls=1; shift ;;
            -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
            *) zk_die "unknown argument: $1 (see --help)" ;;
        esac
    done
    case "$cmd" in
        install) zk_install; zk_install_peers ;;
        start) zk_start "$nodes" "$dir" "$port" "$tls" ;;
        stop) zk_stop "$dir" ;;
        status) zk_status "$dir" ;;
        ""|-h|--help|help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
        *) zk_die "unknown command: $cmd (install, start, stop, status)" ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    zk_main "$@"
fi
