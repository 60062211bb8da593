#!/usr/bin/env bash
# Runs the randomized differential test (datatrace-fidelity) over N more seeds: each seed
# generates a table (a key shape, columns at the edges of their types), rows and a change
# stream, and runs MySQL -> MySQL, MySQL -> Elasticsearch, Elasticsearch -> MySQL and
# Elasticsearch -> Elasticsearch as snapshot, CDC and snapshot+cdc against real servers
# (private MariaDB and OpenSearch started by the testkit), comparing every row after each.
# A failing seed prints a one-line reproducer (FIDELITY_SEED=S cargo test ...).
#
# Usage: scripts/fuzz-fidelity.sh N           N seeds from a random start
#        scripts/fuzz-fidelity.sh N FIRST     seeds FIRST .. FIRST+N-1
#        scripts/fuzz-fidelity.sh --seed S    seed S alone
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
    echo "usage: scripts/fuzz-fidelity.sh N [FIRST] | --seed S" >&2
    exit 2
}
[ $# -ge 1 ] || usage
if [ "$1" = "--seed" ]; then
    [ $# -eq 2 ] || usage
    export FIDELITY_SEED="$2"
else
    case "$1" in '' | *[!0-9]*) usage ;; esac
    export FIDELITY_SEEDS="$1"
    if [ $# -ge 2 ]; then
        case "$2" in '' | *[!0-9]*) usage ;; esac
        export FIDELITY_FIRST="$2"
    fi
fi
# Installs MariaDB and the search engine's jars when they are missing.
# shellcheck source=scripts/setup.sh
source scripts/setup.sh >/dev/null
exec cargo test -p datatrace-fidelity --test fidelity fidelity_differential -- --nocapture
