#!/usr/bin/env bash
# DataTrace quickstart: on a fresh machine, installs what is missing (scripts/setup.sh:
# MariaDB from apt, a JDK and Maven, OpenSearch's jars from Maven Central once), builds the
# `datatrace` CLI, starts a private MariaDB and a private OpenSearch 2.19 node
# (scripts/search-engine.sh) on free ports, loads a sample shop (customers, products, orders, order_items: about 50,000 rows),
# copies it MySQL -> Elasticsearch with `datatrace run` and live progress, then compares
# document counts with row counts and shows one document next to its source row.
#
# Usage:
#   scripts/quickstart.sh [--small]   run the demo (--small: ~2,000 rows, as in CI)
#   scripts/quickstart.sh --documents [--small]
#                                     the same shop (plus product tags) as denormalized
#                                     documents: one document per order with its customer,
#                                     its lines (nested), their products and tags
#   scripts/quickstart.sh env         print `export` lines for the examples (eval "$(...)")
#   scripts/quickstart.sh stop        stop both servers and delete their data
#
# Environment:
#   QUICKSTART_SCALE    orders to generate (default 15000, --small 600); customers are a
#                       third of that, products a fifteenth, order lines about twice
#   QUICKSTART_PROFILE  debug (default) or release. A debug build copies the shop in
#                       seconds and builds in about half the time of a release build
#   QUICKSTART_ENGINE   opensearch (default) or elasticsearch (7.17)
#   DATATRACE_BIN       a `datatrace` binary to use instead of building one
#   QUICKSTART_DIR      where servers keep their data, logs and pids
#                       (default .datatrace/quickstart in the repository)
#
# Idempotent: running it again reuses the servers if they are up, reloads the shop and
# copies it again. Exits non-zero when a count does not match.
set -euo pipefail
QS_DIR=${QUICKSTART_DIR:-.datatrace/quickstart}
[ -n "${QUICKSTART_DIR:-}" ] && [ "${QS_DIR#/}" = "$QS_DIR" ] && QS_DIR=$PWD/$QS_DIR
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
[ "${QS_DIR#/}" = "$QS_DIR" ] && QS_DIR=$ROOT/$QS_DIR
DB_DIR=$QS_DIR/mariadb
OS_DIR=$QS_DIR/engine
ENGINE=${QUICKSTART_ENGINE:-opensearch}
TABLES=(customers products orders order_items)

say() { printf '==> %s\n' "$*"; }
STARTED=""
die() {
    printf 'error: %s\n' "$*" >&2
    if [ -n "$STARTED" ]; then
        printf 'the servers are still running; stop them with: scripts/quickstart.sh stop\n' >&2
    fi
    exit 1
}

# A live process of ours: the pid file exists, the process runs, and its command line is
# the expected program (so that a recycled pid is never taken for ours).
alive() {
    local pidfile=$1 program=$2 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$program"
}

stop_process() {
    local pidfile=$1 program=$2 name=$3 pid i
    if alive "$pidfile" "$program"; then
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            alive "$pidfile" "$program" || break
            sleep 0.2
        done
        if alive "$pidfile" "$program"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    stop_process "$DB_DIR/mariadbd.pid" "$DB_DIR/data" "MariaDB"
    SEARCH_ENGINE_DIR=$OS_DIR bash scripts/search-engine.sh stop "$ENGINE"
    rm -rf "$QS_DIR"
    say "removed $QS_DIR"
}

cmd_env() {
    local url
    [ -f "$DB_DIR/port" ] && url=$(SEARCH_ENGINE_DIR=$OS_DIR bash scripts/search-engine.sh url "$ENGINE") ||
        die "the quickstart servers are not running: run scripts/quickstart.sh first"
    echo "export MYSQL_URL=mysql://root@127.0.0.1:$(cat "$DB_DIR/port") MYSQL_DB=shop"
    echo "export ES_URL=$url"
}

DOCUMENTS=""
ARGS=()
for a in "$@"; do
    if [ "$a" = "--documents" ]; then DOCUMENTS=1; else ARGS+=("$a"); fi
done
set -- "${ARGS[@]+"${ARGS[@]}"}"
case "${1:-}" in
stop)
    cmd_stop
    exit 0
    ;;
env)
    cmd_env
    exit 0
    ;;
--small) SCALE=${QUICKSTART_SCALE:-600} ;;
"") SCALE=${QUICKSTART_SCALE:-15000} ;;
*) die "unknown argument ${1}; usage: scripts/quickstart.sh [--documents] [--small] | env | stop" ;;
esac
[[ "$SCALE" =~ ^[0-9]+$ ]] && [ "$SCALE" -ge 30 ] || die "QUICKSTART_SCALE must be a number >= 30"

