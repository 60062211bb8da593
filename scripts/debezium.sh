#!/usr/bin/env bash
# Kafka Connect (standalone) with Debezium's MySQL connector, from Maven Central artifacts, on
# this machine's Java 17: the other side of DataTrace's Debezium interop test.
#
#   scripts/debezium.sh install     fetch the jars into ~/.m2 and cache their class path (once)
#   scripts/debezium.sh run DIR     run a standalone worker in the foreground (the testkit's use):
#                                   DIR/worker.properties and DIR/connector.properties
#
# The class path is cached under ${DATATRACE_CACHE:-~/.cache/datatrace}/brokers/, keyed by a
# hash of datatrace-testkit/brokers/debezium/pom.xml, so a second install does nothing.
# Heap: DATATRACE_CONNECT_HEAP (384m); the JIT stops at C1 (it starts faster, and the test
# moves little data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/datatrace-testkit/brokers/debezium"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cache_dir() {
    local key
    key="$(cat "$SRC/pom.xml" | sha256sum | cut -c1-12)"
    echo "${DATATRACE_CACHE:-$HOME/.cache/datatrace}/brokers/debezium-$key"
}

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        echo "$JAVA_HOME/bin/java"
    elif command -v java >/dev/null; then
        command -v java
    else
        die "java not found: install a JDK 17 (apt-get install openjdk-17-jdk-headless), or run scripts/setup.sh"
    fi
}

install() {
    local cache tmp
    cache="$(cache_dir)"
    if [ -f "$cache/classpath.txt" ]; then
        local missing=""
        IFS=: read -r -a jars <"$cache/classpath.txt" || true
        for jar in "${jars[@]}"; do [ -f "$jar" ] || missing=1; done
        [ -z "$missing" ] && return 0
        say "some Kafka Connect / Debezium jars are gone from the Maven repository: fetching again"
    fi
    command -v mvn >/dev/null || die "mvn not found: run scripts/setup.sh (it installs Maven and a JDK)"
    say "fetching Kafka Connect and Debezium's MySQL connector from Maven Central (once)"
    mkdir -p "$(dirname "$cache")"
    tmp="$(mktemp -d "$(dirname "$cache")/.install-XXXXXX")"
    if ! mvn -B -q -f "$SRC/pom.xml" dependency:build-classpath \
        -Dmdep.outputFile="$tmp/classpath.txt" -Dmdep.includeScope=runtime >"$tmp/mvn.log" 2>&1; then
        cat "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        die "Maven could not fetch the Kafka Connect / Debezium jars (see above)"
    fi
    if ! mv -T "$tmp" "$cache" 2>/dev/null; then
        rm -rf "$tmp"
    fi
    say "Kafka Connect and Debezium ready in $cache"
}

# Runs a standalone worker in the foreground (exec: the caller's pid becomes the JVM's).
run() {
    local dir=$1 cache
    [ -f "$dir/worker.properties" ] || die "$dir/worker.properties is missing"
    [ -f "$dir/connector.properties" ] || die "$dir/connector.properties is missing"
    install
    cache="$(cache_dir)"
    exec "$(java_bin)" -Xms64m -Xmx"${DATATRACE_CONNECT_HEAP:-384m}" -XX:+UseSerialGC \
        -XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Duser.timezone=UTC \
        -Dlog4j2.configurationFile="$SRC/log4j2.properties" -Dlog4j.shutdownHookEnabled=false \
        -cp "$(cat "$cache/classpath.txt")" org.apache.kafka.connect.cli.ConnectStandalone \
        "$dir/worker.properties" "$dir/connector.properties"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    install) install ;;
    run) [ $# -eq 1 ] || die "usage: $0 run DIR"; run "$1" ;;
    *) die "usage: $0 install|run DIR" ;;
esac
