#!/usr/bin/env bash
# Start a real single-node SLURM (munged, slurmctld, slurmd) on this machine,
# for tests/workflow/test_slurm.py or to try `--profile workflow/profiles/slurm`.
#
#   sudo tools/slurm/start.sh [STATE_DIR]   # prints STATE_DIR when the node is idle
#   sudo tools/slurm/stop.sh STATE_DIR
#
# The node is this host (real hostname), CPUs and RealMemory as found, and one
# fake GPU (gres gpu:1 on /dev/null) so that GPU jobs can be scheduled without
# one. Config goes to /etc/slurm (the only place every SLURM tool finds it: the
# job step strips SLURM_CONF); state, spool, logs and PID files go to
# STATE_DIR. Needs root and the Debian packages of tools/system-packages.sh.
set -euo pipefail

MARKER="# written by eegfm tools/slurm/start.sh"
CONF_DIR=/etc/slurm
export PATH="$PATH:/usr/sbin:/sbin"  # the daemons live in sbin, often not on a user's PATH

die() { echo "tools/slurm/start.sh: $1" >&2; exit "${2:-1}"; }

missing=()
for cmd in munged munge unmunge slurmctld slurmd sinfo sbatch squeue scontrol; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
    die "SLURM is not installed (missing: ${missing[*]}). Install the Debian packages slurmctld slurmd slurm-client munge with: sudo tools/system-packages.sh" 3
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as the submitting user; munged runs as user munge)" 4
id munge >/dev/null 2>&1 || die "user 'munge' missing: reinstall the munge package (sudo tools/system-packages.sh)" 3
[ -r /etc/munge/munge.key ] || die "/etc/munge/munge.key missing: reinstall the munge package" 3

# A daemon killed earlier may linger as a zombie when nothing reaps it: not running.
running() { for pid in $(pgrep -x "$1"); do grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || echo "$pid"; done; }
previous=$(sed -n "s|^$MARKER (state in \(.*\));.*|\1|p" "$CONF_DIR/slurm.conf" 2>/dev/null || true)
for daemon in slurmctld slurmd; do
    pids=$(running "$daemon" | paste -sd ' ')
    [ -z "$pids" ] || die "a $daemon is already running (PID $pids); stop it first: tools/slurm/stop.sh ${previous:-STATE_DIR}" 5
done
if [ -e "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf"; then
    die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to replace a real cluster's config" 6
fi

STATE=${1:-$(mktemp -d /tmp/eegfm-slurm.XXXXXX)}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log"

HOST=$(hostname -s)
CPUS=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || true)
MEM_MB=$(( ${MEM_KB:-0} / 1024 ))
[ "$MEM_MB" -gt 0 ] || MEM_MB=20000

mkdir -p "$CONF_DIR"
cat > "$CONF_DIR/slurm.conf" <<CONF
$MARKER (state in $STATE); tools/slurm/stop.sh removes it.
ClusterName=eegfm-test
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# finished jobs stay visible to squeue/scontrol for 5 min: the executor's
# squeue status command needs MinJobAge >= 3 x its status-check interval
MinJobAge=300
ReturnToService=2
GresTypes=gpu
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$CONF_DIR/gres.conf" <<CONF
$MARKER
# One fake GPU, so that GPU jobs can be scheduled on a machine without one.
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
CONF

stop_all() { "$(dirname "$0")/stop.sh" "$STATE" >&2 || true; }

# munged: reuse one that already answers, else start ours. It runs as user
# munge, which may not reach STATE (pytest's tmp is 700): log and PID file go
# to /run/munge; the PID is copied to STATE for stop.sh.
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "munged already running; reusing it" >&2
else
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chmod 755 /run/munge
    rm -f /run/munge/eegfm-munged.pid
    runuser -u munge -- munged --force --pid-file=/run/munge/eegfm-munged.pid --log-file=/run/munge/eegfm-munged.log
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 || {
        stop_all; die "munged did not start; see /run/munge/eegfm-munged.log"
    }
    cp /run/munge/eegfm-munged.pid "$STATE/munged.pid"
fi

slurmctld || { stop_all; die "slurmctld did not start; see $STATE/log/slurmctld.log"; }
slurmd || { stop_all; die "slurmd did not start; see $STATE/log/slurmd.log"; }

state=""
for _ in $(seq 300); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
    [ "$state" = "idle" ] && break
    sleep 0.1
done
if [ "$state" != "idle" ]; then
    echo "--- slurmctld.log" >&2; tail -n 20 "$STATE/log/slurmctld.log" >&2 || true
    echo "--- slurmd.log" >&2; tail -n 20 "$STATE/log/slurmd.log" >&2 || true
    stop_all
    die "node $HOST did not become idle within 30 s (last state: '${state:-none}')"
fi
echo "SLURM up: node $HOST, $CPUS CPUs, $MEM_MB MB, 1 fake GPU; stop with: tools/slurm/stop.sh $STATE" >&2
echo "$STATE"
