#!/usr/bin/env bash
# monitor.sh: a real Prometheus that finds every time-server through ZooKeeper, with no per-server config.
#
#   scripts/monitor.sh start [--zk HOSTS] [--path /aurora/time] [--port P] [--dir DIR]
#   scripts/monitor.sh stop [--dir DIR]
#
# start: installs Debian's prometheus when missing (root), writes DIR/prometheus.yml with serverset_sd_configs on
# PATH (where `time-server --format serverset --serverset-path PATH --metrics-listen ADDR` registers) relabelled to each member's
# `metrics` endpoint, starts Prometheus on 127.0.0.1:P (default 9090; 0 picks a free port) with its data in DIR,
# waits until it is ready, and prints the URL of its targets page. HOSTS defaults to $ZK_HOSTS or 127.0.0.1:2181,
# DIR to ${TMPDIR:-/tmp}/zkutil-monitor. stop: kills exactly the PID that start recorded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=zk.sh
source scripts/zk.sh

mon_die() { echo "monitor.sh: error: $*" >&2; exit 1; }

mon_start() {
    local zk="$1" path="$2" port="$3" dir="$4"
    [[ -x /usr/bin/prometheus ]] || zk_install_peers
    mkdir -p "$dir"
    if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        mon_die "already running (pid $(cat "$dir/pid")); scripts/monitor.sh stop --dir $dir"
    fi
    [[ "$port" == 0 ]] && port=$(zk_free_port)
    local servers
    servers=$(sed "s|/.*||; s|,|','|g" <<<"$zk")
    cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: time
    serverset_sd_configs:
      - servers: ['$servers']
        paths: ['$path']
    relabel_configs:
      # Scrape each member's metrics endpoint, not its time listener.
      - source_labels: [__meta_serverset_endpoint_host_metrics, __meta_serverset_endpoint_port_metrics]
        separator: ':'
        regex: '(.+:.+)'
        target_label: __address__
      - source_labels: [__meta_serverset_endpoint_host_metrics]
        regex: ''
        action: drop
YAML
    /usr/bin/prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn >"$dir/prometheus.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /-/ready HTTP/1.0\r\n\r\n' >&3 && grep -q Ready <&3) 2>/dev/null; then
            echo "monitor.sh: Prometheus discovers $path on $zk; targets: http://127.0.0.1:$port/targets" >&2
            echo "PROMETHEUS_URL=http://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || { cat "$dir/prometheus.log" >&2; mon_die "Prometheus exited"; }
        sleep 0.2
    done
    mon_die "Prometheus not ready within 60 s (log: $dir/prometheus.log)"
}

mon_stop() {
    local dir="$1" pid
    [[ -f "$dir/pid" ]] || { echo "monitor.sh: nothing started in $dir" >&2; return 0; }
    pid=$(cat "$dir/pid")
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q prometheus; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        echo "monitor.sh: stopped Prometheus pid $pid" >&2
    fi
    rm -f "$dir/pid"
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
zk="${ZK_HOSTS:-127.0.0.1:2181}" path="/aurora/time" port=9090 dir="${TMPDIR:-/tmp}/zkutil-monitor"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --zk) zk="${2:?--zk needs a value}"; shift 2 ;;
        --path) path="${2:?--path needs a value}"; shift 2 ;;
        --port) port="${2:?--port needs a value}"; shift 2 ;;
        --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
        *) mon_die "unknown argument: $1 (see the header of this script)" ;;
    esac
done
case "$cmd" in
    start) mon_start "$zk" "$path" "$port" "$dir" ;;
    stop) mon_stop "$dir" ;;
    *) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ -z "$cmd" ]] || exit 2 ;;
esac
