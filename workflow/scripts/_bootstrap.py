"""Put src/ on sys.path, so jobs import eegfm without `pip install -e .`.

Conda envs built from envs/ do not install eegfm itself; Snakemake puts this
folder on a script's path, so `import _bootstrap` is enough.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
