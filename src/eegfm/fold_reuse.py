"""What an in-process rerun may reuse: a fold's artifacts, when everything that produced them is unchanged.

Snakemake decides what to re-run in the workflow. The Python API
(:class:`eegfm.api.Experiment`) runs the stages itself, so a second ``run``
on the same arrays would fit every probe again. It reuses a fold's
``metrics.json`` and ``predictions.tsv`` only when the record names the same
inputs and settings as the fold about to run (docs/architecture.md,
invariant 7: anything reused is verified against what produced it):

- ``windows_key``, ``embedding_key`` and ``fingerprint_sha``: the signal and
  the embedding;
- ``settings_sha``: the job's settings (estimator, parameters, seed);
- ``fold_sha``: the fold itself: its train and test window ids and audit,
  the design, and the labels and groups of its windows (labels are not in the
  windows key, so relabelled windows give another ``fold_sha``);
- ``versions``: the code that fitted it (eegfm's version, git commit and
  source digest, Python, scikit-learn and the other packages
  :func:`eegfm.provenance.versions` lists), so an upgrade, or an edit of
  eegfm's code even uncommitted, refits.

The files themselves are checked too: :func:`remember` records the sha256
of ``metrics.json`` and ``predictions.tsv`` as written (``reuse.json``,
:mod:`eegfm.stage_reuse`), so a file edited or replaced since is not reused.

Anything else (a missing or unreadable file, a failed fold, one key that
differs, a file whose bytes changed) is recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eegfm import stage_reuse
from eegfm.hashing import sha256_json

#: The record fields that must match for a fold's artifacts to be reused.
REUSE_KEYS = ("windows_key", "embedding_key", "fingerprint_sha", "settings_sha", "fold_sha", "versions")
#: A fold's files that are reused together, and checked against the digests :func:`remember` recorded.
ARTIFACTS = ("metrics.json", "predictions.tsv")


def _key(expected: Mapping[str, Any]) -> str:
    return sha256_json({key: expected.get(key) for key in REUSE_KEYS})


def fold_sha(folds: Mapping[str, Any], entry: Mapping[str, Any], meta, target: str) -> str:
    """Hash of one fold as a job sees it: the design, the fold's entry, and its windows' labels and groups.

    Parameters
    ----------
    folds
        The parsed ``folds.json`` (its design fields are hashed).
    entry
        The fold's entry of ``folds["folds"]``.
    meta
        The windows table (``window_id``, ``label``, ``subject``, ``session``, ``run``).
    target
        ``"classification"`` or ``"regression"``.
    """
    ids = [*entry["train"], *entry["test"]]
    rows = meta.set_index("window_id").loc[ids]
    columns = [c for c in ("label", "subject", "session", "run") if c in rows]
    return sha256_json({
        "design": {k: folds.get(k) for k in ("scheme", "group_by", "unit", "seed", "gap_s")},
        "fold": dict(entry), "target": target,
        "windows": {c: rows[c].astype(str).tolist() for c in columns},
    })  # fmt: skip


def reusable_record(folder: str | Path, expected: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fold's ``metrics.json`` when it succeeded, every :data:`REUSE_KEYS` field equals ``expected``'s
    and both :data:`ARTIFACTS` have the bytes :func:`remember` recorded; else ``None`` (recompute)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "ok" or not (folder / "predictions.tsv").is_file():
        return None
    if any(record.get(key) is None or record.get(key) != expected.get(key) for key in REUSE_KEYS):
        return None
    if not stage_reuse.reusable(folder, _key(expected)):
        return None
    return record


def remember(folder: str | Path, expected: Mapping[str, Any]) -> None:
    """Record the digests of a fold's :data:`ARTIFACTS`, just written for ``expected``'s keys."""
    stage_reuse.record(folder, _key(expected), ARTIFACTS)
