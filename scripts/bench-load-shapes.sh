#!/usr/bin/env bash
# What the shape of a bulk load costs the target server, with no client work beside it:
# the same rows (the copy bench's 10 columns, LOAD_ROWS rows, default 1000000) loaded into an
# emptied table of a private MariaDB (the testkit's server options, 1 GB buffer pool) as
#
#   server-all       one LOAD DATA INFILE of the whole file (the copy bench's reference)
#   local-all        one LOAD DATA LOCAL INFILE of the whole file (sent over the protocol)
#   local-1k         1,000-row LOAD DATA LOCAL statements, one transaction each, over two
#                    sessions taking files in turn (DataTrace's defaults: batches of 1,000,
#                    two writers taking batches as they come)
#   local-1k-1s      the same over one session
#   local-1k-halves  the same over two sessions, each a contiguous half of the keys
#   local-10k-1s     10,000-row statements over one session
#
# and any of them with `+hog` (a process beside it busy half of one core, as DataTrace's own
# reads and encoding are in a real copy). Each load is followed by writing the dirty pages and
# waiting for the server to go idle, so its CPU is charged in full; prints per round the
# seconds, the server's CPU seconds and the pages of the table (its fill: two sessions
# writing adjacent key ranges split pages in the middle).
#
#   bash scripts/bench-load-shapes.sh
#   LOAD_VARIANTS="server-all local-1k server-all+hog local-1k+hog" LOAD_ROUNDS=4 bash scripts/bench-load-shapes.sh
#   LOAD_CALLGRIND=1 LOAD_ROUNDS=1 LOAD_VARIANTS="server-all local-1k local-1k-1s" bash scripts/bench-load-shapes.sh
#
# LOAD_CALLGRIND=1 runs the server under valgrind's callgrind (installed from apt when
# missing; LOAD_ROWS defaults to 100000 then) and prints the server's instructions per row
# during each load instead of CPU seconds: repeatable to about 0.5 % where CPU seconds on this
# machine drift by 15 %, but it leaves out the page flushing after the load.
#
# Installs MariaDB (scripts/setup.sh) when missing; the server and its files live in a
# temporary directory removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/setup.sh
source scripts/setup.sh >/dev/null

CALLGRIND="${LOAD_CALLGRIND:-}"
ROWS="${LOAD_ROWS:-$([ -n "$CALLGRIND" ] && echo 100000 || echo 1000000)}"
ROUNDS="${LOAD_ROUNDS:-3}"
VARIANTS="${LOAD_VARIANTS:-server-all local-all local-1k local-1k-1s local-1k-halves local-10k-1s}"
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
D="$(mktemp -d /tmp/datatrace-load-shapes.XXXXXX)"
PID=""
cleanup() {
    if [ -n "$PID" ]; then
        mariadb --no-defaults -S "$D/sock" -uroot -e SHUTDOWN >/dev/null 2>&1 || kill "$PID" 2>/dev/null || true
        while kill -0 "$PID" 2>/dev/null; do sleep 0.2; done
    fi
    rm -rf "$D"
}
trap cleanup EXIT

user=()
[ "$(id -u)" = 0 ] && user=(--user=root)
wrap=()
extra=()
if [ -n "$CALLGRIND" ]; then
    have callgrind_control || apt_install valgrind
    wrap=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$D/cg.out")
    # valgrind has no io_uring and cannot reserve the default maximum buffer pool.
    extra=(--innodb-use-native-aio=0 --innodb-buffer-pool-size-max=1G)
fi
mariadb-install-db --no-defaults --datadir="$D/data" --auth-root-authentication-method=normal \
    --skip-test-db "${user[@]}" >/dev/null
"${wrap[@]}" "$MARIADBD" --no-defaults --datadir="$D/data" --socket="$D/sock" --pid-file="$D/pid" \
    --skip-networking "${user[@]}" --tmpdir="$D" \
    --log-bin="$D/data/binlog" --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --server-id=1 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --default-time-zone=+00:00 --innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=1G \
    --local-infile=1 --secure-file-priv="$D" "${extra[@]}" >"$D/err.log" 2>&1 &
PID=$!
q() { mariadb --no-defaults -S "$D/sock" -uroot --local-infile=1 -N -B "$@"; }
for _ in $(seq 600); do q -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
q -e 'SELECT 1' >/dev/null || { cat "$D/err.log" >&2; exit 1; }

DDL="CREATE TABLE t (id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64),
  d DECIMAL(18,4), e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4"
q -e "CREATE DATABASE s; USE s; $DDL; INSERT INTO t SELECT seq, seq % 1000, seq * 7919, CONCAT('name-', seq), seq / 3,
  '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
  RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7
  FROM seq_1_to_$ROWS; SELECT * INTO OUTFILE '$D/all.tsv' FROM t ORDER BY id; DROP DATABASE s;
  CREATE DATABASE d; USE d; $DDL"
