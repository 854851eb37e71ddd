#!/usr/bin/env bash
# `just bench-scale` (or `bash scripts/bench-scale.sh` from the repo root): how the first load
# of the ~1M-record eGRID-shaped file (scripts/bench_data.py, as in `just bench`) scales with
# the number of database-consumer PROCESSES, against `psql \copy` of the same rows in the
# same run.
#
# For each N in 1 2 4: a fresh database (migrated), a fresh queue prefix and inbox; N
# processes of `penstock run database` (each its own process, competing for the chunks on
# the queue, database_concurrency chunks at a time each) and one process with the other roles
# (`penstock run scanner chunker errors notifications`); the raw file is renamed into the
# inbox and timed, as in bench.sh, from the rename until the chunk commit that finished the
# file (its log line; the ledger table ingest_files is polled until the file is done). The
# table is then checked against \copy's (row count and md5 of the sorted dump), the
# processes get SIGTERM (each must exit 0) and the queues of the prefix are deleted.
#
# Over each load (rename → done) it samples, from /proc, the CPU time of every process named
# postgres on this machine (the whole server: backends, WAL writer, checkpointer, ...), of
# the penstock processes and of the machine, and on every poll the wait events of the
# benchmark database's active backends (pg_stat_activity), so the table shows where
# PostgreSQL saturates. CPU is in top's unit: 100 % = one core busy for the whole load.
# Without a local PostgreSQL (BENCH_PG on another machine) its CPU column shows "-".
#
# Then two datasets at once (BENCH_SCALE_SECOND=0 skips it): the same file dropped for the
# eGRID dataset and for a second dataset with the same columns (`egrid_second`, its own
# table) at the same moment, loaded by two `penstock run database` processes and one with the
# other roles; first with both datasets in the one PostgreSQL, then with the second dataset's
# database_url on a second PostgreSQL instance this script starts on this machine (initdb
# and pg_ctl from the machine's PostgreSQL, a spare port, the main server's memory, WAL and
# autovacuum settings; as the postgres user when run as root). Timed from the renames until
# the later of the two files is done; both tables are checked against \copy's.
#
# \copy runs once before the loads (the ratios use it) and once after them (a drift check:
# if the two differ much, the machine was not quiet). Before \copy and before each load the
# machine settles (sync, then up to 60 s until the 1-minute load average is under 1.0).
#
# Everything is thrown away at the end, also on failure: the penstock processes, the
# RabbitMQ queues of this run's prefixes, the databases and the temp folder.
#
# Knobs (environment): BENCH_RECORDS (default 1000000), BENCH_SCALE_PROCESSES (the numbers
# of database processes, default "1 2 4"), BENCH_SCALE_CONCURRENCY (database_concurrency of
# each database process; default: config/penstock.toml's, also PENSTOCK_DATABASE_CONCURRENCY),
# BENCH_TIMEOUT (s per load, default 600), BENCH_PG (default postgres://postgres@127.0.0.1:5432),
# BENCH_LOG (a path prefix: keep every process's log as PREFIX.n<N>-<process>.log).
# PENSTOCK_CHUNK_BYTES passes through to penstock if set.
# Needs: cargo, python3, psql, rabbitmqctl (to see the consumers and delete the queues),
# PostgreSQL and RabbitMQ up.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
RECORDS=${BENCH_RECORDS:-1000000}
TIMEOUT=${BENCH_TIMEOUT:-600}
read -r -a COUNTS <<<"${BENCH_SCALE_PROCESSES:-1 2 4}"
COPY_DB=penstock_bench_scale_copy
PEN_DB=penstock_bench_scale
BASE_PREFIX=benchscale$$
PREFIX=$BASE_PREFIX # bench-lib.sh deletes this prefix's queues on exit; set per load below
BIN=${CARGO_TARGET_DIR:-target}/release/penstock
SAMPLE=$ROOT/data/egrid/egrid2023_gen.csv
OTHER_ROLES=(scanner chunker errors notifications)
POLL_S=0.1

