#!/usr/bin/env bash
# Stop the cluster that start-cluster.sh started in DIR: cancel jobs left, then every slurmd, slurmctld
# and munged, each by the PID in its pid file, then delete its network namespaces and bridge; exit
# non-zero if any of them is still alive.
set -uo pipefail

DIR=${1:?usage: stop-cluster.sh DIR}
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd)
if [ -x "$DIR/bin/scancel" ] && [ -f "$DIR/run/slurmctld.pid" ]; then
    "$DIR/bin/scancel" --full --quiet --user="$(id -un)" 2>/dev/null || true
    # Let slurmd reap the cancelled jobs' slurmstepd before it goes.
    for _ in $(seq 150); do
        [ -z "$("$DIR/bin/squeue" -h -t running,completing -o %i 2>/dev/null)" ] && break
        sleep 0.2
    done
fi

stop() {  # stop NAME: SIGTERM the PID in run/NAME.pid, SIGKILL if it is still there after ~20 s
    local name=$1 pidfile="$DIR/run/$1.pid" pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop-cluster.sh: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
            sleep 0.5
        fi
    fi
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop-cluster.sh: $name ($pid) is still running" >&2
        return 1
    fi
    rm -f "$pidfile"
}

status=0
for pidfile in "$DIR"/run/slurmd-*.pid; do
    [ -e "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    stop "$name" || status=1
done
stop slurmctld || status=1
stop munged || status=1
if [ -f "$DIR/run/netns" ]; then
    while read -r namespace; do ip netns del "$namespace" || status=1; done < "$DIR/run/netns"
    rm -f "$DIR/run/netns"
fi
if [ -f "$DIR/run/bridge" ]; then
    ip link del "$(cat "$DIR/run/bridge")" || status=1
    rm -f "$DIR/run/bridge"
fi
exit $status
