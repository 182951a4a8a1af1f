"""What an in-process rerun may reuse around the folds: the folds file and the report's tables.

The Python API (:class:`eegfm.api.Experiment`) runs its stages itself, so a
second ``run`` on unchanged data would split the windows and summarise the
folds again (statistics included) although nothing they read changed.
:mod:`eegfm.fold_reuse` covers the folds' own artifacts; this module covers
the stages whose outputs are a deterministic function of files on disk and
settings (docs/architecture.md §4.3; §3, invariant 7: anything reused is
verified against what produced it):

- the *inputs key*: sha256 over the bytes of every file the stage reads
  (a missing file counts as missing), its settings, and the code that
  computes it (:func:`~eegfm.provenance.code_identity`: eegfm's source
  digest, Python and the versions of :data:`LIBRARIES`);
- a *record* beside the outputs (``reuse.json``) holding that key and the
  sha256 of every output file as written.

A stage is skipped only when the record's key equals the one computed now
and every output still has the bytes it was written with; anything else (no
record, an edited or missing output, another library version) recomputes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eegfm import atomic
from eegfm.hashing import sha256_file, sha256_json
from eegfm.provenance import code_identity

#: Libraries whose versions enter an inputs key (the folds' splitters, the statistics).
LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn")
RECORD = "reuse.json"


def inputs_key(files: Iterable[str | Path], settings: Mapping[str, Any]) -> str:
    """sha256 over the bytes of ``files`` (path and digest; ``None`` for a missing file), ``settings`` and the code."""
    digests = []
    for path in files:
        path = Path(path).resolve()  # "out", "./out" and "/abs/out" name the same files
        digests.append([str(path), sha256_file(path) if path.is_file() else None])
    return sha256_json({"files": digests, "settings": settings, **code_identity(LIBRARIES)})


def reusable(folder: str | Path, key: str) -> bool:
    """Whether ``folder``'s outputs were written from inputs with ``key`` and are unchanged since."""
    try:
        record = json.loads((Path(folder) / RECORD).read_text())
        if record.get("inputs_key") != key or not record.get("outputs"):
            return False
        return all(sha256_file(Path(folder) / name) == digest for name, digest in record["outputs"].items())
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def record(folder: str | Path, key: str, outputs: Iterable[str]) -> None:
    """Record that ``folder``'s ``outputs`` (file names) were written from inputs with ``key``."""
    folder = Path(folder)
    atomic.write_json(folder / RECORD, {"inputs_key": key,
                                        "outputs": {name: sha256_file(folder / name) for name in outputs}})


def forget(folder: str | Path) -> None:
    """Drop ``folder``'s record before its outputs are rewritten (a crash in between leaves no stale record)."""
    (Path(folder) / RECORD).unlink(missing_ok=True)