export PENSTOCK_CONFIG=$ROOT/config/penstock.toml
export PENSTOCK_AMQP_URL=${PENSTOCK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
[[ -n ${BENCH_SCALE_CONCURRENCY:-} ]] && export PENSTOCK_DATABASE_CONCURRENCY=$BENCH_SCALE_CONCURRENCY
CONCURRENCY=${PENSTOCK_DATABASE_CONCURRENCY:-$(awk -F' *= *' '$1 == "database_concurrency" { print $2 }' "$PENSTOCK_CONFIG")}
CHUNK_BYTES=${PENSTOCK_CHUNK_BYTES:-$(awk -F' *= *' '$1 == "chunk_bytes" { print $2 }' "$PENSTOCK_CONFIG")}

SECOND=${BENCH_SCALE_SECOND:-1}
PG_BINDIR=${BENCH_PG_BINDIR:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)}

BENCH_NAME=bench-scale
BENCH_DBS=("$PEN_DB" "$COPY_DB")
WORK_TEMPLATE=penstock-bench-scale.XXXXXX
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

for tool in cargo python3 psql rabbitmqctl; do
    command -v "$tool" >/dev/null || die "$tool is needed but not on PATH"
done
for n in "${COUNTS[@]}"; do
    [[ $n =~ ^[1-9][0-9]?$ ]] || die "BENCH_SCALE_PROCESSES: '$n' is not a number of processes (1-99)"
done


# CPU counters, in clock ticks. Processes named postgres: their own time plus that of their
# reaped children (the postmaster's cutime holds the backends that exited, e.g. \copy's).
# (cat, not awk on the files: a process that exits between the glob and the read is skipped.)
pg_ticks() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '$2 == "(postgres)" { s += $14 + $15 + $16 + $17 } END { print s + 0 }'; }
# pids_ticks PID...: user + system time of those processes (all their threads).
pids_ticks() {
    local f=() pid
    for pid in "$@"; do f+=("/proc/$pid/stat"); done
    { cat "${f[@]}" 2>/dev/null || true; } | awk '{ s += $14 + $15 } END { print s + 0 }'
}
# "busy total" ticks of the whole machine (busy: all but idle and iowait).
machine_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
HZ=$(getconf CLK_TCK)
HAVE_LOCAL_PG=$(($(pg_ticks) > 0))
# cpu_pct TICKS SECONDS: CPU time as top shows it (100 = one core for the whole interval).
cpu_pct() { awk "BEGIN { printf \"%.0f\", 100 * ($1) / $HZ / ($2) }"; }

# ---------------------------------------------------------------------------------------
log "1/6 building the release binary"
build_release

# ---------------------------------------------------------------------------------------
log "2/6 generating ~$RECORDS records from $SAMPLE"
generate_data

# ---------------------------------------------------------------------------------------
# copy_load: \copy of the cleaned rows into a fresh COPY_DB; sets COPY_S and COPY_PG_CPU.
copy_load() {
    fresh_db "$COPY_DB"
    local t0 p0 p1
    p0=$(pg_ticks)
    t0=$(now)
    pg "$COPY_DB" -c "\\copy egrid_generators (year,state,plant_name,generator_id,net_generation_mwh,source_file_id,source_line) FROM '$CLEAN' WITH (FORMAT csv)"
    COPY_S=$(calc "$(now) - $t0")
    p1=$(pg_ticks)
    COPY_PG_CPU=-
    ((HAVE_LOCAL_PG)) && COPY_PG_CPU=$(cpu_pct "$p1 - $p0" "$COPY_S")
    return 0
}
settle
log "3/6 the limit: psql \\copy of the cleaned rows into $COPY_DB"
copy_load
COPY_ROWS=$(rows_of "$COPY_DB")
((COPY_ROWS == D_unique_rows)) || die "\\copy loaded $COPY_ROWS rows, expected $D_unique_rows"
COPY_MD5=$(table_md5 "$COPY_DB")
COPY_PG=$COPY_PG_CPU
log "\\copy: $COPY_ROWS rows in ${COPY_S}s (PostgreSQL CPU ${COPY_PG} %)"
COPY_FIRST_S=$COPY_S
pg postgres -c "DROP DATABASE $COPY_DB WITH (FORCE)" >/dev/null

