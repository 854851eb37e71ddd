#!/usr/bin/env bash
# penstock benchmark: `just bench` (or `bash scripts/bench.sh` from the repo root).
#
# One run tells the whole story of the load path, side by side, every table compared:
#
#   (a) first load: ~1,000,000 eGRID-shaped records (~51 MB) into an empty table
#         \copy     `psql \copy` of the already-cleaned, deduplicated rows into the same keyed
#                   table: the limit (no parsing of spreadsheet quirks, no dedupe, no broker,
#                   no ledger, one transaction, one connection)
#         ELT       in-database ELT as a careful SQL user writes it (scripts/bench-elt.sql):
#                   COPY the raw text into an unlogged table, parse in SQL, DISTINCT ON, one
#                   INSERT … ON CONFLICT with penstock's lineage rule
#         penstock  end to end: the raw file (two header rows, CRLF, "20,961", " (2,443)",
#                   blanks, quoted commas, duplicate keys) renamed into the inbox of
#                   `penstock run all` (scanner, chunker, database consumers, via RabbitMQ;
#                   default settings: the folder is watched, the scan interval is 2 s),
#                   timed from the rename until the chunk commit that finished the file
#   (b) the same bytes again under another key: every key conflicts, no value changes, but
#       lineage moves forward (ELT: the same script on its loaded table)
#   (c) a ~1 MB file (the real eGRID 2023 sample) onto an empty table, and onto the table of
#       (b) (~1M rows), drop → done: the per-file cost must not grow with the table
#       and 20 more drops of it, rename → done, with default settings (p50: instant discovery)
#   (d) penstock's peak RSS (VmHWM) over (a)-(c), and in a process of its own for a ~10 MB
#       file (and with BENCH_BIG=1 a ~1 GB file)
#
# Ratios are throughputs against \copy's (rows/s ÷ \copy rows/s: higher is better). After
# (a) and (b) each table is dumped sorted and its md5 compared with the \copy table's
# (values and lineage lines; after (b) every row must name the second file).
#
# Data comes from scripts/bench_data.py (the real sample repeated; see its header).
# Everything is thrown away at the end, also on failure: the background penstock, the
# RabbitMQ queues of this run's prefix, the bench databases and the temp folder.
#
# Knobs (environment): BENCH_RECORDS (default 1000000), BENCH_TIMEOUT (s per file, default
# 600), BENCH_BIG=1 (also the 1 GB RSS case), BENCH_QUICK=1 (only \copy and penstock's (a)
# and (b), for scripts/bench-matrix.sh), BENCH_PG (default
# postgres://postgres@127.0.0.1:5432), BENCH_LOG (a path: keep a copy of penstock's log).
# PENSTOCK_CHUNK_BYTES and PENSTOCK_DATABASE_CONCURRENCY pass through to penstock if set.
# Needs: cargo, python3, psql, rabbitmqctl (for queue cleanup), PostgreSQL and RabbitMQ up.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
RECORDS=${BENCH_RECORDS:-1000000}
TIMEOUT=${BENCH_TIMEOUT:-600}
COPY_DB=penstock_bench_copy
ELT_DB=penstock_bench_elt
PEN_DB=penstock_bench
RSS_DB=penstock_bench_rss
PREFIX=bench$$
BIN=${CARGO_TARGET_DIR:-target}/release/penstock
SAMPLE=$ROOT/data/egrid/egrid2023_gen.csv

