# Shared by the benchmark scripts (bench.sh, bench-api.sh, bench-scale.sh); sourced, not run.
# Before sourcing, set: BENCH_NAME (for messages), PG (server URL without database),
# PREFIX (this run's queue prefix), BENCH_DBS (array of the databases to drop at the end)
# and WORK_TEMPLATE (mktemp name of the temp folder). It defines the helpers below, the
# temp folder WORK, and an EXIT trap that throws everything away, also on failure: the
# background penstock (PEN_PID) and any further penstock processes (PEN_PIDS, their logs in
# PEN_LOGS), the RabbitMQ queues of the prefix (once STARTED_PENSTOCK is set), the databases
# and the temp folder.
# shellcheck shell=bash

log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%T)" "$*"; }
die() { echo "$BENCH_NAME: error: $*" >&2; exit 1; }
strip_ansi() { sed 's/\x1b\[[0-9;]*m//g'; }
# pg DB ARGS...: psql against database DB, quiet, stopping at the first error.
pg() { local db=$1; shift; PGOPTIONS='-c client_min_messages=warning' psql "$PG/$db" -X -q -v ON_ERROR_STOP=1 "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/$WORK_TEMPLATE")
WORKER_LOG=$WORK/penstock.log
PEN_PID=
PEN_PIDS=()
PEN_LOGS=()
STARTED_PENSTOCK=

# Stops the background penstock with SIGTERM (SIGKILL after 40 s); returns its exit code.
stop_penstock() {
    local rc=0
    [[ -n $PEN_PID ]] || return 0
    if kill -0 "$PEN_PID" 2>/dev/null; then
        kill -TERM "$PEN_PID" 2>/dev/null || true
        for _ in $(seq 1 400); do
            kill -0 "$PEN_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$PEN_PID" 2>/dev/null; then
            echo "$BENCH_NAME: penstock did not stop within 40 s of SIGTERM; killing it" >&2
            kill -KILL "$PEN_PID" 2>/dev/null || true
        fi
    fi
    wait "$PEN_PID" 2>/dev/null || rc=$?
    PEN_PID=
    return "$rc"
}

# Stops every process of PEN_PIDS at once with SIGTERM (SIGKILL for those still running 40 s
# later), waits for them and empties PEN_PIDS; returns the first non-zero exit code.
stop_penstocks() {
    local rc=0 pid prc alive
    ((${#PEN_PIDS[@]})) || return 0
    kill -TERM "${PEN_PIDS[@]}" 2>/dev/null || true
    for _ in $(seq 1 400); do
        alive=
        for pid in "${PEN_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null && { alive=1; break; }
        done
        [[ -n $alive ]] || break
        sleep 0.1
    done
    for pid in "${PEN_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "$BENCH_NAME: penstock (pid $pid) did not stop within 40 s of SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        prc=0
        wait "$pid" 2>/dev/null || prc=$?
        ((rc != 0)) || rc=$prc
    done
    PEN_PIDS=()
    return "$rc"
}

# delete_queues PREFIX: deletes every RabbitMQ queue of PREFIX (the work queues and their
# retry queues), if rabbitmqctl is on PATH.
delete_queues() {
    command -v rabbitmqctl >/dev/null || return 0
    local q
    for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$1\."); do
        rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
    done
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT
    stop_penstock
    stop_penstocks
    [[ -n ${BENCH_LOG:-} && -f $WORKER_LOG ]] && cp "$WORKER_LOG" "$BENCH_LOG"
    if ((rc != 0)) && [[ -s $WORKER_LOG ]]; then
        echo "---- last 40 lines of the penstock log ----" >&2
        tail -n 40 "$WORKER_LOG" | strip_ansi >&2
    fi
    if ((rc != 0)); then
        for f in "${PEN_LOGS[@]}"; do
            [[ -s $f ]] || continue
            echo "---- last 20 lines of $(basename "$f") ----" >&2
            tail -n 20 "$f" | strip_ansi >&2
        done
    fi
    [[ -n $STARTED_PENSTOCK ]] && delete_queues "$PREFIX"
    for db in "${BENCH_DBS[@]}"; do
        pg postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
