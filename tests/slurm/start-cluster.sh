#!/usr/bin/env bash
# Bring up a real single-node SLURM (munged, slurmctld, slurmd) under one folder, without systemd.
#
#   tests/slurm/start-cluster.sh DIR
#
# Everything (keys, state, logs, pid files, fake GPU devices, config) lives in DIR; nothing under
# /etc is written. Afterwards `source DIR/env.sh` puts wrapper commands (sbatch, srun, squeue, ...)
# first on PATH: they set SLURM_CONF before running the real binary, because the executor plugin
# strips every SLURM_* variable before the srun inside each job (SLURM-NOTES pitfall 1).
# Stop everything with tests/slurm/stop-cluster.sh DIR (by the PIDs in DIR/run).
set -euo pipefail

DIR=${1:?usage: start-cluster.sh DIR}
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
for i in 0 1; do
    [ -e "$DIR/dev/gpu$i" ] || mknod "$DIR/dev/gpu$i" c 1 3
done

# The node as slurmd sees it, with RealMemory a little below the detected value (else the node drains).
read -r CPUS SOCKETS CORES THREADS MEMORY < <(slurmd -C | awk '
    /^NodeName=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { print v["CPUs"], v["SocketsPerBoard"], v["CoresPerSocket"], v["ThreadsPerCore"], int(v["RealMemory"] * 0.9) }')

cat > "$DIR/slurm.conf" <<CONF
ClusterName=batchscience
SlurmctldHost=$HOST(127.0.0.1)
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
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS Boards=1 SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEMORY Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$DIR/gres.conf" <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=$DIR/dev/gpu[0-1]
CONF

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

slurmd -f "$DIR/slurm.conf"
for _ in $(seq 150); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
    case "$state" in
        idle) break ;;
        drain*|down*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
done
state=$(sinfo -h -n "$HOST" -o %T)
[ "$state" = idle ] || { echo "start-cluster.sh: node $HOST is '$state', not idle; see $DIR/log/slurmd.log" >&2; exit 1; }
echo "start-cluster.sh: SLURM up in $DIR (node $HOST, $CPUS CPUs, ${MEMORY} MB, gres gpu:2)" >&2
