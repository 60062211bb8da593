#!/usr/bin/env bash
# A real OpenSearch (or Elasticsearch) node from Maven Central artifacts, on this machine's Java.
#
#   scripts/search-engine.sh start [FLAVOR]     start a standalone node, print its URL
#   scripts/search-engine.sh stop [FLAVOR]      stop it and delete its data
#   scripts/search-engine.sh status [FLAVOR]    print its URL, or say it is not running (exit 1)
#   scripts/search-engine.sh url [FLAVOR]       print its URL only (for scripts)
#   scripts/search-engine.sh install [FLAVOR]   fetch the jars and compile the launcher (once)
#   scripts/search-engine.sh run-node FLAVOR HOME [setting=value ...]
#                                               run a node in the foreground (the testkit's use)
#
# FLAVOR is opensearch (default, OpenSearch 2.19.6) or elasticsearch (Elasticsearch 7.17).
# Jars come from Maven Central into Maven's local repository (~/.m2); the class path and the
# compiled launcher are cached under ${DATATRACE_CACHE:-~/.cache/datatrace}/engines/, keyed by a
# hash of datatrace-testkit/engines/FLAVOR/{pom.xml,Launcher.java}, so a second install does
# nothing. The standalone node keeps its data under .datatrace/search-engine/FLAVOR/ (or
# SEARCH_ENGINE_DIR) and listens
# on 127.0.0.1 (SEARCH_ENGINE_PORT, default a free port). Heap: DATATRACE_ENGINE_HEAP (512m);
# DATATRACE_ENGINE_JIT=c1 starts faster (the testkit's choice) at some indexing speed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

flavor_dir() {
    case "$1" in
        opensearch | elasticsearch) echo "$ROOT/datatrace-testkit/engines/$1" ;;
        *) die "unknown search engine flavor '$1' (opensearch or elasticsearch)" ;;
    esac
}

cache_dir() {
    local src key
    src="$(flavor_dir "$1")"
    key="$(cat "$src/pom.xml" "$src/Launcher.java" | sha256sum | cut -c1-12)"
    echo "${DATATRACE_CACHE:-$HOME/.cache/datatrace}/engines/$1-$key"
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

# Fetches the jars and compiles the launcher into the cache, unless already there.
install() {
    local flavor=$1 src cache tmp
    src="$(flavor_dir "$flavor")"
    cache="$(cache_dir "$flavor")"
    if [ -f "$cache/classpath.txt" ] && [ -f "$cache/classes/Launcher.class" ]; then
        # jars may have been removed from ~/.m2 meanwhile
        local missing=""
        IFS=: read -r -a jars <"$cache/classpath.txt" || true
        for jar in "${jars[@]}"; do [ -f "$jar" ] || missing=1; done
        [ -z "$missing" ] && return 0
        say "some $flavor jars are gone from the Maven repository: fetching again"
    fi
    command -v mvn >/dev/null || die "mvn not found: run scripts/setup.sh (it installs Maven and a JDK)"
    command -v javac >/dev/null || die "javac not found: run scripts/setup.sh (it installs a JDK 17)"
    say "fetching the $flavor jars from Maven Central (once) and compiling its launcher"
    mkdir -p "$(dirname "$cache")"
    tmp="$(mktemp -d "$(dirname "$cache")/.install-XXXXXX")"
    # -B: no colors or progress bars in logs; the dependency plugin resolves everything first.
    if ! mvn -B -q -f "$src/pom.xml" dependency:build-classpath \
        -Dmdep.outputFile="$tmp/classpath.txt" -Dmdep.includeScope=runtime >"$tmp/mvn.log" 2>&1; then
        cat "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        die "Maven could not fetch the $flavor jars (see above)"
    fi
    mkdir -p "$tmp/classes"
    javac -nowarn -encoding UTF-8 -cp "$(cat "$tmp/classpath.txt")" -d "$tmp/classes" "$src/Launcher.java"
    # Another process may have finished the same install meanwhile: either copy is good.
    if ! mv -T "$tmp" "$cache" 2>/dev/null; then
        rm -rf "$tmp"
    fi
    say "$flavor ready in $cache"
}

# Runs a node in the foreground (exec: the caller's pid becomes the JVM's).
run_node() {
    local flavor=$1 home=$2 cache
    shift 2
    install "$flavor"
    cache="$(cache_dir "$flavor")"
    local heap=${DATATRACE_ENGINE_HEAP:-512m} jit=()
    # G1, as the distributions run: with the serial collector, garbage the heap has not yet
    # collected counts as "real usage" for the parent circuit breaker, which then answers
    # bulk requests with 429s at a fraction of the load.
    # The testkit asks for the client compiler only: the node starts in half the time, and
    # tests index little. Benchmarks and users get the full JIT.
    [ "${DATATRACE_ENGINE_JIT:-}" = c1 ] && jit=(-XX:TieredStopAtLevel=1)
    exec "$(java_bin)" -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC "${jit[@]}" \
        -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Dlog4j2.disable.jmx=true \
        -Dlog4j.shutdownHookEnabled=false -Dlog4j2.formatMsgNoLookups=true \
        -cp "$cache/classes:$(cat "$cache/classpath.txt")" Launcher "$home" "$@"
}

standalone_dir() { echo "${SEARCH_ENGINE_DIR:-$ROOT/.datatrace/search-engine/$1}"; }

url_of() {
    local dir=$1 port
    [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null || return 1
    [ -f "$dir/home/ready.json" ] || return 1
    port="$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$dir/home/ready.json")"
    echo "http://127.0.0.1:$port"
}

start() {
    local flavor=$1 dir url i
    dir="$(standalone_dir "$flavor")"
    if url="$(url_of "$dir")"; then
        say "$flavor already running at $url (pid $(cat "$dir/pid"))"
        echo "$url"
        return 0
    fi
    install "$flavor"
    rm -rf "$dir"
    mkdir -p "$dir/home"
    say "starting $flavor (heap ${DATATRACE_ENGINE_HEAP:-512m}, data in $dir)"
    local settings=()
    [ -n "${SEARCH_ENGINE_PORT:-}" ] && settings+=("http.port=$SEARCH_ENGINE_PORT")
    setsid "$0" run-node "$flavor" "$dir/home" "${settings[@]}" >"$dir/node.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for i in $(seq 1 300); do
        if url="$(url_of "$dir")"; then
            say "$flavor $(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$dir/home/ready.json") at $url (pid $(cat "$dir/pid"), up in $((i / 2)) s)"
            echo "$url"
            return 0
        fi
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
        sleep 0.5
    done
    tail -40 "$dir/node.log" >&2
    stop "$flavor"
    die "$flavor did not start (its log is above)"
}

stop() {
    local flavor=$1 dir pid i
    dir="$(standalone_dir "$flavor")"
    if [ -f "$dir/pid" ]; then
        pid="$(cat "$dir/pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    say "$flavor stopped"
}

cmd=${1:-status}
flavor=${2:-opensearch}
case "$cmd" in
    install) install "$flavor" ;;
    start) start "$flavor" ;;
    stop) stop "$flavor" ;;
    url) url_of "$(standalone_dir "$flavor")" ;;
    status)
        if url="$(url_of "$(standalone_dir "$flavor")")"; then
            echo "$flavor running at $url"
        else
            echo "$flavor not running"
            exit 1
        fi
        ;;
    run-node)
        [ $# -ge 3 ] || die "usage: $0 run-node FLAVOR HOME [setting=value ...]"
        shift 2
        run_node "$flavor" "$@"
        ;;
    *) die "usage: $0 start|stop|status|url|install [opensearch|elasticsearch]" ;;
esac
