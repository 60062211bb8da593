#!/usr/bin/env bash
# Instructions per row of the three hot paths (binlog decode, Elasticsearch bulk encode, MySQL
# row encode), counted by valgrind's callgrind: repeatable on a loaded machine, where wall time
# is not. Runs the `callgrind` bench (benches/callgrind.rs) (release build) under
# `valgrind --tool=callgrind` on CG_ROWS rows (default 20000) and prints, per path, the
# inclusive instruction count of its functions divided by the rows; then the same binary
# natively, for the wall time per row beside it.
#
#   bash scripts/callgrind.sh
#   CG_ROWS=50000 bash scripts/callgrind.sh
#
# Installs valgrind (apt) and MariaDB (scripts/setup.sh) when missing. The profile is kept in
# target/callgrind/ (callgrind_annotate it for more).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/setup.sh
source scripts/setup.sh >/dev/null
have valgrind || apt_install valgrind

ROWS="${CG_ROWS:-20000}"
BIN="$(cargo bench -p datatrace --bench callgrind --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "callgrind" and m.get("executable"):
        print(m["executable"])')"
[ -x "$BIN" ] || { echo "error: could not build the callgrind bench" >&2; exit 1; }
OUT=target/callgrind
mkdir -p "$OUT"
say "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(valgrind --version); $ROWS rows"
say "native run (wall time per row)"
CG_ROWS="$ROWS" "$BIN" --bench
say "under callgrind (instruction counts)"
CG_ROWS="$ROWS" valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$BIN" --bench 2>"$OUT/valgrind.log"
callgrind_annotate --inclusive=yes --threshold=100 "$OUT/callgrind.out" >"$OUT/inclusive.txt"
python3 - "$OUT/inclusive.txt" "$ROWS" <<'EOF'
import re, sys

path, rows = sys.argv[1], int(sys.argv[2])
# The function (inclusive: with all it calls) that is each path's work per row.
PATHS = [
    ("binlog decode: a rows event into records (`Reader::rows`)", r"binlog::rows::<impl datatrace_mysql::binlog::reader::Reader>::rows::\{\{closure\}\}"),
    ("  of which row images into values (`TableDecoder::decode_image`)", r"TableDecoder::decode_image"),
    ("ES bulk: `EsSink::write` (encode, send, read the answer)", r"<datatrace_es::sink::EsSink as datatrace_core::sink::Sink>::write::\{\{closure\}\}"),
    ("  of which the document's JSON (`DocPlan::write_doc`)", r"datatrace_es::bulk::DocPlan::write_doc"),
    ("  of which the action line (`bulk::write_action`)", r"datatrace_es::bulk::write_action"),
    ("MySQL: `BulkLoad::write` (encode, LOAD DATA LOCAL)", r"datatrace_mysql::bulk_load::BulkLoad::write::\{\{closure\}\}"),
    ("  of which the row's LOAD DATA text (`load_data::encode_row`)", r"datatrace_mysql::load_data::encode_row"),
]
lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
total = next((int(l.split()[0].replace(",", "")) for l in lines if "PROGRAM TOTALS" in l), 0)
print(f"\n| path ({rows} rows) | instructions per row (callgrind, inclusive) |")
print("|---|---|")
for name, pattern in PATHS:
    # A function's own total is the line naming the binary after it ("... [path/bin]").
    found = [l for l in lines if re.search(pattern, l) and l.rstrip().endswith("]")]
    if not found:
        print(f"| {name} | not found in the profile (inlined or renamed: see {path}) |")
        continue
    ir = max(int(l.split()[0].replace(",", "")) for l in found)
    print(f"| {name} | {ir / rows:,.0f} |")
print(f"\nwhole process: {total / rows:,.0f} instructions per row (all three paths, setup included)")
EOF