export PENSTOCK_CONFIG=$ROOT/config/penstock.toml
export PENSTOCK_AMQP_URL=${PENSTOCK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

BENCH_NAME=bench
BENCH_DBS=("$PEN_DB" "$COPY_DB" "$ELT_DB" "$RSS_DB")
WORK_TEMPLATE=penstock-bench.XXXXXX
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

# start_penstock DB: `penstock run all` on database DB and a fresh inbox, in the background.
start_penstock() {
    export PENSTOCK_DATABASE_URL=$PG/$1
    export PENSTOCK_STORAGE_URL=$WORK/inbox-$1
    export PENSTOCK_QUEUE_PREFIX=$PREFIX
    INBOX=$PENSTOCK_STORAGE_URL/egrid/generators
    mkdir -p "$INBOX"
    STARTED_PENSTOCK=1
    : >"$WORKER_LOG"
    "$BIN" run all >>"$WORKER_LOG" 2>&1 &
    PEN_PID=$!
    for i in $(seq 1 300); do
        grep -q "scanner started" "$WORKER_LOG" && break
        kill -0 "$PEN_PID" 2>/dev/null || die "penstock exited during startup"
        ((i < 300)) || die "penstock did not log 'scanner started' within 30 s"
        sleep 0.1
    done
    sleep 1 # let the chunker and database consumers finish declaring and subscribing
    log "penstock is up (pid $PEN_PID, database $1, queue prefix $PREFIX)"
}

# drop_file SRC NAME: renames SRC into the inbox as NAME (it appears whole, at one instant),
# waits until the ledger says done, and sets DROP_S to the seconds from the rename to the
# chunk commit that finished the file (from its log line; the poll is only the fallback)
# and FILE_ID to its id.
drop_file() {
    local src=$1 name=$2 key=egrid/generators/$2 t0 t1 row status
    cp "$src" "$INBOX/.$name.part"
    sync "$INBOX/.$name.part" 2>/dev/null || true
    local lines_before
    lines_before=$(wc -l <"$WORKER_LOG")
    t0=$(now)
    mv "$INBOX/.$name.part" "$INBOX/$name"
    while :; do
        row=$(pg "$PENSTOCK_DB_NAME" -At -F '|' -c "SELECT status, id, coalesce(reason, '') FROM ingest_files WHERE key = '$key' ORDER BY id DESC LIMIT 1")
        t1=$(now)
        status=${row%%|*}
        case $status in
            done | done_with_errors) break ;;
            rejected | failed) die "penstock marked $name $status: ${row##*|}" ;;
        esac
        kill -0 "$PEN_PID" 2>/dev/null || die "penstock exited while loading $name (status: ${status:-not yet discovered})"
        (($(awk "BEGIN { print ($t1 - $t0 < $TIMEOUT) }"))) || die "timed out after ${TIMEOUT}s on $name (status: ${status:-none})"
        sleep 0.05
    done
    FILE_ID=$(cut -d'|' -f2 <<<"$row")
    DROP_S=$(tail -n +"$((lines_before + 1))" "$WORKER_LOG" |
        since_last_commit "$t0" "$(calc "$t1 - $t0")" "chunk committed.*file_id=$FILE_ID.*status=done")
    log "$name: $status after ${DROP_S}s (file $FILE_ID)"
}
peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$PEN_PID/status"; }

# ---------------------------------------------------------------------------------------
log "1/7 building the release binary"
build_release

# ---------------------------------------------------------------------------------------
log "2/7 generating ~$RECORDS records from $SAMPLE"
generate_data

# ---------------------------------------------------------------------------------------
settle
log "3/7 the limit: psql \\copy of the cleaned rows into $COPY_DB"
fresh_db "$COPY_DB"
t=$(now)
pg "$COPY_DB" -c "\\copy egrid_generators (year,state,plant_name,generator_id,net_generation_mwh,source_file_id,source_line) FROM '$CLEAN' WITH (FORMAT csv)"
COPY_S=$(calc "$(now) - $t")
COPY_ROWS=$(rows_of "$COPY_DB")
((COPY_ROWS == D_unique_rows)) || die "\\copy loaded $COPY_ROWS rows, expected $D_unique_rows"
COPY_MD5=$(table_md5 "$COPY_DB")
log "\\copy: $COPY_ROWS rows in ${COPY_S}s"

# ---------------------------------------------------------------------------------------
ELT_A_S=0 ELT_B_S=0
if [[ -z ${BENCH_QUICK:-} ]]; then
log "4/7 in-database ELT (scripts/bench-elt.sql) into $ELT_DB, then the same file again"
fresh_db "$ELT_DB"
elt() { pg "$ELT_DB" -v file_id="$1" -f scripts/bench-elt.sql <"$RAW"; }
t=$(now)
elt 1
ELT_A_S=$(calc "$(now) - $t")
[[ $(table_md5 "$ELT_DB") == "$COPY_MD5" ]] || die "MISMATCH: the ELT table differs from the \\copy table"
t=$(now)
elt 2
ELT_B_S=$(calc "$(now) - $t")
[[ $(table_md5 "$ELT_DB") == "$COPY_MD5" ]] || die "MISMATCH: the ELT table differs after its re-load"
log "ELT: first load ${ELT_A_S}s, re-load ${ELT_B_S}s"
fi

