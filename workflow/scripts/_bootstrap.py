"""Put this checkout's src/ first on sys.path, so jobs import the code that validated the config.

Snakemake appends the main process's sys.path (which holds any installed
eegfm: a venv shared by several checkouts, a non-editable install) to a
script's path, and conda envs built from envs/ do not install eegfm at all;
Snakemake puts this folder on the path, so `import _bootstrap` (before any
eegfm import) is enough.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
sys.path[:] = [SRC] + [p for p in sys.path if p != SRC]
loaded = sys.modules.get("eegfm")
if loaded is not None and not Path(loaded.__file__).resolve().is_relative_to(SRC):
    raise ImportError(f"eegfm was imported from {loaded.__file__} before {SRC} was put first on sys.path")
