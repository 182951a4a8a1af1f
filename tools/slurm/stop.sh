#!/usr/bin/env bash
# Stop the SLURM started by tools/slurm/start.sh: slurmd, slurmctld, then the
# munged it started (by the PIDs in STATE_DIR, never by name); SIGTERM, then
# SIGKILL after 10 s. A killed daemon may linger as a zombie when nothing reaps
# it, so "gone" means no /proc/PID or State Z. Removes the config it wrote;
# STATE_DIR (logs) is left for inspection.
#
#   sudo tools/slurm/stop.sh STATE_DIR
set -uo pipefail

STATE=${1:?usage: tools/slurm/stop.sh STATE_DIR}
MARKER="# written by eegfm tools/slurm/start.sh"

alive() {  # running and not a zombie
    local status="/proc/$1/status"
    [ -r "$status" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "$status" 2>/dev/null
}

rc=0
for daemon in slurmd slurmctld munged; do
    pidfile="$STATE/$daemon.pid"
    [ -s "$pidfile" ] || continue
    pid=$(tr -dc '0-9' < "$pidfile")
    [ -n "$pid" ] || continue
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            echo "$daemon (PID $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        fi
        if alive "$pid"; then
            echo "$daemon (PID $pid) is still running" >&2
            rc=1
            continue
        fi
    fi
    rm -f "$pidfile"
done
for conf in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [ -e "$conf" ] && grep -qF "$MARKER" "$conf"; then rm -f "$conf"; fi
done
[ $rc -eq 0 ] && echo "SLURM stopped (logs in $STATE/log)" >&2
exit $rc