# ---------------------------------------------------------------------------------------
log "5/7 penstock end to end: (c) on an empty table, (a) first load, (b) re-load, (c) on the full table"
fresh_db "$PEN_DB"
PENSTOCK_DB_NAME=$PEN_DB
start_penstock "$PEN_DB"
drop_file "$SAMPLE" small.csv
SMALL_EMPTY_S=$DROP_S
SMALL_ROWS=$(rows_of "$PEN_DB")
# Back to an empty table, so (a) loads into the same state as \copy did.
pg "$PEN_DB" -c "TRUNCATE egrid_generators"

drop_file "$RAW" egrid_bench_gen.csv
PEN_A_S=$DROP_S
FIRST_ID=$FILE_ID
[[ $(rows_of "$PEN_DB") == "$COPY_ROWS" ]] || die "MISMATCH: penstock holds $(rows_of "$PEN_DB") rows after (a), \\copy $COPY_ROWS"
[[ $(table_md5 "$PEN_DB") == "$COPY_MD5" ]] || die "MISMATCH: penstock's table differs from \\copy's after (a)"
log "(a) MATCH: $COPY_ROWS rows, md5 $COPY_MD5"

drop_file "$RAW" egrid_bench_gen_again.csv
PEN_B_S=$DROP_S
[[ $(table_md5 "$PEN_DB") == "$COPY_MD5" ]] || die "MISMATCH: penstock's table differs from \\copy's after (b)"
SRC_IDS=$(pg "$PEN_DB" -Atc "SELECT string_agg(DISTINCT source_file_id::text, ',') FROM egrid_generators")
[[ $SRC_IDS == "$FILE_ID" ]] || die "MISMATCH: after (b) rows name files $SRC_IDS, expected only $FILE_ID"
log "(b) MATCH: every row's lineage moved to file $FILE_ID, values unchanged"

if [[ -n ${BENCH_QUICK:-} ]]; then
    stop_penstock || die "penstock did not stop cleanly"
    printf 'quick: copy_s=%s a_s=%s b_s=%s a_ratio=%s b_ratio=%s\n' "$COPY_S" "$PEN_A_S" "$PEN_B_S" \
        "$(calc "$COPY_S / $PEN_A_S")" "$(calc "$COPY_S / $PEN_B_S")"
    exit 0
fi
drop_file "$SAMPLE" small-again.csv
SMALL_FULL_S=$DROP_S
FULL_ROWS=$(rows_of "$PEN_DB")
((FULL_ROWS == COPY_ROWS + SMALL_ROWS)) || die "after (c) the table holds $FULL_ROWS rows, expected $((COPY_ROWS + SMALL_ROWS))"
# Instant discovery: 20 more drops of the 1 MB file under new names, default settings (the
# folder is watched; the 2 s scan interval is only the safety net). Each is a new version of
# the same keys, so it goes through the merge.
DROPS=()
for i in $(seq 1 20); do
    drop_file "$SAMPLE" "small-$i.csv"
    DROPS+=("$DROP_S")