# ---------------------------------------------------------------------------------------
# start_fleet N: N `penstock run database` processes and one with the other roles, on PEN_DB,
# queue prefix PREFIX and a fresh inbox; returns once all are up and the chunk queue has N
# consumers.
start_fleet() {
    local n=$1 i
    export PENSTOCK_DATABASE_URL=$PG/$PEN_DB
    export PENSTOCK_STORAGE_URL=$WORK/inbox-n$n
    export PENSTOCK_QUEUE_PREFIX=$PREFIX
    INBOX=$PENSTOCK_STORAGE_URL/egrid/generators
    mkdir -p "$INBOX"
    STARTED_PENSTOCK=1
    PEN_LOGS=()
    DB_LOGS=()
    start_one() { # start_one NAME ROLE...
        local logf=$WORK/n$n-$1.log
        shift
        "$BIN" run "$@" >"$logf" 2>&1 &
        PEN_PIDS+=("$!")
        PEN_LOGS+=("$logf")
    }
    for i in $(seq 1 "$n"); do
        start_one "database-$i" database
        DB_LOGS+=("$WORK/n$n-database-$i.log")
    done
    start_one others "${OTHER_ROLES[@]}"
    local f pid up consumers
    for i in $(seq 1 300); do
        up=1
        for pid in "${PEN_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || die "a penstock process (pid $pid) exited during startup"
        done
        for f in "${PEN_LOGS[@]}"; do
            grep -q "penstock running" "$f" || { up=; break; }
        done
        [[ -n $up ]] && grep -q "scanner started" "$WORK/n$n-others.log" && break
        ((i < 300)) || die "the penstock processes did not all log 'penstock running' within 30 s"
        sleep 0.1
    done
    for i in $(seq 1 60); do
        consumers=$(rabbitmqctl -q list_queues name consumers 2>/dev/null |
            awk -v q="$PREFIX.chunks" '$1 == q { print $2 }')
        ((${consumers:-0} >= n)) && break
        ((i < 60)) || die "$PREFIX.chunks has ${consumers:-no} consumers 30 s after the start, expected $n"
        sleep 0.5
    done
    sleep 1 # as bench.sh: let the chunker finish declaring and subscribing
    log "up: $n database process(es) and one with ${OTHER_ROLES[*]} (pids ${PEN_PIDS[*]}, queue prefix $PREFIX, $consumers consumers on $PREFIX.chunks)"
}

# stop_fleet WHAT TAG: SIGTERM to the fleet's processes (each must exit 0; WHAT names the run
# in the error), their logs kept as BENCH_LOG.TAG<log> if asked, the prefix's queues and the
# inbox removed.
stop_fleet() {
    local rc=0 f
    stop_penstocks || rc=$?
    ((rc == 0)) || die "a penstock process exited with status $rc after SIGTERM ($1)"
    if [[ -n ${BENCH_LOG:-} ]]; then
        for f in "${PEN_LOGS[@]}"; do cp "$f" "$BENCH_LOG.$2$(basename "$f")"; done
    fi
    delete_queues "$PREFIX"
    STARTED_PENSTOCK=
    rm -rf "$PENSTOCK_STORAGE_URL"
}

