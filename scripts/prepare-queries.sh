#!/usr/bin/env bash
# Refreshes .sqlx/ at the workspace root: the offline data of the queries crates/db checks
# at compile time (sqlx::query! and friends), so building needs no database. Run it
# (`just prepare`) after changing such a query or a migration, and commit .sqlx/.
# `just prepare --check` only checks that .sqlx/ is up to date.
#
# It creates a scratch database on the test server (PENSTOCK_TEST_PG, as the tests do),
# applies the built-in migrations, runs `cargo sqlx prepare --workspace`, and drops the
# database again. sqlx-cli is installed when missing, at the version of sqlx in Cargo.lock
# (the offline format follows sqlx's version).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n '/^name = "sqlx"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)
if [[ "$(cargo sqlx --version 2>/dev/null)" != *" $version" ]]; then
    echo "installing sqlx-cli $version (the version of sqlx in Cargo.lock)"
    cargo install "sqlx-cli@$version" --no-default-features --features postgres,rustls --locked
fi

server="${PENSTOCK_TEST_PG:-postgres://postgres@127.0.0.1:5432}"
export DATABASE_URL="$server/penstock_prepare_$$"
trap 'cargo sqlx database drop -y >/dev/null 2>&1 || echo "warning: could not drop ${DATABASE_URL##*/}" >&2' EXIT
cargo sqlx database create
cargo sqlx migrate run --source migrations >/dev/null
cargo sqlx prepare --workspace "$@"
