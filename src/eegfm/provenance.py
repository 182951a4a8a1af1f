"""Versions of the code and libraries that produced a result, and the peak memory of the job that did."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from eegfm.version import __version__

_PACKAGES = ("torch", "braindecode", "mne", "numpy", "scikit-learn", "zarr", "peft")


def package_versions(packages) -> dict[str, str]:
    """Installed version of each package, read from its metadata (nothing is imported)."""
    return {name: _package_version(name) for name in packages}


@functools.cache
def _package_version(name: str) -> str:
    # read once per process: parsing a package's metadata costs about a millisecond and every stage asks for
    # the same few; a package upgraded under a running process is not the code that process runs anyway
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not-installed"


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


@functools.cache
def source_digest(folder: str | None = None) -> str:
    """sha256 (16 hex digits) of the eegfm package's files: their paths and contents, caches left out.

    Where ``git_commit`` says ``<sha>-dirty`` (any uncommitted edit reads
    the same) or ``unknown`` (an installed wheel, a copied tree), this still
    tells two versions of the code apart, so a result, or a fold the Python
    API would reuse (:mod:`eegfm.fold_reuse`), is tied to the code that
    made it. Read once per process (about a hundred small files).

    Parameters
    ----------
    folder
        Folder of the code; default the ``eegfm`` package's own.
    """
    root = Path(folder) if folder is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix not in (".pyc", ".pyo")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_identity(libraries) -> dict[str, object]:
    """What a reusable result's key records of the code that made it: eegfm's :func:`source_digest`, the
    Python version and the versions of ``libraries`` (the windows cache and the API's reruns key on it)."""
    return {"code": source_digest(), "python": platform.python_version(), "versions": package_versions(libraries)}


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Installed versions of eegfm, Python and ``packages``, eegfm's ``git_commit`` and its
    ``eegfm_source`` (:func:`source_digest`)."""
    return {
        "eegfm": __version__,
        "python": platform.python_version(),
        **package_versions(packages),
        "eegfm_source": source_digest(),
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
