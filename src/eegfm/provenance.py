"""Versions of the code and libraries that produced a result, and the peak memory of the job that did."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from eegfm.version import __version__

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


def _git(folder: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


@functools.cache
def git_commit(folder: str | None = None) -> str:
    """Commit of the checkout the eegfm code was loaded from.

    ``<sha>`` for a clean checkout, ``<sha>-dirty`` when ``git status
    --porcelain`` lists anything (edited, staged or untracked files), and
    ``"unknown"`` when the code is not in a git checkout (an installed wheel,
    a copied tree) or git is missing. Asked once per process.

    Parameters
    ----------
    folder
        Folder of the code; default the ``eegfm`` package's own.
    """
    package = Path(folder) if folder is not None else Path(__file__).resolve().parent
    # the package's own files must be tracked: an install inside some other
    # checkout (a venv in a project folder) is not that checkout's code
    if _git(package, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return "unknown"
    sha = (_git(package, "rev-parse", "HEAD") or "").strip()
    if not sha:
        return "unknown"
    status = _git(package, "status", "--porcelain")
    return f"{sha}-dirty" if status is None or status.strip() else sha


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Installed versions of eegfm, Python and ``packages``, and eegfm's ``git_commit``."""
    return {
        "eegfm": __version__,
        "python": platform.python_version(),
        **package_versions(packages),
        "git_commit": git_commit(),
    }


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process in MB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)