done
DROP_P50=$(printf '%s\n' "${DROPS[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", (v[10] + v[11]) / 2 }')
DROP_MAX=$(printf '%s\n' "${DROPS[@]}" | sort -n | tail -n1)
RSS_MAIN=$(peak_rss_mib)
IFS='|' read -r CHUNKS A_SPAN < <(pg "$PEN_DB" -At -F '|' -c "
    SELECT f.chunks_total, round(extract(epoch FROM (max(c.committed_at) - min(c.committed_at)))::numeric, 2)
    FROM ingest_files f JOIN ingest_chunks c ON c.file_id = f.id WHERE f.id = $FIRST_ID GROUP BY f.id")
rc=0
stop_penstock || rc=$?
((rc == 0)) || die "penstock exited with status $rc after SIGTERM"
cp "$WORKER_LOG" "$WORKER_LOG.all"
[[ -n ${BENCH_LOG:-} ]] && cp "$WORKER_LOG" "$BENCH_LOG.main"

# ---------------------------------------------------------------------------------------
log "6/7 (d) peak RSS in a process of its own: a ~10 MB file${BENCH_BIG:+ and a ~1 GB file}"
rss_case() { # rss_case RECORDS NAME: sets RSS_MIB for a fresh penstock loading that many records
    python3 scripts/bench_data.py --sample "$SAMPLE" --raw "$WORK/rss.csv" --clean /dev/null \
        --records "$1" >/dev/null
    fresh_db "$RSS_DB"
    PENSTOCK_DB_NAME=$RSS_DB
    start_penstock "$RSS_DB"
    drop_file "$WORK/rss.csv" "$2"
    RSS_MIB=$(peak_rss_mib)
    RSS_BYTES=$(stat -c %s "$WORK/rss.csv")
    stop_penstock || die "penstock did not stop cleanly"
    rm -f "$WORK/rss.csv"
}
rss_case 200000 rss-10mb.csv
RSS_10=$RSS_MIB
RSS_10_MB=$(calc "$RSS_BYTES / 1000000")
RSS_1G=- RSS_1G_MB=-
if [[ -n ${BENCH_BIG:-} ]]; then
    rss_case 20000000 rss-1gb.csv
    RSS_1G=$RSS_MIB
    RSS_1G_MB=$(calc "$RSS_BYTES / 1000000")
fi

# ---------------------------------------------------------------------------------------
log "7/7 results"
rps() { calc "$1 / $2"; }
COPY_RPS=$(rps "$COPY_ROWS" "$COPY_S")
ratio() { calc "($COPY_ROWS / $1) / $COPY_RPS"; }
verdict() { (($(awk "BEGIN { print ($1) }"))) && echo "holds" || echo "MISSED"; }
row() { printf '  %-38s %10s %10s %12.0f %8sx\n' "$1" "$2" "$3" "$(rps "$2" "$3")" "$(ratio "$3")"; }
cat <<EOF

penstock bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), $(psql --version | head -n1)
file: $D_records records ($D_reps x the eGRID2023 sample), $(calc "$D_raw_bytes / 1000000") MB, $D_superseded superseded duplicates, $CHUNKS chunks
penstock: chunk_bytes=${PENSTOCK_CHUNK_BYTES:-default}, database_concurrency=${PENSTOCK_DATABASE_CONCURRENCY:-default}, scan_interval=default (folder watched)

                                           rows    seconds       rows/s  vs \\copy
  (a) psql \\copy (clean rows: the limit) $(printf '%10s %10s %12.0f %8sx' "$COPY_ROWS" "$COPY_S" "$COPY_RPS" 1.00)
$(row "(a) in-database ELT (raw file)" "$COPY_ROWS" "$ELT_A_S")
$(row "(a) penstock end to end (raw file)" "$COPY_ROWS" "$PEN_A_S")
$(row "(b) in-database ELT, same again" "$COPY_ROWS" "$ELT_B_S")
$(row "(b) penstock, same bytes again" "$COPY_ROWS" "$PEN_B_S")

  (c) ~1 MB file ($SMALL_ROWS rows), drop → done: onto an empty table ${SMALL_EMPTY_S}s, onto $COPY_ROWS rows ${SMALL_FULL_S}s ($(calc "$SMALL_FULL_S / $SMALL_EMPTY_S")x)
      20 more drops of it (re-loads of the same keys), rename → done: p50 ${DROP_P50}s, max ${DROP_MAX}s
  (d) peak RSS of penstock run all: ${RSS_10} MiB for ${RSS_10_MB} MB, ${RSS_MAIN} MiB over (a)-(c) ($(calc "$D_raw_bytes / 1000000") MB files), ${RSS_1G} MiB for ${RSS_1G_MB} MB
  tables identical to \\copy's after (a) and (b): MATCH (md5 $COPY_MD5)
  (a) first → last chunk transaction start ${A_SPAN}s
  chunk paths (from the log): $(strip_ansi <"$WORKER_LOG.all" | grep -oE 'path=[^ ]+' | sort | uniq -c | tr -s ' ' | paste -sd,)
  release build ${BUILD_S}s; data generation ${GEN_S}s

targets on this machine:
  (a) >= 0.8x \\copy and ahead of ELT: $(verdict "$(ratio "$PEN_A_S") >= 0.8 && $PEN_A_S < $ELT_A_S")
  (b) >= 0.5x \\copy and ahead of ELT: $(verdict "$(ratio "$PEN_B_S") >= 0.5 && $PEN_B_S < $ELT_B_S")
  (c) <= 1.5x the empty-table time and <= 1.5 s: $(verdict "$SMALL_FULL_S <= 1.5 * $SMALL_EMPTY_S && $SMALL_FULL_S <= 1.5")
  discovery: a ~1 MB file queryable <= 1.5 s after its rename, p50 of 20: $(verdict "$DROP_P50 <= 1.5")
  (d) <= 96 MiB$( [[ $RSS_1G != - ]] && echo ", 1 GB within 10 % of 10 MB"): $(verdict "$RSS_MAIN <= 96 && $RSS_10 <= 96$( [[ $RSS_1G != - ]] && echo " && $RSS_1G <= 96 && $RSS_1G <= 1.1 * $RSS_10")")

EOF
