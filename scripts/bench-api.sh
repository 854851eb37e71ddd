#!/usr/bin/env bash
# penstock read-API load benchmark: `just bench-api` (or `bash scripts/bench-api.sh` from the
# repo root).
#
# It builds penstock in release, loads the real eGRID 2023 generator file
# (data/egrid/egrid2023_gen.csv) through `penstock run all` into a database of its own
# (penstock_bench_api, recreated each run), then drives the API on a free loopback port with
# oha (https://github.com/hatoo/oha) and prints one line per scenario: requests/s achieved,
# latency p50 / p99 / p99.9, and failures (non-2xx responses plus connection errors).
#
#   top         GET /plants/top, varied year / state / limit, at a fixed rate (default
#               1000 req/s), after a warm-up run of the same mix: nearly all cache hits.
#   search      GET /plants/search with a random 3-letter q, optional state, page 1-3 and
#               sort, at the same fixed rate: free-text searches are never kept as
#               responses; each is answered from the API's in-memory plant index.
#   top (max)   GET /plants/top as fast as it goes (no rate limit): the ceiling.
#
# Latencies at a fixed rate are corrected for coordinated omission (oha
# --latency-correction): a request is timed from when it was due, not from when a busy
# connection got round to sending it. oha runs on this machine too, so it competes with
# penstock and PostgreSQL for the same cores; that is part of what is measured.
# Also printed: penstock's resident memory (VmRSS) after each scenario and its peak (VmHWM).
#
# Everything is thrown away at the end, also on failure: the background penstock, the
# RabbitMQ queues of this run's prefix, the database and the temp folder.
#
# Knobs (environment): BENCH_API_RATE (req/s, default 1000), BENCH_API_DURATION (default
# 20s), BENCH_API_WARMUP (default 5s), BENCH_API_CONNECTIONS (default 50),
# BENCH_API_OHA_THREADS (oha's worker threads, default 1), BENCH_API_TIMEOUT (s to wait for
# the load, default 120), BENCH_PG (default postgres://postgres@127.0.0.1:5432),
# BENCH_LOG (a path: keep a copy of penstock's log there), BENCH_API_JSON (a folder: keep
# oha's JSON result of every scenario there).
# Needs: cargo, curl, python3, psql, rabbitmqctl (for queue cleanup), PostgreSQL and
# RabbitMQ up. oha is installed with `cargo install oha --locked` if it is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

OHA_VERSION=1.16.0
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
RATE=${BENCH_API_RATE:-1000}
DURATION=${BENCH_API_DURATION:-20s}
WARMUP=${BENCH_API_WARMUP:-5s}
CONNECTIONS=${BENCH_API_CONNECTIONS:-50}
OHA_THREADS=${BENCH_API_OHA_THREADS:-1}
TIMEOUT=${BENCH_API_TIMEOUT:-120}
DB=penstock_bench_api
PREFIX=benchapi$$
BIN=${CARGO_TARGET_DIR:-target}/release/penstock
SAMPLE=$ROOT/data/egrid/egrid2023_gen.csv
KEY=egrid/generators/egrid2023_gen.csv
# States in the mixes: the largest producers plus a few small ones.
STATES='TX|CA|FL|PA|IL|OH|NY|GA|NC|AZ|WA|VT|RI|DC'