mkdir -p "$QS_DIR"

# --- 1. what is missing ---------------------------------------------------------------------
say "checking what is installed (scripts/setup.sh)"
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
cd "$ROOT"
PY=$ROOT/.venv/bin/python

find_bin() {
    local env_value=$1
    shift
    if [ -n "$env_value" ]; then
        echo "$env_value"
        return
    fi
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null; then
            command -v "$name"
            return
        fi
        for dir in /usr/sbin /usr/local/sbin /usr/bin; do
            if [ -x "$dir/$name" ]; then
                echo "$dir/$name"
                return
            fi
        done
    done
    die "$1 not found (scripts/setup.sh should have installed it)"
}
MARIADBD=$(find_bin "${MARIADBD_BIN:-}" mariadbd mysqld)
INSTALL_DB=$(find_bin "${MARIADB_INSTALL_DB_BIN:-}" mariadb-install-db mysql_install_db)
CLIENT=$(find_bin "${MARIADB_CLIENT_BIN:-}" mariadb mysql)

# --- 2. the datatrace CLI -----------------------------------------------------------------------
if [ -n "${DATATRACE_BIN:-}" ]; then
    DATATRACE=$DATATRACE_BIN
    [ -x "$DATATRACE" ] || die "DATATRACE_BIN=$DATATRACE is not an executable"
    say "using $DATATRACE"
else
    PROFILE=${QUICKSTART_PROFILE:-debug}
    case "$PROFILE" in
    release) flags=(--release) ;;
    debug) flags=(--profile dev) ;;
    *) die "QUICKSTART_PROFILE must be release or debug" ;;
    esac
    say "building datatrace ($PROFILE build; the first one takes a few minutes)"
    run cargo build "${flags[@]}" -p datatrace-server --bin datatrace
    DATATRACE=$ROOT/target/$PROFILE/datatrace
fi

# --- 3. servers -------------------------------------------------------------------------------
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sql() { "$CLIENT" --no-defaults --default-character-set=utf8mb4 --socket="$DB_DIR/mariadbd.sock" -uroot "$@"; }

start_mariadb() {
    if alive "$DB_DIR/mariadbd.pid" "$DB_DIR/data" && sql -e 'SELECT 1' >/dev/null 2>&1; then
        say "MariaDB already running on 127.0.0.1:$(cat "$DB_DIR/port")"
        return
    fi
    stop_process "$DB_DIR/mariadbd.pid" "$DB_DIR/data" "a stale MariaDB"
    rm -rf "$DB_DIR"
    # A private tmpdir: a starting mariadbd deletes every '#sql*' file of its tmpdir, so in a
    # shared /tmp a server starting elsewhere (a test's, the system's) may delete the temporary
    # tables mariadb-install-db is working with, and the install fails now and then.
    mkdir -p "$DB_DIR/tmp"
    local user=() port i
    [ "$(id -u)" = 0 ] && user=(--user=root)
    say "creating a MariaDB data directory in $DB_DIR"
    "$INSTALL_DB" --no-defaults --datadir="$DB_DIR/data" --tmpdir="$DB_DIR/tmp" \
        --auth-root-authentication-method=normal \
        --skip-test-db "${user[@]}" >"$DB_DIR/install.log" 2>&1 ||
        { cat "$DB_DIR/install.log" >&2; die "mariadb-install-db failed"; }
    port=$(free_port)
    "$MARIADBD" --no-defaults --datadir="$DB_DIR/data" --tmpdir="$DB_DIR/tmp" --socket="$DB_DIR/mariadbd.sock" \
        --pid-file="$DB_DIR/mariadbd.server.pid" --port="$port" --bind-address=127.0.0.1 \
        --log-bin="$DB_DIR/data/binlog" --binlog-format=ROW --binlog-row-metadata=FULL \
        --server-id=1 --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --default-time-zone=+00:00 --skip-name-resolve --innodb-flush-log-at-trx-commit=2 \
        --innodb-buffer-pool-size=256M "${user[@]}" \
        </dev/null >"$DB_DIR/mariadbd.log" 2>&1 &
    echo $! >"$DB_DIR/mariadbd.pid"
    echo "$port" >"$DB_DIR/port"
    for i in $(seq 1 150); do
        if sql -e 'SELECT 1' >/dev/null 2>&1; then
            say "MariaDB $(sql -N -e 'SELECT VERSION()') on 127.0.0.1:$port (pid $(cat "$DB_DIR/mariadbd.pid"))"
            return
        fi
        alive "$DB_DIR/mariadbd.pid" "$DB_DIR/data" || break
        sleep 0.2
    done
    tail -n 30 "$DB_DIR/mariadbd.log" >&2
    die "MariaDB did not start (log: $DB_DIR/mariadbd.log)"
}