# A poll of the ledger, with the wait events of the database's other active backends.
poll_sql() {
    cat <<EOF
SELECT f.status, f.id,
       (SELECT coalesce(string_agg(CASE WHEN a.state = 'idle in transaction' THEN 'idle-in-transaction'
                                        ELSE coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') END, ' '), '')
        FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
          AND a.backend_type = 'client backend'
          AND a.state IN ('active', 'idle in transaction')),
       coalesce(f.reason, '')
FROM ingest_files f WHERE f.key = '$1' ORDER BY f.id DESC LIMIT 1
EOF
}

# load_file SRC NAME: renames SRC into the inbox as NAME, waits until the ledger says done;
# sets DROP_S (rename → the chunk commit that finished the file, from the log; the poll is
# only the fallback), FILE_ID, the CPU shares over the load (PG_CPU, PEN_CPU, BUSY) and
# WAITS (the wait events seen, by share of backend samples).
load_file() {
    local src=$1 name=$2 sql t0 t1 row status id waits reason w pid samples=0 active=0
    local -A count=()
    sql=$(poll_sql "egrid/generators/$name")
    cp "$src" "$INBOX/.$name.part"
    sync "$INBOX/.$name.part" 2>/dev/null || true
    local p0 q0 m0 p1 q1 m1
    p0=$(pg_ticks)
    q0=$(pids_ticks "${PEN_PIDS[@]}")
    m0=$(machine_ticks)
    t0=$(now)
    mv "$INBOX/.$name.part" "$INBOX/$name"
    while :; do
        row=$(pg "$PEN_DB" -At -F '|' -c "$sql")
        t1=$(now)
        IFS='|' read -r status id waits reason <<<"$row"
        if [[ -n $row ]]; then
            samples=$((samples + 1))
            for w in $waits; do
                count[$w]=$((${count[$w]:-0} + 1))
                active=$((active + 1))
            done
        fi
        case $status in
            done | done_with_errors) break ;;
            rejected | failed) die "penstock marked $name $status: $reason" ;;
        esac
        for pid in "${PEN_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || die "a penstock process (pid $pid) exited while loading $name (status: ${status:-not yet discovered})"
        done
        (($(awk "BEGIN { print ($t1 - $t0 < $TIMEOUT) }"))) || die "timed out after ${TIMEOUT}s on $name (status: ${status:-none})"
        sleep "$POLL_S"
    done
    p1=$(pg_ticks)
    q1=$(pids_ticks "${PEN_PIDS[@]}")
    m1=$(machine_ticks)
    local wall
    wall=$(calc "$t1 - $t0")
    PG_CPU=-
    ((HAVE_LOCAL_PG)) && PG_CPU=$(cpu_pct "$p1 - $p0" "$wall")
    PEN_CPU=$(cpu_pct "$q1 - $q0" "$wall")
    read -r b0 a0 <<<"$m0"
    read -r b1 a1 <<<"$m1"
    BUSY=$(awk "BEGIN { printf \"%.0f\", 100 * ($b1 - $b0) / (($a1 - $a0) > 0 ? ($a1 - $a0) : 1) }")
    WAITS="no samples"
    if ((active > 0)); then
        WAITS=$(for w in "${!count[@]}"; do echo "${count[$w]} $w"; done | sort -rn | head -n 4 |
            awk -v a="$active" '{ printf "%s%s %.0f %%", (NR > 1 ? ", " : ""), $2, 100 * $1 / a }')
        WAITS="$WAITS ($(calc "$active / $samples") active of $samples samples)"
    fi
    FILE_ID=$id
    DROP_S=$(cat "${DB_LOGS[@]}" | since_last_commit "$t0" "$wall" "chunk committed.*file_id=$FILE_ID .*status=done")
    log "$name: $status after ${DROP_S}s (file $FILE_ID; PostgreSQL CPU $PG_CPU %, penstock $PEN_CPU %, machine busy $BUSY %)"
}

# ---------------------------------------------------------------------------------------
log "4/6 penstock with 1..N database processes: ${COUNTS[*]}"
R_S=() R_PG=() R_PEN=() R_BUSY=() R_WAITS=() R_SPLIT=()
CHUNKS=
for n in "${COUNTS[@]}"; do
    PREFIX=$BASE_PREFIX-n$n
    settle
    fresh_db "$PEN_DB"
    start_fleet "$n"
    load_file "$RAW" egrid_scale_gen.csv
    got=$(rows_of "$PEN_DB")
    ((got == COPY_ROWS)) || die "MISMATCH with $n database processes: $got rows, \\copy $COPY_ROWS"
    [[ $(table_md5 "$PEN_DB") == "$COPY_MD5" ]] || die "MISMATCH with $n database processes: the table differs from \\copy's"
    CHUNKS=$(pg "$PEN_DB" -Atc "SELECT chunks_total FROM ingest_files WHERE id = $FILE_ID")
    # Chunks each database process committed (the queue's round robin, then who is free).
    split=
    for f in "${DB_LOGS[@]}"; do
        c=$(strip_ansi <"$f" | { grep -cE "chunk committed.*file_id=$FILE_ID " || true; })
        split+=${split:+/}$c
    done
    stop_fleet "$n database processes" ""
    log "MATCH with $n database process(es): $got rows, md5 $COPY_MD5; chunks per process $split"
    R_S+=("$DROP_S") R_PG+=("$PG_CPU") R_PEN+=("$PEN_CPU") R_BUSY+=("$BUSY") R_WAITS+=("$WAITS") R_SPLIT+=("$split")
