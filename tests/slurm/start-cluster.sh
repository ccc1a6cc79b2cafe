#!/usr/bin/env bash
# Bring up a real single-node SLURM (munged, slurmctld, slurmd) under one folder, without systemd.
#
#   tests/slurm/start-cluster.sh DIR [--two-nodes]
#
# --two-nodes: also two more nodes, bsnode1 and bsnode2 (partition `multi`, one fake GPU each), each a
# slurmd in its own network namespace joined to this host by a veth pair on the bridge bsbr0
# (10.77.16.0/24, addresses that exist only inside this machine), so srun starts one task per node
# as on a real cluster. Each namespace also has its own mount namespace whose /etc/hosts (a bind
# mount of DIR/hosts) names the nodes; the host's /etc is not touched.
#
# Everything (keys, state, logs, pid files, fake GPU devices, config) lives in DIR; nothing under
# /etc is written. Afterwards `source DIR/env.sh` puts wrapper commands (sbatch, srun, squeue, ...)
# first on PATH: they set SLURM_CONF before running the real binary, because the executor plugin
# strips every SLURM_* variable before the srun inside each job (SLURM-NOTES pitfall 1).
# Stop everything with tests/slurm/stop-cluster.sh DIR (by the PIDs in DIR/run).
set -euo pipefail

DIR=${1:?usage: start-cluster.sh DIR [--two-nodes]}
TWO_NODES=${2:-}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PACKAGES=(slurmctld slurmd slurm-client munge)

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "start-cluster.sh: SLURM is not installed and installing it needs root: apt-get install ${PACKAGES[*]}" >&2
        exit 1
    fi
    echo "start-cluster.sh: installing ${PACKAGES[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
    # SlurmdUser must be root to launch jobs; a user-mode slurmd is not supported.
    echo "start-cluster.sh: must run as root (slurmd launches jobs as root)" >&2
    exit 1
fi

HOST=$(hostname -s)
mkdir -p "$DIR"/{munge,socket,state,spool,log,run,bin,dev}
# munged insists the socket folder (and the folders above it) be searchable by everyone.
chmod 755 "$DIR" "$DIR/socket"
chmod 700 "$DIR/munge"

# munge: a fresh key and a private socket, so an existing munged on the machine is never touched.
mungekey -c -f -k "$DIR/munge/munge.key"
chmod 600 "$DIR/munge/munge.key"
munged --key-file="$DIR/munge/munge.key" --socket="$DIR/socket/munge.socket" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed"

# Two fake GPUs: SLURM drops a GPU GRES without a device file (SLURM-NOTES pitfall 4); /dev/null's
# numbers make harmless character devices. Jobs see CUDA_VISIBLE_DEVICES but TensorFlow finds no GPU.
for device in gpu0 gpu1 bsnode1-gpu0 bsnode2-gpu0; do
    [ -e "$DIR/dev/$device" ] || mknod "$DIR/dev/$device" c 1 3
done

# The namespaced nodes: name, address (the controller is on the bridge's 10.77.16.1).
BRIDGE=bsbr0
NODES=(bsnode1 bsnode2)
declare -A ADDRESS=([bsnode1]=10.77.16.11 [bsnode2]=10.77.16.12)
CONTROLLER_ADDRESS=127.0.0.1
if [ "$TWO_NODES" = --two-nodes ]; then
    CONTROLLER_ADDRESS=10.77.16.1
    # Leftovers of a run that was killed before its stop-cluster.sh.
    for node in "${NODES[@]}"; do ip netns del "$node" 2>/dev/null || true; done
    ip link del "$BRIDGE" 2>/dev/null || true
    ip link add "$BRIDGE" type bridge
    ip addr add "$CONTROLLER_ADDRESS/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    printf '127.0.0.1 localhost\n%s %s\n' "$CONTROLLER_ADDRESS" "$(hostname -s)" > "$DIR/hosts"
    for node in "${NODES[@]}"; do
        ip netns add "$node"
        ip link add "veth-$node" type veth peer name eth0 netns "$node"
        ip link set "veth-$node" master "$BRIDGE" up
        ip -n "$node" addr add "${ADDRESS[$node]}/24" dev eth0
        ip -n "$node" link set eth0 up
        ip -n "$node" link set lo up
        echo "${ADDRESS[$node]} $node" >> "$DIR/hosts"
        echo "$node" >> "$DIR/run/netns"
    done
    echo "$BRIDGE" > "$DIR/run/bridge"
