"""Provenance: versions are read from package metadata, never by importing the packages;
the git commit is the one of the checkout the code was loaded from."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
GIT = ["git", "-c", "user.name=eegfm-test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"]


def test_versions_name_the_stack_without_importing_it():
    code = (
        "import sys; from eegfm.provenance import versions; v = versions(); "
        "assert {'eegfm', 'python', 'torch', 'braindecode', 'mne', 'numpy', 'scikit-learn', 'zarr', 'peft', "
        "'git_commit', 'eegfm_source'} <= set(v), v; "
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_source_digest_tells_uncommitted_edits_apart(tmp_path):
    """'<sha>-dirty' reads the same for every uncommitted edit: a fold the API reuses by its versions could
    come from other code."""
    from eegfm.provenance import source_digest

    shutil.copytree(SRC / "eegfm", tmp_path / "eegfm", ignore=shutil.ignore_patterns("__pycache__"))
    first = source_digest(str(tmp_path / "eegfm"))
    assert re.fullmatch(r"[0-9a-f]{16}", first) and first == source_digest(str(SRC / "eegfm"))
    (tmp_path / "eegfm" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "eegfm" / "__pycache__" / "x.pyc").write_bytes(b"cache")  # caches are not code
    source_digest.cache_clear()
    assert source_digest(str(tmp_path / "eegfm")) == first
    with (tmp_path / "eegfm" / "probe.py").open("a") as f:
        f.write("\n# an uncommitted edit\n")
    source_digest.cache_clear()
    assert source_digest(str(tmp_path / "eegfm")) != first


def test_unknown_package_is_reported_not_raised():
    from eegfm.provenance import versions

    assert versions(("no-such-package-eegfm",))["no-such-package-eegfm"] == "not-installed"


def test_commit_of_this_checkout_is_cached():
    from eegfm.provenance import git_commit, versions

    commit = versions()["git_commit"]
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit), commit
    assert git_commit.cache_info().currsize >= 1
    hits = git_commit.cache_info().hits
    versions()
    assert git_commit.cache_info().hits == hits + 1  # git is asked once per process


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A git checkout holding a copy of src/eegfm, committed."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "checkout"
    shutil.copytree(SRC / "eegfm", repo / "src/eegfm", ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "copy")
    return repo


def loaded_commit(src: Path, path: str | None = None) -> str:
    """versions()['git_commit'] in a fresh process that imports eegfm from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    if path is not None:
        env["PATH"] = path
    code = "import eegfm, sys; from eegfm.provenance import versions; print(eegfm.__file__); print(versions()['git_commit'])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    file, commit = out.stdout.split()
    assert Path(file).is_relative_to(src)
    return commit


def test_commit_is_the_one_the_code_was_loaded_from(checkout):
    head = _git(checkout, "rev-parse", "HEAD")
    assert loaded_commit(checkout / "src") == head
    (checkout / "notes.txt").write_text("untracked\n")
    assert loaded_commit(checkout / "src") == f"{head}-dirty"
    (checkout / "notes.txt").unlink()
    with open(checkout / "src/eegfm/embed.py", "a") as fh:
        fh.write("# edited\n")
    assert loaded_commit(checkout / "src") == f"{head}-dirty"


def test_commit_is_unknown_outside_a_checkout_or_without_git(checkout, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(checkout / "src", plain / "src")
    assert loaded_commit(plain / "src") == "unknown"
    # inside a checkout that does not track it (an install in a project's venv)
    inner = checkout / "venv/site-packages"
    shutil.copytree(checkout / "src/eegfm", inner / "eegfm")
    assert loaded_commit(inner) == "unknown"
    # git missing
    assert loaded_commit(checkout / "src", path=str(tmp_path / "no-bin")) == "unknown"
