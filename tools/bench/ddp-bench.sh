#!/usr/bin/env bash
# Reproduces the DDP measurements of apogee-bench: server memory per idle WebSocket connection
# (`idle`, without and with a room subscription) and room fan-out latency (`fanout`, paced then
# burst). Every run starts `apogee serve` on a fresh data dir and stops it afterwards.
#
# Build first (release, separate target dir):
#   export CARGO_TARGET_DIR=/var/tmp/apogee-release
#   cargo build --release -p apogee -p apogee-bench
# Then:  tools/bench/ddp-bench.sh [idle|fanout|all]      (default: all)
#
# Env: APOGEE_BIN, BENCH_BIN (default: $CARGO_TARGET_DIR/release/...), PORT (3400),
#      SOCKETS (10000), USERS (100), HOLD (65 s: past the server's 30 s ping), MEMBERS (1000),
#      MESSAGES (200 per phase), RATES ("20,0": paced 20/s then burst), REPEAT (2 runs each).
set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-/var/tmp/apogee-release}
APOGEE_BIN=${APOGEE_BIN:-$TARGET/release/apogee}
BENCH_BIN=${BENCH_BIN:-${LOADGEN_BIN:-$TARGET/release/apogee-bench}}
PORT=${PORT:-3400}
SOCKETS=${SOCKETS:-10000}
USERS=${USERS:-100}
HOLD=${HOLD:-65}
MEMBERS=${MEMBERS:-1000}
MESSAGES=${MESSAGES:-200}
RATES=${RATES:-20,0}
REPEAT=${REPEAT:-2}
URL="http://127.0.0.1:$PORT"
WORK=$(mktemp -d /var/tmp/apogee-ddp-bench.XXXXXX)
SERVER_PID=""

# Each side holds one descriptor per socket: ask for plenty, settle for the hard limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < SOCKETS + 1000)); then
    echo "open-file limit $(ulimit -n) is too low for $SOCKETS sockets" >&2
    exit 1
fi

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

start_server() {
    local tries=0
    if curl -s -o /dev/null "$URL/api/info"; then
        echo "port $PORT is already in use" >&2
        exit 1
    fi
    TEST_MODE=true "$APOGEE_BIN" serve --port "$PORT" --data-dir "$(mktemp -d "$WORK/data.XXXXXX")" \
        >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    until curl -s -o /dev/null "$URL/api/info"; do
        sleep 0.05
        tries=$((tries + 1))
        if ((tries > 400)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not become ready; see $WORK/server.log" >&2
            exit 1
        fi
    done
}

run_idle() {
    for run in $(seq 1 "$REPEAT"); do
        for sub in "" "--subscribe"; do
            echo "== idle run $run ${sub:-(no subscription)}"
            start_server
            "$BENCH_BIN" idle --url "$URL" --pid "$SERVER_PID" -n "$SOCKETS" -u "$USERS" $sub \
                --settle 5 --hold "$HOLD" --json | grep -v "sockets logged in"
            stop_server
            sleep 5 # let the closed client ports leave TIME_WAIT pressure behind
        done
    done
}

run_fanout() {
    for run in $(seq 1 "$REPEAT"); do
        echo "== fanout run $run"
        start_server
        "$BENCH_BIN" fanout --url "$URL" --pid "$SERVER_PID" -m "$MEMBERS" -k "$MESSAGES" \
            --rates "$RATES" --json
        stop_server
    done
}

case "${1:-all}" in
idle) run_idle ;;
fanout) run_fanout ;;
all)
    run_idle
    run_fanout
    ;;
*)
    echo "usage: $0 [idle|fanout|all]" >&2
    exit 2
    ;;
esac
echo "server log: $WORK/server.log"
