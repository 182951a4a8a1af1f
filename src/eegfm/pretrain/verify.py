"""The workflow's own pretrained weights, checked against their manifest before a job loads them (torch-free).

The pretrain rule records the sha256 of ``weights/model.safetensors`` in
``manifest.json``. Those weights are a Snakemake output, not a cache: a file
damaged or replaced since is an error naming it and the rule that rebuilds
it, never silently loaded.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

from eegfm.hashing import sha256_file
from eegfm.integrity import DamagedStoreError


def verify_weights(pretrain_dir: str | PathLike) -> str:
    """Check ``<pretrain_dir>/weights/model.safetensors`` against the sha256 in its manifest; return the sha256.

    Raises
    ------
    eegfm.integrity.DamagedStoreError
        Missing manifest or weights, or bytes that do not match; the message
        names the file and how to re-run rule pretrain.
    """
    folder = Path(pretrain_dir)
    manifest_path = folder / "manifest.json"
    fix = f"rebuild them: snakemake --forcerun {manifest_path} (re-runs rule pretrain and what reads it)"
    try:
        manifest = json.loads(manifest_path.read_text())
        weights = folder / manifest["weights"]
        expected = manifest["sha256"]
    except (OSError, ValueError, KeyError) as err:
        raise DamagedStoreError(f"pretraining manifest {manifest_path} is unreadable ({err}); {fix}") from err
    if not weights.is_file():
        raise DamagedStoreError(f"pretrained weights {weights} are missing; {fix}")
    found = sha256_file(weights)
    if found != expected:
        raise DamagedStoreError(
            f"pretrained weights {weights} do not match the sha256 in {manifest_path} (damaged or replaced "
            f"after pretraining: {found[:12]} vs {expected[:12]}); {fix}"
        )
    return found
