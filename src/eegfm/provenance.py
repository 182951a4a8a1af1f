"""Versions of the code and libraries that produced a result."""

from __future__ import annotations

import importlib.metadata
import platform

import eegfm

_PACKAGES = ("torch", "braindecode", "mne", "numpy", "scikit-learn", "zarr", "peft")


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Installed versions of eegfm, Python and ``packages`` (read from metadata,
    so nothing heavy is imported)."""
    out = {"eegfm": eegfm.__version__, "python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not-installed"
    return out