start_engine() {
    # Starts the node, or says it already runs; prints its URL.
    ES_URL=$(SEARCH_ENGINE_DIR=$OS_DIR bash scripts/search-engine.sh start "$ENGINE") ||
        die "$ENGINE did not start (log: $OS_DIR/node.log)"
}

STARTED=1
start_mariadb
start_engine
MYSQL_PORT=$(cat "$DB_DIR/port")

# Small HTTP calls without curl: prints the JSON answer.
http() {
    "$PY" - "$@" <<'PY'
import json, sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=60) as r:
        print(r.read().decode())
except urllib.error.HTTPError as e:
    if not (method == "DELETE" and e.code == 404):
        sys.exit(f"{method} {url}: HTTP {e.code}: {e.read().decode()[:500]}")
PY
}

# --- the --documents demo -------------------------------------------------------------------
documents_demo() {
    http DELETE "$ES_URL/shop-orders-docs" >/dev/null
    JOB=$QS_DIR/shop-documents.toml
    cat >"$JOB" <<EOF
# Written by scripts/quickstart.sh --documents: every order as one document with its
# customer, its lines (nested), each line's product and the product's tags.
name = "quickstart-documents"

[source]
type = "mysql"
url = "mysql://root@127.0.0.1:$MYSQL_PORT/shop"
mode = "full"              # "snapshot+cdc" keeps the documents exact as the shop changes

[[source.documents]]
name = "orders"
table = "orders"

[[source.documents.relations]]
field = "customer"
table = "customers"
kind = "many_to_one"
foreign_key = ["customer_id"]
columns = ["id", "name", "country", "city"]

[[source.documents.relations]]
field = "items"
table = "order_items"
kind = "one_to_many"
foreign_key = ["order_id"]
columns = ["line_no", "quantity", "unit_price", "discount"]
nested = true

[[source.documents.relations]]
field = "product"
parent = "items"
table = "products"
kind = "many_to_one"
foreign_key = ["product_id"]
columns = ["id", "sku", "name", "category", "price"]

[[source.documents.relations]]
field = "tags"
parent = "product"
table = "tags"
kind = "many_to_many"
through = { table = "product_tags", foreign_key = ["product_id"], target_key = ["tag_id"] }
scalar = "name"

[target]
type = "elasticsearch"
url = "$ES_URL"
index = "shop-{table}-docs"

[settings]
batch_size = 1000
read_parallelism = 2
progress_interval = 2000

[checkpoints]
dir = "checkpoints"
EOF
    say "running: datatrace run $JOB --restart"
    echo
    "$DATATRACE" run "$JOB" --restart || die "datatrace run failed (exit $?)"
    echo
    http POST "$ES_URL/shop-orders-docs/_refresh" >/dev/null
    local rows docs want got
    rows=$(sql -N -e "SELECT COUNT(*) FROM shop.orders")
    docs=$(http GET "$ES_URL/shop-orders-docs/_count" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["count"])')
    printf '%-10s %12s %12s\n' "document" "MySQL roots" "ES docs"
    printf '%-10s %12s %12s\n' "orders" "$rows" "$docs"
    [ "$rows" = "$docs" ] || die "document count differs from the number of orders"
    echo
    echo "order 7 as one document (GET shop-orders-docs/_doc/7):"
    http GET "$ES_URL/shop-orders-docs/_doc/7" | "$PY" scripts/quickstart/show_source.py
    echo
    # Orders with a line of an organic product ordered 3 or more times: a nested query
    # (both conditions on the same line), against SQL.
    want=$(sql -N -e "SELECT COUNT(DISTINCT i.order_id) FROM shop.order_items i JOIN shop.product_tags pt ON pt.product_id = i.product_id JOIN shop.tags t ON t.id = pt.tag_id WHERE t.name = 'organic' AND i.quantity >= 3")
    got=$(http POST "$ES_URL/shop-orders-docs/_count" '{"query": {"nested": {"path": "items", "query": {"bool": {"must": [{"term": {"items.product.tags.keyword": "organic"}}, {"range": {"items.quantity": {"gte": 3}}}]}}}}}' |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["count"])')
    echo "orders with a line of an organic product, quantity >= 3: SQL $want, nested query $got"
    [ "$want" = "$got" ] || die "the nested query disagrees with SQL"
    echo
    "$DATATRACE" check "$JOB" --recheck-delay 0.5 || die "datatrace check found differences"
    cat <<EOF

The servers keep running (scripts/quickstart.sh stop ends them). Keep the documents exact
while the shop changes: set mode = "snapshot+cdc" in $JOB and run it again, or:
  eval "\$(scripts/quickstart.sh env)"
  STREAM_SECONDS=60 cargo run --example denormalized
EOF
}

