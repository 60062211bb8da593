# The keeper of a shared test server (run by `sh -c`, detached in its own process group).
# $1 lease directory, $2 server home (holds server.log and server.pid; deleted at the end), $3 grace seconds, $4 the variable
# that tells the server the keeper's pid, $5... the server command.
#
# It starts the server as its child, then once a second drops the leases (files leases/PID
# holding the process's start time) whose process is gone. When no lease has been alive for
# $3 seconds, it takes the lease directory's lock, checks once more, removes server.json, kills
# the server and deletes its home. If the server dies first, it cleans up the same way. The
# server also exits by itself when this keeper is gone, so a SIGKILLed keeper leaves nothing.
dir=$1
home=$2
grace=$3
keeper_var=$4
shift 4
trap '' INT HUP TERM
env "$keeper_var=$$" "$@" >"$home/server.log" 2>&1 </dev/null &
server=$!
echo "$server" >"$home/server.pid"

started() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
alive_leases() {
  n=0
  for f in "$dir"/leases/*; do
    [ -e "$f" ] || continue
    pid=${f##*/}
    if [ -n "$(started "$pid")" ] && [ "$(started "$pid")" = "$(cat "$f" 2>/dev/null)" ]; then
      n=$((n + 1))
    else
      rm -f "$f"
    fi
  done
  echo "$n"
}
stop_server() {
  kill -KILL "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  rm -rf "$home"
}

idle=0
while :; do
  sleep 1
  if ! kill -0 "$server" 2>/dev/null; then
    # Keep the log a while for the process waiting on the start; it reads it on failure.
    (
      flock 9
      grep -qs "\"keeper\":$$," "$dir/server.json" && rm -f "$dir/server.json"
    ) 9>"$dir/lock"
    sleep 5
    stop_server
    exit 0
  fi
  if [ "$(alive_leases)" -gt 0 ]; then
    idle=0
    continue
  fi
  idle=$((idle + 1))
  [ "$idle" -ge "$grace" ] || continue
  exec 9>"$dir/lock"
  flock 9
  if [ "$(alive_leases)" -gt 0 ]; then
    exec 9>&-
    idle=0
    continue
  fi
  grep -qs "\"keeper\":$$," "$dir/server.json" && rm -f "$dir/server.json"
  stop_server
  exit 0
done
