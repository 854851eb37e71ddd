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

now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic with awk (bash has integers only).
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# since_last_commit T0 FALLBACK PATTERN < LOG: seconds from T0 to the latest line of LOG
# matching PATTERN (by its leading timestamp), or FALLBACK when no line matches.
since_last_commit() {
    local last epoch
    last=$(strip_ansi | { grep -E "$3" || true; } | cut -d' ' -f1 | sort | tail -n1)
    if [[ -n $last ]] && epoch=$(date -d "$last" +%s.%N 2>/dev/null); then
        calc "$epoch - $1"
    else
        echo "$2"
    fi
}

# fresh_db DB: a fresh database DB with penstock's migrations ($BIN), output shown only on failure.
fresh_db() {
    pg postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    PENSTOCK_DATABASE_URL=$PG/$1 "$BIN" migrate >"$WORK/migrate.log" 2>&1 ||
        { cat "$WORK/migrate.log" >&2; die "penstock migrate failed for $1"; }
}
DUMP="COPY (SELECT year, state, plant_name, generator_id, net_generation_mwh, source_line
            FROM egrid_generators ORDER BY 1, 2, 3, 4) TO STDOUT"
table_md5() { pg "$1" -Atc "$DUMP" | md5sum | cut -d' ' -f1; }
rows_of() { pg "$1" -Atc "SELECT count(*) FROM egrid_generators"; }

# The build leaves gigabytes of dirty pages and, for a while, a busy machine: measured at
# once, whichever of \copy and penstock runs first pays for the writeback (one run after a
# build measured (a) at 0.60x, the runs around it 0.87-0.92x). Flush, then wait (at most
# 60 s) until the 1-minute load average is under 1.0 on these 2 cores.
settle() {
    sync
    local waited=0
    while ((waited < 60)) && awk '{ exit !($1 >= 1.0) }' /proc/loadavg; do
        sleep 2
        waited=$((waited + 2))
    done
    log "settled after ${waited}s (load average $(cut -d' ' -f1 /proc/loadavg))"
}

# build_release: the release binary ($BIN), BUILD_S its build time.
build_release() {
    local t
    t=$(now)
    cargo build --release -p penstock
    BUILD_S=$(calc "$(now) - $t")
    [[ -x $BIN ]] || die "no binary at $BIN after the build"
    log "build took ${BUILD_S}s"
}

# generate_data: the ~$RECORDS-record eGRID-shaped file from $SAMPLE as $WORK/raw.csv (RAW)
# and its cleaned, deduplicated rows as $WORK/clean.csv (CLEAN); D_<key> from the generator's
# key=value lines (reps, records, unique_rows, superseded, raw_bytes, ...), GEN_S its time.
generate_data() {
    RAW=$WORK/raw.csv
    CLEAN=$WORK/clean.csv
    local t
    t=$(now)
    python3 scripts/bench_data.py --sample "$SAMPLE" --raw "$RAW" --clean "$CLEAN" \
        --records "$RECORDS" --source-file-id 1 >"$WORK/data.env"
    GEN_S=$(calc "$(now) - $t")
    while IFS='=' read -r k v; do
        [[ $k =~ ^[a-z_]+$ && $v =~ ^[0-9]+$ ]] && printf -v "D_$k" '%s' "$v"
    done <"$WORK/data.env"
    # shellcheck disable=SC2154 # D_* are set from data.env above
    log "generated in ${GEN_S}s: ${D_records} records (${D_reps} x ${D_sample_records}), $D_unique_rows unique keys" \
        "($D_superseded superseded), $D_raw_bytes bytes"
}

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
    # A script's own cleanup (bench-scale.sh stops its second PostgreSQL instance).
    declare -F bench_cleanup >/dev/null && bench_cleanup
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
