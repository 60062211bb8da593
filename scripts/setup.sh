#!/usr/bin/env bash
# Installs what DataTrace's tests need and is missing, and nothing else:
#   - MariaDB server and client (Debian's mariadb-server / mariadb-client, via apt-get);
#     the tests start their own private mariadbd, they never use a system one;
#   - osmem-server (an in-memory OpenSearch-compatible server from PyPI) in ./.venv;
#   - a JDK 17 and Maven (Debian's openjdk-17-jdk-headless / maven), then the jars of OpenSearch
#     2.19 (and Elasticsearch 7.17) from Maven Central into ~/.m2, with the testkit's launcher
#     compiled once into ~/.cache/datatrace/engines/ (scripts/search-engine.sh install);
#   - the jars of a single-node Apache Kafka broker from Maven Central into ~/.m2
#     (scripts/kafka.sh install), and of Kafka Connect with Debezium's MySQL connector for the
#     Debezium interop test (scripts/debezium.sh install);
#   - rustfmt and clippy, if rustup is there and they are not.
# Idempotent: a second run installs nothing. Exports OSMEM_SERVER_BIN when sourced
# (scripts/test.sh sources it); the testkit also finds ./.venv on its own.
#
# Usage: bash scripts/setup.sh     (or: source scripts/setup.sh)
set -euo pipefail

OSMEM_VERSION="0.1.6"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*"; }
run() {
    printf '+ %s\n' "$*"
    "$@"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then
        run "$@"
    elif command -v sudo >/dev/null; then
        run sudo "$@"
    else
        echo "error: need root to run '$*' and sudo is not installed" >&2
        return 1
    fi
}

APT_UPDATED=""
apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "error: $* missing and apt-get not available; install them by hand" >&2
        return 1
    fi
    if [ -z "$APT_UPDATED" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]; }

# --- MariaDB -----------------------------------------------------------------
if [ -n "${MARIADBD_BIN:-}" ] || { have mariadbd && have mariadb-install-db; }; then
    say "MariaDB server found"
else
    say "MariaDB server missing: installing mariadb-server and mariadb-client"
    apt_install mariadb-server mariadb-client
fi
if ! have mariadb; then
    say "MariaDB client missing: installing mariadb-client"
    apt_install mariadb-client
fi

# --- osmem-server in ./.venv --------------------------------------------------
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "Python 3 with venv missing: installing python3-venv"
    apt_install python3 python3-venv
fi
if [ ! -x .venv/bin/python ]; then
    say "creating the Python venv ./.venv"
    run python3 -m venv .venv
fi
if .venv/bin/python -c "import sys, osmem_server; sys.exit(osmem_server.__version__ != '$OSMEM_VERSION')" 2>/dev/null; then
    say "osmem-server $OSMEM_VERSION found in ./.venv"
else
    say "installing osmem-server $OSMEM_VERSION into ./.venv"
    run .venv/bin/pip install --disable-pip-version-check --no-input --quiet "osmem-server==$OSMEM_VERSION"
fi
if [ -z "${OSMEM_SERVER_BIN:-}" ]; then
    OSMEM_SERVER_BIN="$(.venv/bin/python -c 'import osmem_server; print(osmem_server.resolve_binary())')"
fi
export OSMEM_SERVER_BIN
say "osmem-server: $OSMEM_SERVER_BIN ($("$OSMEM_SERVER_BIN" -version))"

# --- Java, Maven and the search engines' jars -------------------------------------
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
    say "JDK missing: installing openjdk-17-jdk-headless"
    apt_install openjdk-17-jdk-headless
fi
if ! command -v mvn >/dev/null; then
    say "Maven missing: installing maven"
    apt_install maven
fi
for flavor in ${DATATRACE_SETUP_ENGINES:-opensearch}; do
    run bash scripts/search-engine.sh install "$flavor"
    say "$flavor: jars and launcher cached"
done
run bash scripts/kafka.sh install
say "kafka: jars and launcher cached"
run bash scripts/debezium.sh install
say "debezium: Kafka Connect and Debezium's MySQL connector jars cached"

# --- Rust ----------------------------------------------------------------------
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    sub=${component/rustfmt/fmt}
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        say "cargo $sub missing: adding the $component component"
        run rustup component add "$component"
    fi
done
say "setup done"
