#!/usr/bin/env bash
# Install eegfm and its pinned dependencies into a virtual environment.
#   usage: tools/install.sh [VENV_DIR]   (default: .venv)
# Idempotent: re-running only installs what changed.
set -euo pipefail
venv="${1:-.venv}"
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

# torch first, pinned: any other spec makes pip resolve the newest torch with
# GBs of CUDA wheels; 2.13.0 resolves to the local CPU build where one exists.
"${pip[@]}" install torch==2.13.0

# braindecode imports torchaudio. PyPI has no CPU build of torchaudio: install
# the pure-Python wheel without its CUDA-pinned deps. On a CPU-only torch its
# compiled extension cannot load (it links CUDA libraries), so remove it;
# torchaudio then falls back to the pure-Python ops braindecode uses
# (filters, Resample, Spectrogram). On a CUDA torch the extension is kept.
"${pip[@]}" install --no-deps torchaudio==2.11.0
if "$venv/bin/python" -W ignore -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then
    ta_lib="$("$venv/bin/python" -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('torchaudio').origin).parent / 'lib')")"
    rm -f "$ta_lib"/*.so
fi

# eegfm itself (editable) with every transitive dependency pinned by the lock.
"${pip[@]}" install -c "$here/requirements/lock.txt" -e "$here[test]"
"$venv/bin/python" -c "import eegfm, torchaudio, braindecode, snakemake; print('eegfm', eegfm.__version__, 'installed in $venv')"
