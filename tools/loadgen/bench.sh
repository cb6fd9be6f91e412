#!/usr/bin/env bash
# Reproduces the apogee-loadgen measurements: start-to-ready time of `apogee serve`, idle and
# post-load RSS, and chat.postMessage throughput/latency with 1 and 16 clients.
#
# Build first (release, separate target dir):
#   export CARGO_TARGET_DIR=/var/tmp/apogee-release
#   cargo build --release -p apogee -p apogee-loadgen
# Then:  tools/loadgen/bench.sh [startup|load|all]      (default: all)
#
# Env: APOGEE_BIN, LOADGEN_BIN (default: $CARGO_TARGET_DIR/release/...), PORT (3300),
#      MESSAGES (20000), DURATION (20 s), RUNS (5 start-up runs), REPEAT (2 load runs per config).
set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-/var/tmp/apogee-release}
APOGEE_BIN=${APOGEE_BIN:-$TARGET/release/apogee}
LOADGEN_BIN=${LOADGEN_BIN:-$TARGET/release/apogee-loadgen}
PORT=${PORT:-3300}
MESSAGES=${MESSAGES:-20000}
DURATION=${DURATION:-20}
RUNS=${RUNS:-5}
REPEAT=${REPEAT:-2}
URL="http://127.0.0.1:$PORT"
WORK=$(mktemp -d /var/tmp/apogee-bench.XXXXXX)
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

now_ns() { date +%s%N; }

# start_server DATA_DIR: starts the server, waits until /api/info answers (polling every 5 ms),
# sets SERVER_PID and READY_MS (start-to-ready in ms).
start_server() {
    local dir=$1 t0 t1 tries=0
    if curl -s -o /dev/null "$URL/api/info"; then
        echo "port $PORT is already in use" >&2
        exit 1
    fi
    t0=$(now_ns)
    TEST_MODE=true "$APOGEE_BIN" serve --port "$PORT" --data-dir "$dir" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    until curl -s -o /dev/null "localhost:$PORT/api/info"; do
        sleep 0.005
        tries=$((tries + 1))
        if ((tries > 4000)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not become ready; see $WORK/server.log" >&2
            exit 1
        fi
    done
    t1=$(now_ns)
    READY_MS=$(((t1 - t0) / 1000000))
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

startup() {
    echo "== start-to-ready, fresh data dir ($RUNS runs)"
    local times=() dir
    for i in $(seq "$RUNS"); do
        dir=$(mktemp -d "$WORK/fresh.XXXX")
        start_server "$dir"
        times+=("$READY_MS")
        echo "run $i: ${READY_MS} ms"
        stop_server
    done
    echo "median: $(printf '%s\n' "${times[@]}" | median) ms"
    echo "== start-to-ready, existing data dir (the last one above)"
    start_server "$dir"
    echo "existing: ${READY_MS} ms"
    stop_server
}

load() {
    local clients dir rep
    for clients in 1 16; do
        for rep in $(seq "$REPEAT"); do
            echo "== chat.postMessage: $clients client(s), run $rep, fresh data dir"
            dir=$(mktemp -d "$WORK/load.XXXX")
            start_server "$dir"
            sleep 1
            echo "idle RSS after start: $("$LOADGEN_BIN" rss --pid "$SERVER_PID")"
            "$LOADGEN_BIN" post --url "$URL" --clients "$clients" --messages "$MESSAGES" \
                --duration "$DURATION" --pid "$SERVER_PID" --json
            sleep 1
            echo "RSS 1 s after the run: $("$LOADGEN_BIN" rss --pid "$SERVER_PID")"
            stop_server
            echo "db size: $(du -sh "$dir" | cut -f1)"
            LAST_LOAD_DIR=$dir
        done
    done
    echo "== start-to-ready, existing data dir after a load run ($LAST_LOAD_DIR)"
    start_server "$LAST_LOAD_DIR"
    echo "existing (loaded): ${READY_MS} ms"
    sleep 1
    echo "idle RSS: $("$LOADGEN_BIN" rss --pid "$SERVER_PID")"
    stop_server
}

echo "binary: $APOGEE_BIN; work dir: $WORK; nproc: $(nproc)"
case "${1:-all}" in
    startup) startup ;;
    load) load ;;
    all) startup; load ;;
    *) echo "usage: $0 [startup|load|all]" >&2; exit 2 ;;
esac
