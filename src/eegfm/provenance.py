"""Versions of the code and libraries that produced a result."""

from __future__ import annotations

import importlib.metadata
import platform

import eegfm

_PACKAGES = ("torch", "braindecode", "mne", "numpy", "scikit-learn", "zarr", "peft")


def package_versions(packages) -> dict[str, str]:
    """Installed version of each package, read from its metadata (nothing is imported)."""
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not-installed"
    return out


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Installed versions of eegfm, Python and ``packages``."""
    return {"eegfm": eegfm.__version__, "python": platform.python_version(), **package_versions(packages)}
