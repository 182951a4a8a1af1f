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

# Hand the job to the run's job server when there is one (eegfm.job_client): a fork of a
# process that has imported the job's libraries already. Otherwise, or when it declines,
# the job runs here. In the fork, this module runs again and finds no server to ask.
import __main__  # noqa: E402

from eegfm.job_client import run_in_job_server  # noqa: E402

_status = run_in_job_server(__main__, SRC)
if _status is not None:
    sys.exit(_status)
