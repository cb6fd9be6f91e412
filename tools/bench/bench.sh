#!/usr/bin/env bash
# Reproduces the apogee-bench measurements: start-to-ready time of `apogee serve`, idle and
# post-load RSS, and chat.postMessage throughput/latency with 1 and 16 clients.
#
# Build first (release, separate target dir):
#   export CARGO_TARGET_DIR=/var/tmp/apogee-release
#   cargo build --release -p apogee -p apogee-bench
# Then:  tools/bench/bench.sh [startup|load|all]      (default: all)
#
# Env: APOGEE_BIN, BENCH_BIN (default: $CARGO_TARGET_DIR/release/...), PORT (3300),
#      MESSAGES (20000), DURATION (20 s), RUNS (5 start-up runs), REPEAT (2 load runs per config),
#      QUIET (1: wait for an idle machine before each run; 0: do not wait).
# Each load run prints "cpu during run: ... other N s": CPU used by anything else on the machine
# during the run. Treat runs with other > ~0.5 s as disturbed and repeat them.
set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-/var/tmp/apogee-release}
APOGEE_BIN=${APOGEE_BIN:-$TARGET/release/apogee}
BENCH_BIN=${BENCH_BIN:-${LOADGEN_BIN:-$TARGET/release/apogee-bench}}
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

# Busy CPU time of the whole machine, and of one process, in clock ticks.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# Waits (up to 10 min) for a 3 s window in which the machine is at most 10% busy, so a run does
# not share the cores with a build or a test suite. QUIET=0 skips the wait.
wait_quiet() {
    [[ "${QUIET:-1}" == 0 ]] && return
    local b0 b1 limit=$((3 * TCK * $(nproc) / 10))
    for _ in $(seq 200); do
        b0=$(busy_ticks)
        sleep 3
        b1=$(busy_ticks)
        (((b1 - b0) <= limit)) && return
    done
    echo "warning: the machine never became quiet" >&2
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

startup() {
    echo "== start-to-ready, fresh data dir ($RUNS runs)"
    local times=() dir
    for i in $(seq "$RUNS"); do
        dir=$(mktemp -d "$WORK/fresh.XXXX")
        wait_quiet
        start_server "$dir"
        times+=("$READY_MS")
        echo "run $i: ${READY_MS} ms"
        stop_server
    done
    echo "median: $(printf '%s\n' "${times[@]}" | median) ms"
    echo "== start-to-ready, existing data dir (the last one above)"
    wait_quiet
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
            wait_quiet
            start_server "$dir"
            sleep 1
            echo "idle RSS after start: $("$BENCH_BIN" rss --pid "$SERVER_PID")"
            local b0 s0 b1 s1 lg_user lg_sys
            b0=$(busy_ticks)
            s0=$(proc_ticks "$SERVER_PID")
            /usr/bin/time -f "%U %S" -o "$WORK/lg.time" "$BENCH_BIN" post --url "$URL" --clients "$clients" \
                --messages "$MESSAGES" --duration "$DURATION" --pid "$SERVER_PID" --json
            b1=$(busy_ticks)
            s1=$(proc_ticks "$SERVER_PID")
            read -r lg_user lg_sys <"$WORK/lg.time"
            # "other" is CPU used by anything else on the machine during the run (setup included):
            # if it is not near 0, something else competed for the 2 cores and the run is suspect.
            awk -v b=$((b1 - b0)) -v s=$((s1 - s0)) -v u="$lg_user" -v y="$lg_sys" -v t="$TCK" 'BEGIN {
                printf "cpu during run: server %.2f s, loadgen %.2f s, other %.2f s\n", s / t, u + y, b / t - s / t - u - y }'
            sleep 1
            echo "RSS 1 s after the run: $("$BENCH_BIN" rss --pid "$SERVER_PID")"
            stop_server
            echo "db size: $(du -sh "$dir" | cut -f1)"
            LAST_LOAD_DIR=$dir
        done
    done
    echo "== start-to-ready, existing data dir after a load run ($LAST_LOAD_DIR)"
    wait_quiet
    start_server "$LAST_LOAD_DIR"
    echo "existing (loaded): ${READY_MS} ms"
    sleep 1
    echo "idle RSS: $("$BENCH_BIN" rss --pid "$SERVER_PID")"
    stop_server
}

echo "binary: $APOGEE_BIN; work dir: $WORK; nproc: $(nproc)"
case "${1:-all}" in
    startup) startup ;;
    load) load ;;
    all) startup; load ;;
    *) echo "usage: $0 [startup|load|all]" >&2; exit 2 ;;
esac
