#!/usr/bin/env bash
# `just bench-matrix`: the database consumer's concurrency × chunk size, measured with
# `BENCH_QUICK=1 scripts/bench.sh` (\copy, then penstock's first load (a) and no-change
# re-load (b) of the ~1M-record file), one run per cell. Prints throughput against \copy
# (higher is better), so the defaults in config/penstock.toml can be chosen by measurement.
# Knobs: BENCH_MATRIX_CONCURRENCY (default "1 2 4"), BENCH_MATRIX_CHUNK_BYTES (default
# "1048576 2097152 4194304"), and those of bench.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
printf '%-12s %-12s %8s %8s %8s %8s %8s\n' concurrency chunk_bytes copy_s a_s b_s a_ratio b_ratio
for c in ${BENCH_MATRIX_CONCURRENCY:-1 2 4}; do
    for b in ${BENCH_MATRIX_CHUNK_BYTES:-1048576 2097152 4194304}; do
        line=$(BENCH_QUICK=1 PENSTOCK_DATABASE_CONCURRENCY=$c PENSTOCK_CHUNK_BYTES=$b bash scripts/bench.sh 2>&1 |
            grep '^quick:') || { echo "bench.sh failed for concurrency $c, chunk_bytes $b" >&2; exit 1; }
        eval "${line#quick: }"
        # shellcheck disable=SC2154 # set by the eval
        printf '%-12s %-12s %8s %8s %8s %7sx %7sx\n' "$c" "$b" "$copy_s" "$a_s" "$b_s" "$a_ratio" "$b_ratio"
    done
done