done

# ---------------------------------------------------------------------------------------
# Two datasets at once, in one PostgreSQL and then on two.
PG2=
PG2_DIR=
as_postgres() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
bench_cleanup() {
    if [[ -n $PG2_DIR && -d $PG2_DIR ]]; then
        as_postgres "$PG_BINDIR/pg_ctl" -D "$PG2_DIR/data" -m immediate stop >/dev/null 2>&1
        rm -rf "$PG2_DIR"
    fi
}
# start_second_instance: a PostgreSQL of its own on a spare port with the main server's
# memory, WAL and autovacuum settings; sets PG2 (its URL without a database).
start_second_instance() {
    [[ -x $PG_BINDIR/initdb ]] || die "no initdb in $PG_BINDIR (set BENCH_PG_BINDIR, or BENCH_SCALE_SECOND=0 to skip)"
    PG2_DIR=$(mktemp -d "${TMPDIR:-/tmp}/penstock-bench-pg2.XXXXXX")
    if ((EUID == 0)); then chown postgres "$PG2_DIR"; fi
    as_postgres "$PG_BINDIR/initdb" -D "$PG2_DIR/data" -U postgres --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1 ||
        { cat "$WORK/initdb.log" >&2; die "initdb of the second instance failed"; }
    local port opts=() name value
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    for name in shared_buffers max_wal_size min_wal_size autovacuum fsync synchronous_commit full_page_writes \
        wal_buffers checkpoint_timeout work_mem maintenance_work_mem; do
        value=$(pg postgres -Atc "SHOW $name")
        opts+=("-c $name=$value")
    done
    as_postgres "$PG_BINDIR/pg_ctl" -D "$PG2_DIR/data" -l "$PG2_DIR/server.log" -w -t 60 \
        -o "-p $port -k $PG2_DIR -c listen_addresses=127.0.0.1 ${opts[*]}" start >/dev/null ||
        { cat "$PG2_DIR/server.log" >&2; die "the second PostgreSQL instance did not start"; }
    PG2=postgres://postgres@127.0.0.1:$port
    log "second PostgreSQL instance on port $port ($PG2_DIR; ${opts[*]})"
}
SECOND_TABLE_SQL="CREATE TABLE egrid_second (
    year integer NOT NULL, state text NOT NULL, plant_name text NOT NULL, generator_id text NOT NULL,
    net_generation_mwh numeric, source_file_id bigint NOT NULL, source_line bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT egrid_second_key UNIQUE (year, state, plant_name, generator_id)) WITH (fillfactor = 50);