mkdir -p "$D/s1k" "$D/s10k"
(cd "$D/s1k" && split -l 1000 -a 6 ../all.tsv p)
(cd "$D/s10k" && split -l 10000 -a 6 ../all.tsv p)

cpu() { awk '{print ($14 + $15) / 100}' "/proc/$PID/stat"; }
settle() {
    q -e "SET GLOBAL innodb_max_dirty_pages_pct = 0"
    for _ in $(seq 600); do
        dirty=$(q -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'")
        [ "$dirty" -lt 1000 ] && break
        sleep 0.2
    done
    q -e "SET GLOBAL innodb_max_dirty_pages_pct = 90"
    for _ in $(seq 120); do
        a=$(cpu); sleep 0.5; b=$(cpu)
        awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a < 0.02) }' && break
    done
}
# Loads the files of $1 with LOAD DATA [LOCAL] over $2 sessions; $3: rr (files in turn) or
# halves (each session a contiguous half).
load() {
    local dir=$1 sessions=$2 split=$3 pids=() k
    rm -f "$D"/list*
    if [ "$split" = rr ]; then
        ls "$dir" | awk -v n="$sessions" -v d="$D" '{ print > (d "/list" (NR % n)) }'
    else
        ls "$dir" >"$D/files"
        split -n "l/$sessions" -d -a 1 "$D/files" "$D/list"
    fi
    for k in $(seq 0 $((sessions - 1))); do
        awk -v d="$dir" '{ printf "LOAD DATA LOCAL INFILE \x27%s/%s\x27 INTO TABLE t;\n", d, $1 }' "$D/list$k" | q d &
        pids+=($!)
    done
    wait "${pids[@]}"
}
variant() {
    case $1 in
        server-all) q d -e "LOAD DATA INFILE '$D/all.tsv' INTO TABLE t" ;;
        local-all) q d -e "LOAD DATA LOCAL INFILE '$D/all.tsv' INTO TABLE t" ;;
        local-1k) load "$D/s1k" 2 rr ;;
        local-1k-1s) load "$D/s1k" 1 rr ;;
        local-1k-halves) load "$D/s1k" 2 halves ;;
        local-10k-1s) load "$D/s10k" 1 rr ;;
        *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}
# Busy half of one core until killed (exec: the background job's pid is the process's).
hog() {
    exec python3 -c 'import time
while True:
    t = time.time()
    while time.time() - t < 0.005:
        pass
    time.sleep(0.005)'
}

say "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(q -e 'SELECT VERSION()'); $ROWS rows; $ROUNDS rounds (round 0 not counted: warm-up); variants: $VARIANTS"
declare -A cpus
for round in $(seq 0 "$ROUNDS"); do
    for v in $VARIANTS; do
        q d -e "TRUNCATE TABLE t"
        settle
        c0=$(cpu)
        t0=$(date +%s.%N)
        hog_pid=""
        if [ "${v%+hog}" != "$v" ]; then
            hog &
            hog_pid=$!
        fi
        if [ -n "$CALLGRIND" ]; then
            callgrind_control -z "$PID" >/dev/null 2>&1
            callgrind_control -i on "$PID" >/dev/null 2>&1
        fi
        variant "${v%+hog}"
        [ -n "$hog_pid" ] && kill "$hog_pid"
        t1=$(date +%s.%N)
        if [ -n "$CALLGRIND" ]; then
            callgrind_control -i off "$PID" >/dev/null 2>&1
            rm -f "$D"/cg.out.*
            callgrind_control -d "$PID" >/dev/null 2>&1
            instructions=$(awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 } END { print (t != "" ? t : s + 0) }' "$D"/cg.out.*)
        fi
        settle
        c1=$(cpu)
        rows=$(q d -e "SELECT COUNT(*) FROM t")
        [ "$rows" = "$ROWS" ] || { echo "error: $v loaded $rows rows, not $ROWS" >&2; exit 1; }
        q d -e "ANALYZE TABLE t" >/dev/null
        pages=$(q d -e "SELECT DATA_LENGTH DIV 16384 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME = 't'")
        if [ -n "$CALLGRIND" ]; then
            server=$((instructions / ROWS))
            unit="instructions / row"
        else
            server=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
            unit="CPU s"
        fi
        printf 'round %d  %-18s %6.1f s  server %8s %s  pages %s\n' "$round" "$v" \
            "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$server" "$unit" "$pages"
        [ "$round" -gt 0 ] && cpus[$v]+="$server "
    done
done
say "server $unit per load, median of the counted rounds"
for v in $VARIANTS; do
    printf '%-18s %s\n' "$v" "$(echo "${cpus[$v]}" | tr ' ' '\n' | sed '/^$/d' | sort -n |
        awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')"
done
