#!/usr/bin/env bash
# Peer benchmark: DataTrace beside the tools people use today, on the same generated data, in
# the same session, interleaved (round robin), so the machine's noise falls on all of them.
#
#   bash scripts/bench-peers.sh            # MySQL -> MySQL 1,000,000 rows; ES 200,000; 3 rounds
#   BENCH_ROWS=3000000 BENCH_ROUNDS=5 bash scripts/bench-peers.sh
#   BENCH_PARTS=es bash scripts/bench-peers.sh       # only part 2 (mysql, es, lag: a comma list)
#
# Installs what is missing: MariaDB and mydumper from apt; opensearch-py and pymysql from PyPI
# into a private virtualenv (.datatrace/peers/venv) and elasticdump from npm into a private
# prefix (.datatrace/peers/npm), pinned; the OpenSearch node is the testkit's (Maven Central
# jars, see scripts/search-engine.sh). Then prints the date, the machine and:
# 1. MySQL -> MySQL (cargo bench -p datatrace-mysql --bench copy): DataTrace with default
#    settings (LOAD DATA LOCAL INFILE bulk path), DataTrace's INSERT path, `mariadb-dump |
#    mariadb`, mydumper + myloader and the target server's own LOAD DATA INFILE (the target is
#    a second MariaDB): median rows/s, client and target and source server (mariadbd) CPU
#    seconds per million rows, DataTrace's peak RSS, ratios.
# 2. Elasticsearch (cargo bench -p datatrace --bench peers), against a real OpenSearch
#    node, DataTrace with default settings beside: MySQL -> ES the engine's own raw
#    `_bulk` ceiling and Python pymysql + helpers.bulk / parallel_bulk; ES -> ES elasticdump,
#    opensearch-py helpers.reindex and the engine's `_reindex`; ES -> MySQL a Python scroll +
#    executemany script: median rows/s, client / engine / MariaDB CPU seconds per million rows,
#    client peak RSS, DataTrace's rate over each (`BENCH_ES_ROWS`, default 200000).
# 3. CDC lag at a steady 2,000 rows/s into MySQL with the pipeline's default settings and tuned
#    (cargo bench -p datatrace-mysql --bench binlog, BENCH_LAG_ONLY=1): p50 / p99 / max.
# The README's performance tables are copied from this output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/setup.sh
source scripts/setup.sh
have mydumper || apt_install mydumper

OPENSEARCH_PY_VERSION="3.2.0"
PYMYSQL_VERSION="1.2.4"
ELASTICDUMP_VERSION="6.125.1"
PEERS="$PWD/.datatrace/peers"
mkdir -p "$PEERS"
if ! "$PEERS/venv/bin/python" -c "import sys, opensearchpy, pymysql; \
        sys.exit(opensearchpy.__versionstr__ != '$OPENSEARCH_PY_VERSION')" 2>/dev/null; then
    say "installing opensearch-py $OPENSEARCH_PY_VERSION and pymysql $PYMYSQL_VERSION into $PEERS/venv"
    run python3 -m venv "$PEERS/venv"
    run "$PEERS/venv/bin/pip" install --disable-pip-version-check --no-input --quiet \
        "opensearch-py==$OPENSEARCH_PY_VERSION" "pymysql==$PYMYSQL_VERSION"
fi
if [ "$("$PEERS/npm/node_modules/.bin/elasticdump" --version 2>/dev/null)" != "$ELASTICDUMP_VERSION" ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    say "installing elasticdump $ELASTICDUMP_VERSION into $PEERS/npm"
    run npm install --prefix "$PEERS/npm" --no-audit --no-fund --silent "elasticdump@$ELASTICDUMP_VERSION"
fi
export PEERS_PYTHON="$PEERS/venv/bin/python"
export PEERS_ELASTICDUMP="$PEERS/npm/node_modules/.bin/elasticdump"
bash scripts/search-engine.sh install opensearch >/dev/null

say "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
    "$(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "versions: $(mariadbd --version 2>/dev/null || /usr/sbin/mariadbd --version), $(mydumper --version 2>&1 | head -1)," \
    "opensearch-py $OPENSEARCH_PY_VERSION, pymysql $PYMYSQL_VERSION, elasticdump $ELASTICDUMP_VERSION, node $(node --version)"

PARTS="${BENCH_PARTS:-mysql,es,lag}"
export BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
if [[ ",$PARTS," == *,mysql,* ]]; then
    BENCH_ROWS="${BENCH_ROWS:-1000000}" run cargo bench -p datatrace-mysql --bench copy
fi
if [[ ",$PARTS," == *,es,* ]]; then
    BENCH_ROWS="${BENCH_ES_ROWS:-200000}" run cargo bench -p datatrace --bench peers
fi
if [[ ",$PARTS," == *,lag,* ]]; then
    BENCH_LAG_ONLY=1 BENCH_SECS="${BENCH_SECS:-20}" run cargo bench -p datatrace-mysql --bench binlog
fi
say "peer benchmark done"
