#!/usr/bin/env python3
"""Benchmark data for scripts/bench.sh: a ~1M-record eGRID-shaped file and its cleaned twin.

What it writes (Python 3.11 standard library only):

  RAW    The real sample (data/egrid/egrid2023_gen.csv, 26,601 records) repeated N times,
         byte-for-byte in the same shape: both header rows verbatim (SEQGEN23, ...), CRLF,
         quoted thousands ("20,961"), accounting negatives (" (2,443)"), blanks, quoted
         plant names with commas, and no newline after the last record (like the sample).
         The sequence column is renumbered 1..N*26601 and every plant name gets the
         suffix " #k" (k = 1..N) so each repetition is a new set of keys. The sample's two
         duplicated keys stay duplicated inside each repetition (2*N superseded records).
         This is the file dropped into penstock's inbox.

  CLEAN  RAW parsed back independently of penstock (the csv module), coerced the way the
         dataset spec (config/datasets/egrid_generators.toml) says: fields trimmed, state
         upper-cased, thousands separators removed, "(x)" -> -x, blank -> NULL (an unquoted
         empty CSV field); deduplicated on (year, state, plant_name, generator_id) keeping
         the LAST record of each key. Columns: year, state, plant_name, generator_id,
         net_generation_mwh, source_file_id (given, default 1), source_line (the physical
         1-based line of the record in RAW, headers counted). Plain CSV with LF line ends:
         the input of the `psql \\copy` baseline, and the expected content of the table.

Prints key=value lines (records, unique_rows, superseded, raw_bytes, ...) for bench.sh.

Usage: bench_data.py --sample data/egrid/egrid2023_gen.csv --raw OUT.csv --clean OUT.clean.csv
                     [--records 1000000 | --reps 38] [--source-file-id 1]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
from decimal import Decimal

HEADER_ROWS = 2
# Column codes in the second header row (the sequence column's code changes every year).
CODES = ("YEAR", "PSTATEABB", "PNAME", "GENID", "GENNTAN")
# Digits with optional well-formed thousands groups, optional sign and fraction.
NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def read_sample(path: str) -> tuple[list[list[str]], list[list[str]], bool]:
    """Returns (header rows, data rows, whether the file ends with a newline)."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[:HEADER_ROWS], rows[HEADER_ROWS:]
    # The generator below writes rows with csv.writer; make sure that reproduces the sample
    # byte for byte, so every quirk of the original survives into the big file.
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    ends_with_newline = text.endswith("\r\n")
    rendered = out.getvalue() if ends_with_newline else out.getvalue()[:-2]
    if rendered != text:
        sys.exit(f"error: {path} does not round-trip through csv.writer; its quirks would be lost")
    return header, body, ends_with_newline


def column_indexes(codes_row: list[str]) -> dict[str, int]:
    codes = [c.strip().lstrip("\ufeff").upper() for c in codes_row]
    missing = [c for c in CODES if c not in codes]
    if missing:
        sys.exit(f"error: the sample's second header row lacks {missing}")
    return {c: codes.index(c) for c in CODES}


def write_raw(path: str, header, body, reps: int, ends_with_newline: bool, name_col: int) -> int:
    """Writes RAW; returns the number of records."""
    seq = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerows(header)
        for k in range(1, reps + 1):
            suffix = f" #{k}"
            for row in body:
                seq += 1
                new = list(row)
                new[0] = str(seq)
                new[name_col] = row[name_col] + suffix
                w.writerow(new)
    if not ends_with_newline:
        with open(path, "r+b") as f:
            f.seek(-2, os.SEEK_END)
            assert f.read(2) == b"\r\n"
            f.truncate(f.tell() - 2)
    return seq


def clean_number(raw: str) -> str:
    """'"20,961"' -> 20961, ' (2,443)' -> -2443, '' -> '' (NULL)."""
    s = raw.strip()
    if s == "":
        return ""
    negative = False
    if len(s) >= 2 and s[0] == "(" and s[-1] == ")":
        negative, s = True, s[1:-1].strip()
    if not NUMBER.fullmatch(s):
        raise ValueError(f"not a number: {raw!r}")
    if s[0] in "+-":
        if s[0] == "-":
            if negative:
                raise ValueError(f"two minus signs: {raw!r}")
            negative = True
        s = s[1:]
    value = Decimal(s.replace(",", ""))
    return format(-value if negative else value, "f")


def records(path: str):
    """Yields (physical start line, row) for each data record of RAW."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for _ in range(HEADER_ROWS):
            next(reader)
        last = reader.line_num
        for row in reader:
            yield last + 1, row
            last = reader.line_num


def clean(raw_path: str, clean_path: str, idx: dict[str, int], source_file_id: int) -> dict[str, int]:
    def typed(row: list[str]) -> list[str]:
        year = str(int(row[idx["YEAR"]].strip()))
        state = row[idx["PSTATEABB"]].strip().upper()
        plant = row[idx["PNAME"]].strip()
        gen = row[idx["GENID"]].strip()
        if not (state and plant and gen):
            raise ValueError(f"blank key field in {row!r}")
        return [year, state, plant, gen, clean_number(row[idx["GENNTAN"]])]

    # Pass 1: the line of the last record of each key (later records supersede earlier ones).
    last_line: dict[str, int] = {}
    n = 0
    for line, row in records(raw_path):
        n += 1
        last_line["\x1f".join(typed(row)[:4])] = line
    # Pass 2: write the survivors in file order.
    stats = {"thousands": 0, "negatives": 0, "blanks": 0, "quoted_commas": 0}
    written = 0
    with open(clean_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        for line, row in records(raw_path):
            net = row[idx["GENNTAN"]]
            stats["thousands"] += "," in net
            stats["negatives"] += net.strip().startswith("(")
            stats["blanks"] += net.strip() == ""
            stats["quoted_commas"] += "," in row[idx["PNAME"]]
            t = typed(row)
            if last_line["\x1f".join(t[:4])] != line:
                continue
            w.writerow(t + [str(source_file_id), str(line)])
            written += 1
    assert written == len(last_line)
    return {"records": n, "unique_rows": written, "superseded": n - written, **stats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", required=True)
    p.add_argument("--raw", required=True)
    p.add_argument("--clean", required=True)
    p.add_argument("--records", type=int, default=1_000_000, help="approximate target (default 1,000,000)")
    p.add_argument("--reps", type=int, help="repetitions of the sample (overrides --records)")
    p.add_argument("--source-file-id", type=int, default=1)
    a = p.parse_args()

    header, body, ends_with_newline = read_sample(a.sample)
    idx = column_indexes(header[1])
    reps = a.reps or max(1, round(a.records / len(body)))
    n = write_raw(a.raw, header, body, reps, ends_with_newline, idx["PNAME"])
    stats = clean(a.raw, a.clean, idx, a.source_file_id)
    assert stats["records"] == n
    out = {"reps": reps, "sample_records": len(body), **stats,
           "raw_bytes": os.path.getsize(a.raw), "clean_bytes": os.path.getsize(a.clean)}
    for k, v in out.items():
        print(f"{k}={v}")


if __name__ == "__main__":
    main()
