#!/usr/bin/env bash
# `just demo`: the main job on the embedded default configuration (local-folder store,
# PostgreSQL and RabbitMQ at their defaults). It migrates, starts the whole fleet in one
# process (`penstock run all`), drops the real eGRID 2023 generator file into the folder,
# shows progress, and ends with a summary and the read API's answer to "top 5 plants in
# Texas in 2023". PENSTOCK_DEMO_KEEP=1 keeps the fleet (and its dashboard) running after.
#
# So that it can be run again and again, the demo uses its own database (penstock_demo),
# folder (.penstock/demo-inbox) and queue prefix (penstock-demo), reset at each run.
set -euo pipefail
cd "$(dirname "$0")/.."

export PENSTOCK_DATABASE_URL="${PENSTOCK_DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/penstock_demo}"
export PENSTOCK_STORAGE_URL="$PWD/.penstock/demo-inbox"
export PENSTOCK_QUEUE_PREFIX="penstock-demo"
export PENSTOCK_SCAN_INTERVAL="500ms"
export PENSTOCK_API_ADDR="${PENSTOCK_DEMO_API_ADDR:-127.0.0.1:8080}"
API="http://$PENSTOCK_API_ADDR"
FILE=data/egrid/egrid2023_gen.csv
KEY=egrid/generators/egrid2023_gen.csv

echo "==> building penstock"
cargo build -q -p penstock
BIN="${CARGO_TARGET_DIR:-target}/debug/penstock"

echo "==> resetting the demo database, folder and queues"
psql -q "${PENSTOCK_DATABASE_URL%/*}/postgres" -c "DROP DATABASE IF EXISTS penstock_demo WITH (FORCE)" >/dev/null
rm -rf "$PENSTOCK_STORAGE_URL"
mkdir -p "$PENSTOCK_STORAGE_URL/$(dirname "$KEY")" .penstock
# Every queue of the demo's prefix: the work queues and their retry queues.
for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep '^penstock-demo\.' || true); do
    rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
done

echo "==> penstock migrate"
"$BIN" migrate

echo "==> penstock run all (log: .penstock/demo.log)"
"$BIN" run all >.penstock/demo.log 2>&1 &
FLEET=$!
trap 'kill -TERM $FLEET 2>/dev/null; wait $FLEET 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q "scanner started" .penstock/demo.log && break
    kill -0 $FLEET 2>/dev/null || { cat .penstock/demo.log; echo "penstock exited early" >&2; exit 1; }
    sleep 0.1
done

echo "==> dropping $FILE as $KEY ($(wc -c <"$FILE") bytes)"
START=$(date +%s.%N)
cp "$FILE" "$PENSTOCK_STORAGE_URL/$(dirname "$KEY")/.incoming.tmp"
mv "$PENSTOCK_STORAGE_URL/$(dirname "$KEY")/.incoming.tmp" "$PENSTOCK_STORAGE_URL/$KEY"

STATUS=""
for _ in $(seq 1 1200); do
    LINE=$(psql -qAt "$PENSTOCK_DATABASE_URL" -c \
        "SELECT status, coalesce(chunks_done,0), coalesce(chunks_total,0), rows_loaded FROM ingest_files ORDER BY id DESC LIMIT 1" 2>/dev/null || true)
    if [ -n "$LINE" ]; then
        IFS='|' read -r STATUS DONE TOTAL ROWS <<<"$LINE"
        printf '    %-17s chunks %s/%s  rows loaded %s\n' "$STATUS" "$DONE" "$TOTAL" "$ROWS"
        case "$STATUS" in done|done_with_errors|rejected|failed) break ;; esac
    else
        echo "    waiting for the scanner to see the file"
    fi
    sleep 0.25
done
END=$(date +%s.%N)

echo
"$BIN" status
echo
psql -qAt "$PENSTOCK_DATABASE_URL" -F ' ' -c "
    SELECT rows_loaded, rows_quarantined, rows_superseded,
           extract(epoch FROM finished_at - discovered_at)
    FROM ingest_files ORDER BY id DESC LIMIT 1" | {
    read -r LOADED QUARANTINED SUPERSEDED PIPELINE
    ELAPSED=$(python3 -c "print(f'{$END - $START:.2f}')")
    RATE=$(python3 -c "print(f'{($LOADED + $QUARANTINED + $SUPERSEDED) / max($END - $START, 1e-9):,.0f}')")
    echo "summary: status $STATUS"
    echo "  rows loaded       $LOADED"
    echo "  rows quarantined  $QUARANTINED"
    echo "  rows superseded   $SUPERSEDED (a later line with the same key stands)"
    echo "  elapsed           ${ELAPSED}s from drop to committed (pipeline ${PIPELINE}s from discovery)"
    echo "  throughput        $RATE records/s"
}
echo
echo "==> the read API: top 5 plants in Texas in 2023"
echo "    curl -s '$API/plants/top?year=2023&state=TX&limit=5'"
python3 - "$API/plants/top?year=2023&state=TX&limit=5" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    plants = json.load(response)["data"]
for i, p in enumerate(plants, 1):
    print(f"    {i}. {p['plant_name']:<28} {p['net_generation_mwh']:>14,.0f} MWh  ({p['generators']} generators, id {p['id']})")
PY
[ "$STATUS" = done ] || [ "$STATUS" = done_with_errors ]
if [ "${PENSTOCK_DEMO_KEEP:-0}" = 1 ]; then
    echo
    echo "==> the fleet keeps running: dashboard $API/  API docs $API/docs/  (Ctrl-C stops it)"
    wait $FLEET
else
    echo
    echo "    (PENSTOCK_DEMO_KEEP=1 just demo keeps the fleet running, with the dashboard at $API/)"
fi
