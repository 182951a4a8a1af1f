#!/usr/bin/env bash
# Debian packages the test suite drives for real: a single-node SLURM
# (tests/workflow/test_slurm.py) and headless Chromium (report rendering test).
# Idempotent: installs only what is missing. Needs root (or sudo) and apt.
set -euo pipefail
PACKAGES=(slurmctld slurmd slurm-client munge chromium)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && { echo "system packages present: ${PACKAGES[*]}"; exit 0; }
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