CREATE INDEX egrid_second_source_idx ON egrid_second (source_file_id);"
# second_specs [URL]: a datasets folder with the eGRID spec and egrid_second (in the database
# at URL if given); prints the folder.
second_specs() {
    local dir=$WORK/datasets-second${1:+-own}
    mkdir -p "$dir"
    cp "$ROOT/config/datasets/egrid_generators.toml" "$dir/"
    sed -e 's/^name = "egrid_generators"/name = "egrid_second"/' \
        -e 's/^table = "egrid_generators"/table = "egrid_second"/' \
        -e 's|^key_prefix = "egrid/generators/"|key_prefix = "second/"|' \
        "$ROOT/config/datasets/egrid_generators.toml" >"$dir/egrid_second.toml"
    # At the top: a top-level key, before any [table].
    if [[ -n ${1:-} ]]; then sed -i "1i database_url = \"$1\"" "$dir/egrid_second.toml"; fi
    grep -q '^key_prefix = "second/"' "$dir/egrid_second.toml" || die "could not write the second spec"
    echo "$dir"
}
# load_two LABEL SECOND_URL: a fresh PEN_DB (and the second dataset's database at SECOND_URL
# when that is elsewhere) with the table egrid_second, two database processes and one with
# the other roles; drops the file for both datasets at once and waits for both; sets TWO_S
# (renames → the later file's last chunk commit) and the CPU shares over it.
load_two() {
    local label=$1 second_url=$2 specs own=
    [[ $second_url != "$PG/$PEN_DB" ]] && own=$second_url
    fresh_db "$PEN_DB"
    if [[ -n $own ]]; then
        PGOPTIONS='-c client_min_messages=warning' psql "$PG2/postgres" -X -q -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS $PEN_DB WITH (FORCE)" >/dev/null
        PENSTOCK_DATABASE_URL=$own "$BIN" migrate >"$WORK/migrate2.log" 2>&1 ||
            { cat "$WORK/migrate2.log" >&2; die "penstock migrate failed for the second instance"; }
    fi
    PGOPTIONS='-c client_min_messages=warning' psql "$second_url" -X -q -v ON_ERROR_STOP=1 -c "$SECOND_TABLE_SQL"
    specs=$(second_specs "$own")
    export PENSTOCK_DATASETS_DIR=$specs
    # Gives the second database its shard (the range of its file ids), as a deploy would.
    PENSTOCK_DATABASE_URL=$PG/$PEN_DB "$BIN" migrate >"$WORK/migrate.log" 2>&1 ||
        { cat "$WORK/migrate.log" >&2; die "penstock migrate (both databases) failed"; }
    start_fleet 2
    local second_inbox=$PENSTOCK_STORAGE_URL/second
    mkdir -p "$second_inbox"
    cp "$RAW" "$INBOX/.a.part"
    cp "$RAW" "$second_inbox/.b.part"
    sync
    local p0 q0 t0 p1 q1 t1 a b
    p0=$(pg_ticks)
    q0=$(pids_ticks "${PEN_PIDS[@]}")
    t0=$(now)
    mv "$INBOX/.a.part" "$INBOX/two.csv"
    mv "$second_inbox/.b.part" "$second_inbox/two.csv"
    while :; do
        a=$(pg "$PEN_DB" -Atc "SELECT status FROM ingest_files WHERE key = 'egrid/generators/two.csv'")
        b=$(psql "$second_url" -X -Atc "SELECT status FROM ingest_files WHERE key = 'second/two.csv'")
        t1=$(now)
        [[ $a == done* && $b == done* ]] && break
        [[ $a == rejected || $a == failed || $b == rejected || $b == failed ]] && die "$label: the files ended $a / $b"
        (($(awk "BEGIN { print ($t1 - $t0 < $TIMEOUT) }"))) || die "$label: timed out (${a:-none} / ${b:-none})"
        sleep "$POLL_S"
    done
    p1=$(pg_ticks)
    q1=$(pids_ticks "${PEN_PIDS[@]}")
    TWO_S=$(cat "${DB_LOGS[@]}" | since_last_commit "$t0" "$(calc "$t1 - $t0")" "chunk committed.*status=done")
    TWO_PG=-
    ((HAVE_LOCAL_PG)) && TWO_PG=$(cpu_pct "$p1 - $p0" "$TWO_S")
    TWO_PEN=$(cpu_pct "$q1 - $q0" "$TWO_S")
    [[ $(table_md5 "$PEN_DB") == "$COPY_MD5" ]] || die "MISMATCH ($label): egrid_generators differs from \\copy's"
    [[ $(psql "$second_url" -X -Atc "${DUMP//egrid_generators/egrid_second}" | md5sum | cut -d' ' -f1) == "$COPY_MD5" ]] ||
        die "MISMATCH ($label): egrid_second differs from \\copy's"
    stop_fleet "$label" "$label-"
    unset PENSTOCK_DATASETS_DIR
    log "MATCH ($label): both tables equal \\copy's; both files done after ${TWO_S}s (PostgreSQL CPU $TWO_PG %, penstock $TWO_PEN %)"
}
TWO_LABELS=() TWO_RS=() TWO_RPG=() TWO_RPEN=()
if ((SECOND)); then
    log "5/6 two datasets at once: in one PostgreSQL, then the second on an instance of its own"
    start_second_instance
    PREFIX=$BASE_PREFIX-one
    settle
    load_two one "$PG/$PEN_DB"
    TWO_LABELS+=("both in one PostgreSQL") TWO_RS+=("$TWO_S") TWO_RPG+=("$TWO_PG") TWO_RPEN+=("$TWO_PEN")
    PREFIX=$BASE_PREFIX-two
    settle
    load_two two "$PG2/$PEN_DB"
    TWO_LABELS+=("the second on a second instance") TWO_RS+=("$TWO_S") TWO_RPG+=("$TWO_PG") TWO_RPEN+=("$TWO_PEN")
    bench_cleanup
    PG2_DIR=
