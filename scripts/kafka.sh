#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, single node) from Maven Central artifacts, on this
# machine's Java 17.
#
#   scripts/kafka.sh start      start a standalone broker, print its bootstrap address
#   scripts/kafka.sh stop       stop it and delete its data
#   scripts/kafka.sh status     print its address, or say it is not running (exit 1)
#   scripts/kafka.sh install    fetch the jars and compile the launcher (once)
#   scripts/kafka.sh run-node HOME [setting=value ...]
#                               run a broker in the foreground (the testkit's use)
#
# Jars come from Maven Central into Maven's local repository (~/.m2); the class path and the
# compiled launcher are cached under ${DATATRACE_CACHE:-~/.cache/datatrace}/brokers/, keyed by a
# hash of datatrace-testkit/brokers/kafka/{pom.xml,Launcher.java}, so a second install does
# nothing. The standalone broker keeps its data under .datatrace/kafka/ and listens on
# 127.0.0.1 (KAFKA_PORT, default a free port). Heap: DATATRACE_KAFKA_HEAP (512m);
# DATATRACE_KAFKA_JIT=c1 starts faster (the testkit's choice).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/datatrace-testkit/brokers/kafka"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cache_dir() {
    local key
    key="$(cat "$SRC/pom.xml" "$SRC/Launcher.java" | sha256sum | cut -c1-12)"
    echo "${DATATRACE_CACHE:-$HOME/.cache/datatrace}/brokers/kafka-$key"
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
    if [ -f "$cache/classpath.txt" ] && [ -f "$cache/classes/Launcher.class" ]; then
        local missing=""
        IFS=: read -r -a jars <"$cache/classpath.txt" || true
        for jar in "${jars[@]}"; do [ -f "$jar" ] || missing=1; done
        [ -z "$missing" ] && return 0
        say "some Kafka jars are gone from the Maven repository: fetching again"
    fi
    command -v mvn >/dev/null || die "mvn not found: run scripts/setup.sh (it installs Maven and a JDK)"
    command -v javac >/dev/null || die "javac not found: run scripts/setup.sh (it installs a JDK 17)"
    say "fetching the Kafka broker jars from Maven Central (once) and compiling its launcher"
    mkdir -p "$(dirname "$cache")"
    tmp="$(mktemp -d "$(dirname "$cache")/.install-XXXXXX")"
    if ! mvn -B -q -f "$SRC/pom.xml" dependency:build-classpath \
        -Dmdep.outputFile="$tmp/classpath.txt" -Dmdep.includeScope=runtime >"$tmp/mvn.log" 2>&1; then
        cat "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        die "Maven could not fetch the Kafka jars (see above)"
    fi
    mkdir -p "$tmp/classes"
    javac -nowarn -encoding UTF-8 -cp "$(cat "$tmp/classpath.txt")" -d "$tmp/classes" "$SRC/Launcher.java"
    if ! mv -T "$tmp" "$cache" 2>/dev/null; then
        rm -rf "$tmp"
    fi
    say "Kafka ready in $cache"
}

# Runs a broker in the foreground (exec: the caller's pid becomes the JVM's).
run_node() {
    local home=$1 cache
    shift
    install
    cache="$(cache_dir)"
    local heap=${DATATRACE_KAFKA_HEAP:-512m} jit=()
    [ "${DATATRACE_KAFKA_JIT:-}" = c1 ] && jit=(-XX:TieredStopAtLevel=1)
    exec "$(java_bin)" -Xms128m -Xmx"$heap" -XX:+UseSerialGC "${jit[@]}" \
        -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
        -Dlog4j2.configurationFile="$SRC/log4j2.properties" -Dlog4j.shutdownHookEnabled=false \
        -cp "$cache/classes:$(cat "$cache/classpath.txt")" Launcher "$home" "$@"
}

standalone_dir() { echo "$ROOT/.datatrace/kafka"; }

addr_of() {
    local dir=$1 port
    [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null || return 1
    [ -f "$dir/home/ready.json" ] || return 1
    port="$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$dir/home/ready.json")"
    echo "127.0.0.1:$port"
}

start() {
    local dir addr i
    dir="$(standalone_dir)"
    if addr="$(addr_of "$dir")"; then
        echo "$addr"
        return 0
    fi
    install
    rm -rf "$dir"
    mkdir -p "$dir/home"
    say "starting Kafka (heap ${DATATRACE_KAFKA_HEAP:-512m}, data in $dir)"
    local settings=()
    [ -n "${KAFKA_PORT:-}" ] && settings+=("port=$KAFKA_PORT")
    setsid "$0" run-node "$dir/home" "${settings[@]}" >"$dir/broker.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for i in $(seq 1 300); do
        if addr="$(addr_of "$dir")"; then
            say "Kafka is up after ${i}x0.5 s"
            echo "$addr"
            return 0
        fi
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
        sleep 0.5
    done
    tail -40 "$dir/broker.log" >&2
    stop
    die "Kafka did not start (its log is above)"
}

stop() {
    local dir pid i
    dir="$(standalone_dir)"
    if [ -f "$dir/pid" ]; then
        pid="$(cat "$dir/pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    say "Kafka stopped"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    install) install ;;
    run-node) [ $# -ge 1 ] || die "usage: $0 run-node HOME [setting=value ...]"; run_node "$@" ;;
    start) start ;;
    stop) stop ;;
    status) addr_of "$(standalone_dir)" || { say "Kafka is not running"; exit 1; } ;;
    *) die "usage: $0 start|stop|status|install|run-node HOME" ;;
esac
