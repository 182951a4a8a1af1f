"""Which torch device a job computes on: one resolver for embedding, fine-tuning and pretraining.

GPU *claiming* (which physical GPU a local job may use) happens before torch
starts, in :mod:`eegfm.gpus`; this module only turns a config's ``device``
setting into a torch device name.
"""

from __future__ import annotations


def resolve_device(requested: str, key: str) -> str:
    """``"auto"`` -> ``"cuda"``, then ``"mps"``, else ``"cpu"``; an explicit device must exist.

    Parameters
    ----------
    requested
        The config's setting: ``"auto"``, ``"cpu"``, ``"mps"``, ``"cuda"`` or ``"cuda:N"``.
    key
        The config key it came from (e.g. ``"finetune.device"``), named in the error.

    Raises
    ------
    RuntimeError
        When torch sees no such device; the message names ``key`` and the fix.
    """
    import torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (requested.startswith("cuda") and not cuda) or (requested == "mps" and not mps):
        raise RuntimeError(f"{key} is '{requested}' but torch sees no such device; set it to 'auto' or 'cpu'")
    return requested