fi

# The node as slurmd sees it, with RealMemory a little below the detected value (else the node drains).
read -r CPUS SOCKETS CORES THREADS MEMORY < <(slurmd -C | awk '
    /^NodeName=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { print v["CPUs"], v["SocketsPerBoard"], v["CoresPerSocket"], v["ThreadsPerCore"], int(v["RealMemory"] * 0.9) }')

cat > "$DIR/slurm.conf" <<CONF
ClusterName=batchscience
SlurmctldHost=$HOST($CONTROLLER_ADDRESS)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/socket/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol this long: the profile's squeue status command needs
# at least 3x slurm-init-seconds-before-status-checks, the test reads them as evidence afterwards.
MinJobAge=600
MailProg=/bin/true
SchedulerType=sched/backfill
# A preempted or cancelled job gets SIGTERM, then SIGKILL this many seconds later.
KillWait=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS Boards=1 SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEMORY Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$DIR/gres.conf" <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=$DIR/dev/gpu[0-1]
CONF
if [ "$TWO_NODES" = --two-nodes ]; then
    for node in "${NODES[@]}"; do
        echo "NodeName=$node NodeAddr=${ADDRESS[$node]} CPUs=$CPUS Boards=1 SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$((MEMORY / 3)) Gres=gpu:1 State=UNKNOWN" >> "$DIR/slurm.conf"
        echo "NodeName=$node Name=gpu File=$DIR/dev/$node-gpu0" >> "$DIR/gres.conf"
    done
    echo "PartitionName=multi Nodes=$(IFS=,; echo "${NODES[*]}") MaxTime=INFINITE State=UP" >> "$DIR/slurm.conf"
fi

for command in sbatch srun salloc squeue sinfo scontrol scancel sacct sstat sprio sshare; do
    real=$(command -v "$command" 2>/dev/null || true)
    [ -n "$real" ] || continue
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$DIR/slurm.conf" "$real" > "$DIR/bin/$command"
    chmod +x "$DIR/bin/$command"
done
printf 'export SLURM_CONF=%s\nexport PATH=%s:$PATH\n' "$DIR/slurm.conf" "$DIR/bin" > "$DIR/env.sh"
export SLURM_CONF=$DIR/slurm.conf
export PATH=$DIR/bin:$PATH

# -c: a clean start, no job state from an earlier cluster in this folder.
slurmctld -c -f "$DIR/slurm.conf"
for _ in $(seq 100); do
    scontrol ping 2>/dev/null | grep -q UP && break
    sleep 0.2
done
scontrol ping | grep -q UP || { echo "start-cluster.sh: slurmctld did not come up, see $DIR/log/slurmctld.log" >&2; exit 1; }

mkdir -p "$DIR/spool/$HOST"
slurmd -f "$DIR/slurm.conf"
started=("$HOST")
if [ "$TWO_NODES" = --two-nodes ]; then
    for node in "${NODES[@]}"; do
        mkdir -p "$DIR/spool/$node"
        # nsenter, not `ip netns exec`: that mounts a fresh /sys without /sys/fs/cgroup, which slurmd
        # needs. Its own mount namespace (private mounts): the bind mount of the hosts file stays in it.
        nsenter --net="/run/netns/$node" unshare --mount --propagation private \
            sh -c 'mount --bind "$1" /etc/hosts && exec slurmd -f "$2" -N "$3"' sh "$DIR/hosts" "$DIR/slurm.conf" "$node"
        started+=("$node")
    done
fi
for node in "${started[@]}"; do
    for _ in $(seq 150); do
        state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
        case "$state" in
            idle) break ;;
            drain*|down*) scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    state=$(sinfo -h -n "$node" -o %T)
    [ "$state" = idle ] || { echo "start-cluster.sh: node $node is '$state', not idle; see $DIR/log/slurmd-$node.log" >&2; exit 1; }
done
echo "start-cluster.sh: SLURM up in $DIR (nodes ${started[*]}, $CPUS CPUs, ${MEMORY} MB, gres gpu:2 on $HOST)" >&2