export PENSTOCK_CONFIG=$ROOT/config/penstock.toml
export PENSTOCK_AMQP_URL=${PENSTOCK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

BENCH_NAME=bench-api
BENCH_DBS=("$DB")
WORK_TEMPLATE=penstock-bench-api.XXXXXX
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
# rss FIELD: a memory line of penstock's /proc status (VmRSS, VmHWM) in MiB.
rss() { awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$PEN_PID/status"; }

for tool in cargo curl python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is needed but not on PATH"
done

# ---------------------------------------------------------------------------------------
log "1/5 load generator: oha"
OHA=$(command -v oha || true)
[[ -n $OHA ]] || OHA=${CARGO_HOME:-$HOME/.cargo}/bin/oha
if [[ ! -x $OHA ]]; then
    log "oha is missing; installing oha $OHA_VERSION with cargo (a few minutes, once)"
    cargo install oha --version "$OHA_VERSION" --locked ||
        die "could not install oha; install it yourself (cargo install oha --locked, or a package from https://github.com/hatoo/oha/releases) and put it on PATH"
    [[ -x $OHA ]] || die "cargo install oha succeeded but $OHA is not there; put oha on PATH"
fi
OHA_VERSION_USED=$("$OHA" --version | awk '{ print $2 }')
log "using $OHA (oha $OHA_VERSION_USED)"

# ---------------------------------------------------------------------------------------
log "2/5 building the release binary"
cargo build --release -p penstock
[[ -x $BIN ]] || die "no binary at $BIN after the build"

# ---------------------------------------------------------------------------------------
log "3/5 fresh database $DB, queue prefix $PREFIX, store $WORK/inbox"
pg postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
export PENSTOCK_DATABASE_URL=$PG/$DB
export PENSTOCK_STORAGE_URL=$WORK/inbox
export PENSTOCK_QUEUE_PREFIX=$PREFIX
export PENSTOCK_SCAN_INTERVAL=200ms
"$BIN" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "penstock migrate failed"; }
INBOX=$PENSTOCK_STORAGE_URL/$(dirname "$KEY")
mkdir -p "$INBOX"

# A free loopback port (not 8080: a demo may be running there).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PENSTOCK_API_ADDR=127.0.0.1:$PORT
BASE=http://127.0.0.1:$PORT

STARTED_PENSTOCK=1
"$BIN" run all >"$WORKER_LOG" 2>&1 &
PEN_PID=$!
for i in $(seq 1 300); do
    curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && break
    kill -0 "$PEN_PID" 2>/dev/null || die "penstock exited during startup"
    ((i < 300)) || die "the API did not answer $BASE/health within 30 s"
    sleep 0.1
done
log "penstock is up (pid $PEN_PID, API $BASE)"

# ---------------------------------------------------------------------------------------
log "4/5 loading $SAMPLE ($(wc -c <"$SAMPLE") bytes) as $KEY"
cp "$SAMPLE" "$INBOX/.incoming.part"
mv "$INBOX/.incoming.part" "$INBOX/$(basename "$KEY")"
STATUS=
for i in $(seq 1 $((TIMEOUT * 4))); do
    STATUS=$(curl -fsS "$BASE/files?dataset=egrid_generators" |
        python3 -c 'import json, sys; d = json.load(sys.stdin)["data"]; print(d[0]["status"] if d else "")')
    case $STATUS in
        done | done_with_errors) break ;;
        rejected | failed) die "penstock marked the file $STATUS (see GET $BASE/files)" ;;
    esac
    kill -0 "$PEN_PID" 2>/dev/null || die "penstock exited while loading"
    ((i < TIMEOUT * 4)) || die "the file was not loaded within ${TIMEOUT}s (status: ${STATUS:-not yet discovered})"
    sleep 0.25
done
read -r PLANTS GENERATORS < <(curl -fsS "$BASE/plants/statistics" |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["plants"], d["generators"])')
((PLANTS > 0)) || die "the file is $STATUS but /plants/statistics counts no plants"
log "file $STATUS: $GENERATORS generators in $PLANTS plants"
# Every URL of a mix must be valid: one of each shape, checked before the load.
for url in "$BASE/plants/top?year=2023&state=TX&limit=100" "$BASE/plants/top?limit=1" \
    "$BASE/plants/search?q=sol&state=CA&page=3&sort=plant_name" "$BASE/plants/search?q=zzq&page=1"; do
    curl -fsS -o /dev/null "$url" || die "GET $url failed"