# --- 4. the sample shop -----------------------------------------------------------------------
CUSTOMERS=$((SCALE / 3))
PRODUCTS=$((SCALE / 15 > 20 ? SCALE / 15 : 20))
say "loading the shop: $CUSTOMERS customers, $PRODUCTS products, $SCALE orders with 1-3 lines each"
sed -e "s/{{CUSTOMERS}}/$CUSTOMERS/g" -e "s/{{PRODUCTS}}/$PRODUCTS/g" -e "s/{{ORDERS}}/$SCALE/g" \
    scripts/quickstart/shop.sql | sql >/dev/null
declare -A ROWS
total=0
for t in "${TABLES[@]}"; do
    ROWS[$t]=$(sql -N -e "SELECT COUNT(*) FROM shop.$t")
    total=$((total + ROWS[$t]))
done
say "loaded $total rows"
if [ -n "$DOCUMENTS" ]; then
    sql <scripts/quickstart/tags.sql >/dev/null
    say "loaded tags: $(sql -N -e 'SELECT COUNT(*) FROM shop.product_tags') product tags"
    documents_demo
    exit 0
fi

# --- 5. the job -------------------------------------------------------------------------------
for t in "${TABLES[@]}"; do
    http DELETE "$ES_URL/shop-$t" >/dev/null # a fresh copy each time
done
JOB=$QS_DIR/shop-to-es.toml
cat >"$JOB" <<EOF
# Written by scripts/quickstart.sh: the shop's tables into one index each.
name = "quickstart"
description = "the sample shop, MySQL -> Elasticsearch"

[source]
type = "mysql"
url = "mysql://root@127.0.0.1:$MYSQL_PORT/shop"
tables = ["shop.*"]

[target]
type = "elasticsearch"
url = "$ES_URL"
index = "shop-{table}"

[settings]
concurrency = 2          # tables copied at the same time
batch_size = 1000
progress_interval = 1000 # ms: rates averaged over 1 s

[checkpoints]
dir = "checkpoints"
EOF
say "running: datatrace run $JOB --restart"
echo
"$DATATRACE" run "$JOB" --restart || die "datatrace run failed (exit $?)"
echo

# --- 6. did everything arrive? ------------------------------------------------------------------
http POST "$ES_URL/shop-*/_refresh" >/dev/null
mismatch=0
printf '%-14s %12s %12s\n' "table" "MySQL rows" "ES docs"
for t in "${TABLES[@]}"; do
    docs=$(http GET "$ES_URL/shop-$t/_count" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["count"])')
    mark="ok"
    if [ "$docs" != "${ROWS[$t]}" ]; then
        mark="MISMATCH"
        mismatch=1
    fi
    printf '%-14s %12s %12s  %s\n' "$t" "${ROWS[$t]}" "$docs" "$mark"
done
echo

SAMPLE=$(((PRODUCTS + 1) / 2))
echo "products row $SAMPLE in MySQL:"
sql -e "SELECT * FROM shop.products WHERE id = $SAMPLE\G" | tail -n +2
echo
echo "the same product in Elasticsearch (GET shop-products/_doc/$SAMPLE):"
http GET "$ES_URL/shop-products/_doc/$SAMPLE" | "$PY" scripts/quickstart/show_source.py
echo

[ "$mismatch" = 0 ] || die "document counts differ from row counts"
cat <<EOF
The servers keep running:
  MariaDB        127.0.0.1:$MYSQL_PORT (user root, no password), database shop
                 $CLIENT --no-defaults -h 127.0.0.1 -P $MYSQL_PORT -uroot shop
  $ENGINE     $ES_URL   (indices shop-customers, shop-products, shop-orders, shop-order_items)
  job file       $JOB

Try the examples against them:
  eval "\$(scripts/quickstart.sh env)"
  cargo run --example mysql_to_mysql     # shop -> shop_copy
  cargo run --example es_to_es           # shop-products -> shop-products-copy

Stop both servers and delete their data:
  scripts/quickstart.sh stop
EOF
