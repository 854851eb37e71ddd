#!/usr/bin/env bash
# penstock benchmark: `just bench` (or `bash scripts/bench.sh` from the repo root).
#
# What it measures, on one ~1,000,000-record eGRID-shaped file (~50 MB):
#
#   baseline  `psql \copy` of the already-cleaned, already-deduplicated rows into the same
#             keyed table (egrid_generators: UNIQUE key + source index) in a fresh database.
#             This is the floor: no parsing of spreadsheet quirks, no dedupe, no broker, no
#             ledger, one transaction.
#   penstock  end to end: the raw file (two header rows, CRLF, "20,961", " (2,443)", blanks,
#             quoted commas, duplicate keys) is dropped into a local inbox watched by
#             `penstock run all` (scanner + chunker + database consumer in one process, via
#             RabbitMQ); timed from the moment the file appears (rename into place) until the
#             ledger says the file is done, i.e. every chunk committed. It includes the
#             scanner's settle time (two scans 200 ms apart agreeing on size+mtime) and
#             hashing the file to identify its version. The end is seen by polling the
#             ledger every BENCH_POLL seconds (default 0.2), so it is late by up to that much.
#
# Then both tables are dumped sorted and their md5 hashes compared (they must be identical,
# lineage line numbers included), and a results table is printed: rows, seconds, rows/s,
# the time ratio penstock/\copy, penstock's peak RSS (VmHWM), file size and chunk count.
#
# Data comes from scripts/bench_data.py (the real sample repeated; see its header).
# Everything is thrown away at the end, also on failure: the background penstock, the
# RabbitMQ queues of this run's prefix, both bench databases and the temp folder.
#
# Knobs (environment): BENCH_RECORDS (default 1000000), BENCH_TIMEOUT (s, default 600),
# BENCH_POLL (s, default 0.2), BENCH_PG (default postgres://postgres@127.0.0.1:5432),
# BENCH_LOG (a path: keep a copy of penstock's log there).
# PENSTOCK_CHUNK_BYTES and PENSTOCK_DATABASE_CONCURRENCY pass through to penstock if set.
# Needs: cargo, python3, psql, rabbitmqctl (for queue cleanup), PostgreSQL and RabbitMQ up.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
RECORDS=${BENCH_RECORDS:-1000000}
TIMEOUT=${BENCH_TIMEOUT:-600}
POLL=${BENCH_POLL:-0.2}
COPY_DB=penstock_bench_copy
PEN_DB=penstock_bench
PREFIX=bench$$
BIN=${CARGO_TARGET_DIR:-target}/release/penstock
SAMPLE=$ROOT/data/egrid/egrid2023_gen.csv
FILE_NAME=egrid_bench_gen.csv
KEY=egrid/generators/$FILE_NAME

