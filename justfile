# penstock: every routine command. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

export CARGO_TERM_COLOR := "never"
# The checked queries of crates/db compile from the offline data in .sqlx/, never from a
# DATABASE_URL that happens to be set (after changing a query or a migration: `just prepare`).
export SQLX_OFFLINE := "true"

# List the recipes.
default:
    @just --list

# Build the penstock binary (debug).
build:
    cargo build -p penstock

# Format check, clippy with warnings as errors, and no module cycle in any crate.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    python3 scripts/check-cycles.py --self-test
    python3 scripts/check-cycles.py

# Every test: unit tests beside the code and end-to-end tests against the real services.
test: services
    bash scripts/test-tools.sh
    .penstock/tools/venv/bin/python scripts/check-docker.py
    .penstock/tools/venv/bin/python scripts/check-docker.py --self-test
    cargo nextest run --workspace --no-fail-fast

# The whole fleet in containers (needs Docker with the compose plugin): one container per role, PostgreSQL, RabbitMQ, MinIO, Prometheus, Grafana.
up:
    docker compose -f docker/compose.yml up -d --build

# Stop the containers of `just up` (the cluster profile's nodes too) and delete their volumes (database, queues, bucket, metrics).
down:
    docker compose -f docker/compose.yml --profile cluster down -v

# Make sure PostgreSQL and RabbitMQ answer on localhost (starts them if this machine has them stopped).
services:
    @bash scripts/services.sh

# Refresh .sqlx/ (offline data of the compile-time checked queries) after changing a query or a migration; `--check` only checks it.
prepare *args: services
    bash scripts/prepare-queries.sh {{args}}

# Apply the migrations (creates the database if it does not exist).
migrate:
    cargo run -q -p penstock -- migrate

# Run the main job on the embedded default: migrate, start the fleet, drop the real eGRID file, watch it load.
demo: services
    bash scripts/demo.sh

# ~1M-row eGRID-shaped file: psql \copy vs penstock end to end, rows/s, ratio, peak RSS.
bench: services
    bash scripts/bench.sh

# Database consumer concurrency (1, 2, 4) x chunk size (1, 2, 4 MiB): first load and re-load against \copy.
bench-matrix: services
    bash scripts/bench-matrix.sh

# Database consumers as processes (1, 2, 4 of `penstock run database`, the other roles in one more): first load vs \copy, rows/s, PostgreSQL CPU.
bench-scale: services
    bash scripts/bench-scale.sh

# Read API under load (oha, loopback, real eGRID file): /plants/top and /plants/search at 1,000 req/s, p50/p99, req/s, RSS.
bench-api: services
    bash scripts/bench-api.sh

# Drop → queryable latency of a 1 MB file through an S3 bucket: by S3 event vs by polling.
bench-events: services
    cargo nextest run -p penstock-tests --run-ignored only bench_drop_to_queryable_latency --no-capture

# Chaos soak (not part of `just test`, which runs a 2-minute one): every role its own process, SIGKILLs, connection cuts, a purge, a stream of good/bad/rewritten files; checks the end state.
soak minutes="8": services
    PENSTOCK_SOAK_MINUTES={{minutes}} cargo nextest run -p penstock --test soak --run-ignored only --no-capture

# Property-based fuzzing of the record scanner, chunk planning and coercion (bounded: ~1-2 min).
fuzz cases="20000":
    PROPTEST_CASES={{cases}} cargo test -p penstock-core --release -- never_panics --nocapture