fi
pg postgres -c "DROP DATABASE IF EXISTS $PEN_DB WITH (FORCE)" >/dev/null

settle
log "6/6 \\copy again (drift check)"
copy_load
COPY_LAST_S=$COPY_S
COPY_S=$COPY_FIRST_S

# ---------------------------------------------------------------------------------------
COPY_RPS=$(calc "$COPY_ROWS / $COPY_S")
pct() { [[ $1 == - ]] && echo - || echo "$1 %"; }
cat <<EOF

penstock bench-scale — $(date -u +%Y-%m-%dT%H:%MZ) (UTC), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), $(psql --version | head -n1)
file: $D_records records ($D_reps x the eGRID2023 sample), $(calc "$D_raw_bytes / 1000000") MB, $COPY_ROWS rows, $CHUNKS chunks (chunk_bytes=$CHUNK_BYTES)
each database process: \`penstock run database\`, database_concurrency=$CONCURRENCY; one more process: \`penstock run ${OTHER_ROLES[*]}\`

| database processes | seconds | rows/s | × \\copy | PostgreSQL CPU | penstock CPU | machine busy |
|---|---|---|---|---|---|---|
| psql \\copy (the limit) | $COPY_S | $(printf '%.0f' "$COPY_RPS") | 1.00× | $(pct "$COPY_PG") | - | - |
EOF
for i in "${!COUNTS[@]}"; do
    s=${R_S[$i]}
    printf '| %s | %s | %.0f | %s× | %s | %s | %s |\n' "${COUNTS[$i]}" "$s" "$(calc "$COPY_ROWS / $s")" \
        "$(calc "$COPY_S / $s")" "$(pct "${R_PG[$i]}")" "$(pct "${R_PEN[$i]}")" "$(pct "${R_BUSY[$i]}")"
done
if ((${#TWO_LABELS[@]})); then
    cat <<EOF

Two datasets at once ($((2 * COPY_ROWS)) rows: the file for each), two database processes and one with the other roles:

| where the datasets are | seconds | rows/s | × \\copy's rows/s | PostgreSQL CPU | penstock CPU |
|---|---|---|---|---|---|
EOF
    for i in "${!TWO_LABELS[@]}"; do
        s=${TWO_RS[$i]}
        printf '| %s | %s | %.0f | %s× | %s | %s |\n' "${TWO_LABELS[$i]}" "$s" "$(calc "2 * $COPY_ROWS / $s")" \
            "$(calc "2 * $COPY_S / $s")" "$(pct "${TWO_RPG[$i]}")" "$(pct "${TWO_RPEN[$i]}")"
    done
fi
cat <<EOF

CPU over each load (rename → done): 100 % = one core (this machine: $(nproc) cores = $(($(nproc) * 100)) %); PostgreSQL = every
process named postgres on this machine; machine busy: 100 % = every core busy.
\\copy again after the loads: ${COPY_LAST_S}s (first ${COPY_S}s; ratios use the first)
PostgreSQL's active backends of the benchmark database, by wait event (share of samples every ${POLL_S}s):
EOF
for i in "${!COUNTS[@]}"; do
    printf '  %s process(es): %s; chunks per process %s\n' "${COUNTS[$i]}" "${R_WAITS[$i]}" "${R_SPLIT[$i]}"
done
printf '  release build %ss; data generation %ss\n\n' "$BUILD_S" "$GEN_S"