export PENSTOCK_CONFIG=$ROOT/config/penstock.toml
export PENSTOCK_AMQP_URL=${PENSTOCK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic with awk (bash has integers only).
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
BENCH_NAME=bench
BENCH_DBS=("$PEN_DB" "$COPY_DB")
WORK_TEMPLATE=penstock-bench.XXXXXX
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
# migrate DB: `penstock migrate` against DB (creating it), its output shown only on failure.
migrate() {
    PENSTOCK_DATABASE_URL=$PG/$1 "$BIN" migrate >"$WORK/migrate.log" 2>&1 ||
        { cat "$WORK/migrate.log" >&2; die "penstock migrate failed for $1"; }
}

# ---------------------------------------------------------------------------------------
log "1/5 building the release binary"
t=$(now)
cargo build --release -p penstock
BUILD_S=$(calc "$(now) - $t")
[[ -x $BIN ]] || die "no binary at $BIN after the build"
log "build took ${BUILD_S}s"

# ---------------------------------------------------------------------------------------
log "2/5 generating ~$RECORDS records from $SAMPLE"
RAW=$WORK/raw.csv
CLEAN=$WORK/clean.csv
t=$(now)
python3 scripts/bench_data.py --sample "$SAMPLE" --raw "$RAW" --clean "$CLEAN" \
    --records "$RECORDS" --source-file-id 1 >"$WORK/data.env"
GEN_S=$(calc "$(now) - $t")
# key=value lines: reps, records, unique_rows, superseded, raw_bytes, ...
while IFS='=' read -r k v; do
    [[ $k =~ ^[a-z_]+$ && $v =~ ^[0-9]+$ ]] && printf -v "D_$k" '%s' "$v"
done <"$WORK/data.env"
log "generated in ${GEN_S}s: ${D_records} records (${D_reps} x ${D_sample_records}), $D_unique_rows unique keys" \
    "($D_superseded superseded), $D_raw_bytes bytes; quirks: $D_thousands net values with thousands" \
    "separators, $D_negatives accounting negatives, $D_blanks blanks, $D_quoted_commas plant names with commas"

# ---------------------------------------------------------------------------------------
log "3/5 baseline: psql \\copy of the cleaned rows into $COPY_DB"
pg postgres -c "DROP DATABASE IF EXISTS $COPY_DB WITH (FORCE)" >/dev/null
migrate "$COPY_DB"
t=$(now)
pg "$COPY_DB" -c "\\copy egrid_generators (year,state,plant_name,generator_id,net_generation_mwh,source_file_id,source_line) FROM '$CLEAN' WITH (FORMAT csv)"
COPY_S=$(calc "$(now) - $t")
COPY_ROWS=$(pg "$COPY_DB" -Atc "SELECT count(*) FROM egrid_generators")
((COPY_ROWS == D_unique_rows)) || die "\\copy loaded $COPY_ROWS rows, expected $D_unique_rows"
log "\\copy: $COPY_ROWS rows in ${COPY_S}s"

# ---------------------------------------------------------------------------------------
log "4/5 penstock end to end: run all, drop the raw file, wait for the ledger to say done"
pg postgres -c "DROP DATABASE IF EXISTS $PEN_DB WITH (FORCE)" >/dev/null
export PENSTOCK_DATABASE_URL=$PG/$PEN_DB
export PENSTOCK_STORAGE_URL=$WORK/inbox
export PENSTOCK_QUEUE_PREFIX=$PREFIX
export PENSTOCK_SCAN_INTERVAL=200ms
migrate "$PEN_DB"
INBOX=$PENSTOCK_STORAGE_URL/egrid/generators
mkdir -p "$INBOX"

STARTED_PENSTOCK=1
"$BIN" run all >"$WORKER_LOG" 2>&1 &
PEN_PID=$!
for i in $(seq 1 300); do
    grep -q "scanner started" "$WORKER_LOG" && break
    kill -0 "$PEN_PID" 2>/dev/null || die "penstock exited during startup"
    ((i < 300)) || die "penstock did not log 'scanner started' within 30 s"
    sleep 0.1
done
sleep 1 # let the chunker and database consumer finish declaring and subscribing
log "penstock is up (pid $PEN_PID, queue prefix $PREFIX, storage $PENSTOCK_STORAGE_URL)"

# Copy under a hidden name (the scanner skips names starting with '.'), then rename into
# place: the file appears whole, at one instant, which is where the clock starts.
cp "$RAW" "$INBOX/.$FILE_NAME.part"
sync "$INBOX/.$FILE_NAME.part" 2>/dev/null || true
T0=$(now)
mv "$INBOX/.$FILE_NAME.part" "$INBOX/$FILE_NAME"

STATUS=
while :; do
    row=$(pg "$PEN_DB" -At -F '|' -c "SELECT status, coalesce(reason, '') FROM ingest_files WHERE key = '$KEY' ORDER BY id DESC LIMIT 1")
    T1=$(now)
    STATUS=${row%%|*}
    case $STATUS in
        done | done_with_errors) break ;;
        rejected | failed) die "penstock marked the file $STATUS: ${row#*|}" ;;
    esac
    kill -0 "$PEN_PID" 2>/dev/null || die "penstock exited while loading (status: ${STATUS:-not yet discovered})"
    (($(awk "BEGIN { print ($T1 - $T0 < $TIMEOUT) }"))) ||
        die "timed out after ${TIMEOUT}s (status: ${STATUS:-not yet discovered})"
    sleep "$POLL"
done
PEN_S=$(calc "$T1 - $T0")
RSS_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PEN_PID/status")
log "penstock: file $STATUS after ${PEN_S}s; stopping it (SIGTERM)"
rc=0
stop_penstock || rc=$?
((rc == 0)) || die "penstock exited with status $rc after SIGTERM"