done

# ---------------------------------------------------------------------------------------
log "5/5 load: $RATE req/s for $DURATION per scenario, $CONNECTIONS connections, oha on $OHA_THREADS thread(s)"
TOP_URL="$BASE/plants/top\\?(year=2023&)?(state=($STATES)&)?limit=([1-9]|[1-9][0-9]|100)"
SEARCH_URL="$BASE/plants/search\\?q=[a-z]{3}(&state=($STATES))?&page=[1-3](&sort=(plant_name|generators))?"

# oha_run NAME ARGS...: one oha run, its JSON result kept in $WORK/NAME.json.
oha_run() {
    local name=$1; shift
    "$OHA" --no-tui --output-format json -o "$WORK/$name.json" --worker-threads "$OHA_THREADS" \
        -c "$CONNECTIONS" -w "$@" >/dev/null ||
        die "oha failed in scenario $name"
    [[ -z ${BENCH_API_JSON:-} ]] || { mkdir -p "$BENCH_API_JSON" && cp "$WORK/$name.json" "$BENCH_API_JSON/"; }
}
# row LABEL NAME: one line of the results table from $WORK/NAME.json.
row() {
    python3 - "$1" "$WORK/$2.json" "$3" <<'EOF'
import json, sys
label, path, rss = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(path))
s, p = r["summary"], r["latencyPercentiles"]
codes = {int(k): v for k, v in r.get("statusCodeDistribution", {}).items()}
ok = sum(v for k, v in codes.items() if 200 <= k < 300)
failed = sum(v for k, v in codes.items() if not 200 <= k < 300) + sum(r.get("errorDistribution", {}).values())
ms = lambda v: "%.2f" % (v * 1000) if v is not None else "-"
print("  %-26s %9.0f %9s %9s %9s %9s %9d %9s" % (label, s["requestsPerSec"], ms(p["p50"]), ms(p["p99"]),
      ms(p["p99.9"]), ms(s["slowest"]), failed, rss))
if ok == 0:
    sys.exit("no successful request in " + label)
EOF
}

RESULTS=()
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up: /plants/top mix for $WARMUP (not reported)"
oha_run warmup -z "$WARMUP" -q "$RATE" --latency-correction --rand-regex-url "$TOP_URL"
log "scenario 1/3: /plants/top mix at $RATE req/s"
oha_run top -z "$DURATION" -q "$RATE" --latency-correction --rand-regex-url "$TOP_URL"
RESULTS+=("$(row "/plants/top @ $RATE/s" top "$(rss VmRSS)")")
log "scenario 2/3: /plants/search mix at $RATE req/s"
oha_run search -z "$DURATION" -q "$RATE" --latency-correction --rand-regex-url "$SEARCH_URL"
RESULTS+=("$(row "/plants/search @ $RATE/s" search "$(rss VmRSS)")")
log "scenario 3/3: /plants/top mix, unthrottled"
oha_run top_max -z "$DURATION" --rand-regex-url "$TOP_URL"
RESULTS+=("$(row "/plants/top unthrottled" top_max "$(rss VmRSS)")")
HWM=$(rss VmHWM)

stop_penstock || die "penstock exited with an error after SIGTERM"

cat <<EOF

penstock bench-api — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr)
data: $KEY, $GENERATORS generators in $PLANTS plants; oha $OHA_VERSION_USED, $CONNECTIONS connections, $OHA_THREADS thread(s), $DURATION per scenario
load average before the runs: $LOAD (other work on the machine skews the tail)

  scenario                        req/s   p50 ms    p99 ms  p99.9 ms   max ms    failed  RSS MiB
$(printf '%s\n' "${RESULTS[@]}")

  penstock peak RSS (VmHWM)  $HWM MiB (the whole fleet: scanner, chunker, database consumer, api)
  latencies at a fixed rate are corrected for coordinated omission (oha --latency-correction)

EOF
