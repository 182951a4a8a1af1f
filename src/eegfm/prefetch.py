"""``eegfm prefetch``: copy pretrained weights to a local folder, on a machine with internet.

Nothing reaches the network at run time (docs/architecture.md, invariant 6): ``backbones[].weights``
is always a local path. This is the one step that may download. For every
braindecode backbone of a config that has no local weights yet, the
registry's ``pretrained_source`` (a ``braindecode/*`` Hugging Face repo) is
fetched into ``<dest>/<org>/<repo>/``, laid out as the hub has it
(``config.json`` + ``model.safetensors``, a ``from_pretrained`` folder), and
the ``weights:`` line to put in the config is printed. Copy ``<dest>`` to the
offline cluster and run the workflow there.

``source=None`` downloads with :func:`huggingface_hub.snapshot_download`,
pinned to the commit the revision resolves to; ``source=<dir>`` copies from a
local mirror laid out like the hub (``<dir>/<org>/<repo>/...``), e.g. a
shared folder filled by an earlier prefetch. Either way the folder is
written to a temporary sibling and renamed into place, so a folder that
exists is complete and is reused. When a repo has ``model.safetensors``,
pickle weight files (``pytorch_model.bin``...) are not fetched.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from eegfm import atomic
from eegfm.backbones.checkpoints import folder_files, weights_file, weights_id
from eegfm.backbones.registry import get_spec
from eegfm.config import Config
from eegfm.hashing import sha256_file

logger = logging.getLogger(__name__)

ALLOWED_ORG = "braindecode"
#: Provenance of a prefetched folder; hidden, so it does not enter :func:`weights_id`.
RECORD = ".eegfm-prefetch.json"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PICKLE_WEIGHTS = ("*.bin", "*.pth", "*.pt", "*.ckpt")


class PrefetchError(RuntimeError):
    """A repo that may not, or could not, be fetched."""


@dataclass
class Target:
    """One repo to fetch and the config entries that want it."""

    repo_id: str
    wanted_by: list[str] = field(default_factory=list)


def targets(config: Config, repos: tuple[str, ...] | list[str] = ()) -> list[Target]:
    """Repos to fetch: each braindecode backbone's ``pretrained_source``, plus ``repos``.

    Backbones whose ``weights`` already exist locally are skipped; one repo
    wanted by several backbones is fetched once.
    """
    found: dict[str, Target] = {}
    for i, backbone in enumerate(config.backbones):
        spec = get_spec(backbone.name)
        if spec.kind != "braindecode" or not spec.pretrained_source:
            continue
        if backbone.weights and Path(backbone.weights).expanduser().exists():
            logger.info("backbones[%d] (%s): weights %s are local already", i, backbone.label, backbone.weights)
            continue
        found.setdefault(spec.pretrained_source, Target(spec.pretrained_source)).wanted_by.append(
            f"backbones[{i}] ({backbone.label})"
        )
    for repo_id in repos:
        found.setdefault(repo_id, Target(repo_id))
    return list(found.values())


def check_repo_id(repo_id: str, *, allow_any_org: bool = False) -> tuple[str, str]:
    """``(org, name)`` of a Hugging Face repo id; only ``braindecode/*`` unless ``allow_any_org``."""
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise PrefetchError(f"'{repo_id}' is not a Hugging Face repo id of the form <org>/<name>")
    org, name = repo_id.split("/")
    if org != ALLOWED_ORG and not allow_any_org:
        raise PrefetchError(
            f"'{repo_id}' is not a {ALLOWED_ORG}/* repo; weights from other organisations are refused "
            "unless you pass --allow-any-org (check the licence and the code that produced them)"
        )
    return org, name


def prefetch(
    config: Config,
    dest: str | Path,
    *,
    source: str | Path | None = None,
    repos: tuple[str, ...] | list[str] = (),
    allow_any_org: bool = False,
    revision: str | None = None,
    force: bool = False,
) -> list[Path]:
    """Fetch the pretrained weights a config needs into ``dest``.

    Parameters
    ----------
    config
        A validated config; see :func:`targets` for which repos it needs.
    dest
        Local cache: each repo goes to ``<dest>/<org>/<repo>/``.
    source
        ``None`` downloads from the Hugging Face Hub (needs internet); a
        folder laid out like the hub (``<source>/<org>/<repo>/``) is copied
        instead.
    repos
        Extra repo ids to fetch (e.g. ``braindecode/biot-pretrained-prest-16chs``).
    allow_any_org
        Also fetch repos outside ``braindecode/``.
    revision
        Hub branch, tag or commit (default: the main branch); ignored for ``source``.
    force
        Fetch again even if ``<dest>/<org>/<repo>`` exists.

    Returns
    -------
    list of Path
        The local folder of each repo, in order; a ``weights:`` line for each
        is printed.

    Raises
    ------
    PrefetchError
        A refused or malformed repo id, a repo missing from ``source``, or a
        download without a weights file; nothing is left at the destination.
    """
    wanted = targets(config, repos)
    for target in wanted:  # refuse before fetching anything
        check_repo_id(target.repo_id, allow_any_org=allow_any_org)
    paths = []
    for target in wanted:
        folder = _fetch(target.repo_id, Path(dest), source=source, revision=revision, force=force)
        paths.append(folder)
        _print_weights_line(target, folder)
    if not wanted:
        print("nothing to prefetch: every braindecode backbone has local weights or no pretrained source")
    return paths


def _fetch(repo_id: str, dest: Path, *, source, revision, force) -> Path:
    org, name = repo_id.split("/")
    folder = dest / org / name
    if folder.exists() and not force:
        logger.info("%s: %s exists, reused (pass --force to fetch again)", repo_id, folder)
        return folder
    t0 = time.perf_counter()
    with atomic.atomic_dir(folder) as tmp:
        if source is None:
            record = _download(repo_id, tmp, revision)
        else:
            record = _copy(Path(source) / org / name, tmp)
        weights_file(tmp)  # a folder without weights is an error, not a cache entry
        record.update(
            repo_id=repo_id, files={f.relative_to(tmp).as_posix(): sha256_file(f) for f in folder_files(tmp)}
        )
        atomic.write_json(tmp / RECORD, record)
    logger.info("%s -> %s in %.1f s", repo_id, folder, time.perf_counter() - t0)
    return folder


def _skipped(names: list[str]) -> tuple[str, ...]:
    """Patterns of files not to fetch: pickle weights when ``model.safetensors`` is there."""
    return _PICKLE_WEIGHTS if "model.safetensors" in names else ()


def _copy(src: Path, tmp: Path) -> dict:
    """Copy a hub-like local folder (hidden entries and redundant pickles left out)."""
    if not src.is_dir():
        raise PrefetchError(f"{src} does not exist; --source must hold <org>/<repo>/ folders laid out like the hub")
    names = [f.relative_to(src).as_posix() for f in folder_files(src)]
    skip = _skipped(names)
    for name in names:
        if any(fnmatch.fnmatch(name, pattern) for pattern in skip):
            continue
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / name, tmp / name)
    return {"source": str(src.resolve()), "revision": None}


def _download(repo_id: str, tmp: Path, revision: str | None) -> dict:
    """Download one hub repo at one commit into ``tmp`` (needs internet)."""
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError as err:  # pragma: no cover - a dependency of braindecode's hub support
        raise PrefetchError("prefetch from the hub needs huggingface_hub (pip install huggingface_hub)") from err
    try:
        info = HfApi().model_info(repo_id, revision=revision)
        names = [s.rfilename for s in info.siblings or []]
        snapshot_download(repo_id, revision=info.sha, local_dir=tmp, ignore_patterns=list(_skipped(names)) or None)
    except Exception as err:  # network, auth, unknown repo: say which repo and why
        raise PrefetchError(
            f"could not download {repo_id}: {type(err).__name__}: {err}. This step needs internet "
            "(and HF_HUB_OFFLINE unset); on an offline machine use --source with a copied folder"
        ) from err
    shutil.rmtree(tmp / ".cache", ignore_errors=True)  # hub bookkeeping; a fresh temp dir each time
    return {"source": f"https://huggingface.co/{repo_id}", "revision": info.sha}


def _print_weights_line(target: Target, folder: Path) -> None:
    print(f"{target.repo_id} -> {folder} ({weights_id(str(folder), 0)})")
    for entry in target.wanted_by or ["(requested with --repo)"]:
        print(f"  {entry}:  weights: {folder}")