IFS='|' read -r FILE_ID SIZE_BYTES CHUNKS RECORDS_TOTAL ROWS_LOADED ROWS_QUAR ROWS_SUP DETECT_S CHUNKING_S LOAD_SPAN_S < <(
    pg "$PEN_DB" -At -F '|' -c "
        SELECT f.id, f.size_bytes, f.chunks_total, f.records_total, f.rows_loaded,
               f.rows_quarantined, f.rows_superseded,
               round((extract(epoch FROM f.discovered_at) - $T0)::numeric, 2),
               round(extract(epoch FROM (f.started_at - f.discovered_at))::numeric, 2),
               round(extract(epoch FROM (max(c.committed_at) - min(c.committed_at)))::numeric, 2)
        FROM ingest_files f JOIN ingest_chunks c ON c.file_id = f.id
        WHERE f.key = '$KEY' GROUP BY f.id")
PEN_ROWS=$(pg "$PEN_DB" -Atc "SELECT count(*) FROM egrid_generators")
# The precise end: the log line of the chunk commit that finished the file (the ledger's own
# timestamps are transaction starts, and polling sees the commit up to BENCH_POLL late).
LAST_COMMIT_S=?
last_ts=$(strip_ansi <"$WORKER_LOG" | { grep -E 'chunk committed.*status=done' || true; } | tail -n1 | cut -d' ' -f1)
if [[ -n $last_ts ]] && last_epoch=$(date -d "$last_ts" +%s.%N 2>/dev/null); then
    LAST_COMMIT_S=$(calc "$last_epoch - $T0")
fi

# ---------------------------------------------------------------------------------------
log "5/5 comparing the two tables"
((PEN_ROWS == COPY_ROWS)) || die "MISMATCH: penstock table has $PEN_ROWS rows, \\copy table has $COPY_ROWS"
DUMP="COPY (SELECT year, state, plant_name, generator_id, net_generation_mwh, source_line
            FROM egrid_generators ORDER BY 1, 2, 3, 4) TO STDOUT"
COPY_MD5=$(pg "$COPY_DB" -Atc "$DUMP" | md5sum | cut -d' ' -f1)
PEN_MD5=$(pg "$PEN_DB" -Atc "$DUMP" | md5sum | cut -d' ' -f1)
[[ $COPY_MD5 == "$PEN_MD5" ]] || die "MISMATCH: sorted dumps differ (\\copy $COPY_MD5, penstock $PEN_MD5)"
SRC_IDS=$(pg "$PEN_DB" -Atc "SELECT string_agg(DISTINCT source_file_id::text, ',') FROM egrid_generators")
[[ $SRC_IDS == "$FILE_ID" ]] || die "MISMATCH: source_file_id values $SRC_IDS, expected $FILE_ID"
log "MATCH: $PEN_ROWS rows, md5 $PEN_MD5"

# ---------------------------------------------------------------------------------------
COPY_RPS=$(calc "$COPY_ROWS / $COPY_S")
PEN_RPS=$(calc "$PEN_ROWS / $PEN_S")
cat <<EOF

penstock bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -sr)
file: $D_records records ($D_reps x the eGRID2023 sample), $(calc "$D_raw_bytes / 1000000") MB, $D_superseded superseded duplicates
penstock: chunk_bytes=${PENSTOCK_CHUNK_BYTES:-2097152 (default)}, database_concurrency=${PENSTOCK_DATABASE_CONCURRENCY:-2 (default)}, scan_interval=200ms

                          rows      seconds       rows/s
  psql \\copy (clean)  $(printf '%10s' "$COPY_ROWS")   $(printf '%10s' "$COPY_S")   $(printf '%10.0f' "$COPY_RPS")
  penstock (raw)      $(printf '%10s' "$PEN_ROWS")   $(printf '%10s' "$PEN_S")   $(printf '%10.0f' "$PEN_RPS")

  time ratio penstock / \\copy     $(calc "$PEN_S / $COPY_S")x
  penstock peak RSS (VmHWM)       $(calc "$RSS_KB / 1024") MiB
  file size                       $(calc "$SIZE_BYTES / 1000000") MB ($SIZE_BYTES bytes)
  chunks                          $CHUNKS
  ledger                          records $RECORDS_TOTAL, loaded $ROWS_LOADED, superseded $ROWS_SUP, quarantined $ROWS_QUAR
  penstock breakdown              drop→discovered ${DETECT_S}s, discovered→chunking ${CHUNKING_S}s,
                                  first→last chunk transaction start ${LOAD_SPAN_S}s,
                                  drop→last chunk commit (from its log) ${LAST_COMMIT_S}s
  tables identical                MATCH (md5 $PEN_MD5)
  release build                   ${BUILD_S}s; data generation ${GEN_S}s

EOF
if (($(awk "BEGIN { print ($PEN_S > 2 * $COPY_S) }"))); then
    echo "note: penstock took more than 2x the \\copy time; chunk commits from its log:"
    strip_ansi <"$WORKER_LOG" | grep -E "chunk committed|chunk items published|discovered file version" |
        sed 's/^/  /' || true
fi
