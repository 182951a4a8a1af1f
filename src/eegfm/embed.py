"""Frozen-backbone embeddings, computed once per (windows key, fingerprint) and reused.

Layout (docs/architecture.md §2.4)::

    <cache>/embeddings/<key[:2]>/<key>.zarr   zarr group: array ``E`` float32
                                              (windows, dim); attrs: key,
                                              fingerprint, adaptation record,
                                              windows_key, n_windows, dim,
                                              forward_passes, created_by, ...
    results/.../<pointer>.json                per dataset x backbone: names the
                                              key and store (a normal
                                              Snakemake output)

``key = sha256(windows key + canonical fingerprint)``. A store is written in a
temporary sibling and renamed into place, with a sha256 of every chunk of
``E`` in its attributes (:mod:`eegfm.integrity`). A store that exists and
whose every chunk matches its digest is a cache hit: no model is built, no
forward pass runs. A store that fails the check (a chunk deleted by an
interrupted copy, a truncated file) is a miss: it is logged, moved aside to
``<key>.zarr.damaged-<time>-<pid>`` and recomputed.

One writer per key: a miss is computed under the key's lock
(:func:`eegfm.locks.key_lock`), so two runs sharing a cache compute a store
once; the second waits, then hits. Whoever holds the lock first removes the
temporary leftovers of writers that died (``.tmp-<key>.zarr-*``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eegfm import atomic
from eegfm.backbones.adapt import plan_input
from eegfm.backbones.build import build_extractor
from eegfm.backbones.corpora import warn_corpus_overlap
from eegfm.backbones.fingerprint import EMBED_CODE_VERSION, fingerprint
from eegfm.backbones.registry import get_spec
from eegfm.config import Backbone, Embedding
from eegfm.devices import resolve_device
from eegfm.hashing import canonical_json, sha256_json
from eegfm.integrity import ChunkDigests, VerifiedArray, record
from eegfm.locks import key_lock
from eegfm.pretrain.overlap import warn_overlap
from eegfm.pretrain.verify import verify_weights
from eegfm.provenance import versions
from eegfm.windows_store import open_windows

__all__ = ["EMBED_CODE_VERSION", "NonFiniteEmbeddingError", "embed", "embedding_key", "open_embeddings", "store_path"]

logger = logging.getLogger(__name__)

POINTER_KEYS = (
    "key", "store", "dataset", "backbone", "windows_key", "fingerprint", "fingerprint_sha",
    "cache", "forward_passes", "windows_forwarded", "dim", "n_windows", "adaptation", "corpus_overlap", "pretrain_overlap",
)  # fmt: skip
_CHUNK_BYTES = 4 << 20  # ~4 MiB chunks of E, whatever the batch size


class NonFiniteEmbeddingError(RuntimeError):
    """A backbone produced NaN or Inf embeddings; nothing was written."""


def embedding_key(windows_key: str, fp: dict[str, Any]) -> str:
    """Content key of an embedding store: sha256 of the windows key + canonical fingerprint."""
    return hashlib.sha256((windows_key + canonical_json(fp)).encode()).hexdigest()


def store_path(cache_dir: str | Path, key: str) -> Path:
    """``<cache>/embeddings/<key[:2]>/<key>.zarr``."""
    return Path(cache_dir) / "embeddings" / key[:2] / f"{key}.zarr"


def embed(
    windows_dir: str,
    cfg: Backbone,
    emb: Embedding,
    seed: int,
    cache_dir: str,
    pointer_path: str,
    dataset: str,
    corpus: list[str] | tuple[str, ...] = (),
    pretrain_dir: str | None = None,
    before_compute: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Embed a windows store with a frozen backbone, or reuse the cached store.

    Parameters
    ----------
    windows_dir
        A complete windows store (see :mod:`eegfm.windows_store`).
    cfg
        The backbone entry of the config.
    emb
        Batch size, device and threads (none of them enters the cache key).
    seed
        Seed of the random init when ``cfg.weights`` is null.
    cache_dir
        Root of the content-addressed stores (shared between runs/datasets).
    pointer_path
        JSON file written (atomically) naming the store.
    dataset
        Dataset name, recorded in the pointer and used in error messages.
    corpus
        Public datasets the recordings come from (config ``corpus``); those
        the backbone was pretrained on are warned about and recorded.
    pretrain_dir
        ``results/pretrain/<name>`` when the weights come from the workflow's
        own pretraining: windows and recordings shared with it are recorded
        (``pretrain_overlap``) and warned about.
    before_compute
        Called on a cache miss before the backbone is built (the workflow's
        job passes :func:`eegfm.job_protocol.wait_for_heavy_modules`: a hit
        never needs torch).

    Returns
    -------
    dict
        The pointer: ``key, store, dataset, backbone, windows_key,
        fingerprint, fingerprint_sha, cache ("hit"/"miss"), forward_passes
        (batches run by this call), windows_forwarded (windows this call ran
        through the backbone: each once on a miss, none on a hit), dim,
        n_windows, adaptation, corpus_overlap``.

    Raises
    ------
    BackboneInputError, BackboneWeightsError
        Before any computation, when windows or weights do not fit.
    eegfm.integrity.DamagedStoreError
        When a windows chunk or the workflow's pretrained weights do not match
        their recorded sha256 (a damaged embedding store is recomputed instead).
    NonFiniteEmbeddingError
        When the backbone outputs NaN/Inf (no store is written).
    """
    windows = open_windows(windows_dir)
    if pretrain_dir:
        verify_weights(pretrain_dir)
    spec = get_spec(cfg.name)
    plan = plan_input(spec, windows.info, dataset=dataset, cfg=cfg)
    fp = fingerprint(spec, cfg, plan, seed)
    key = embedding_key(windows.key, fp)
    path = store_path(cache_dir, key)
    attrs, _ = _check_store(path, key)  # most runs: a verified hit, no lock needed
    cache = "hit"
    if attrs is None:
        if before_compute is not None:
            before_compute()
        with key_lock(path, what=f"embed {dataset}/{cfg.label}: store {path}"):
            attrs = _hit_or_clear(path, key)  # another run may have written it while we waited
            if attrs is None:
                attrs, cache = _compute(windows, spec, cfg, emb, plan, fp, key, path, seed, dataset), "miss"
    passes = attrs["forward_passes"] if cache == "miss" else 0
    if cache == "hit":
        logger.info("embed %s/%s: cache hit %s (every chunk verified)", dataset, cfg.label, path)
    pointer = {
        "key": key,
        "store": str(path.resolve()),
        "dataset": dataset,
        "backbone": cfg.label,
        "windows_key": windows.key,
        "fingerprint": fp,
        "fingerprint_sha": sha256_json(fp),
        "cache": cache,
        "forward_passes": passes,
        "windows_forwarded": attrs["n_windows"] if cache == "miss" else 0,
        "dim": attrs["dim"],
        "n_windows": attrs["n_windows"],
        "adaptation": plan.record(),
        "corpus_overlap": warn_corpus_overlap(corpus, spec.pretraining_corpus, f"embed {dataset}/{cfg.label}"),
        "pretrain_overlap": warn_overlap(pretrain_dir, windows, f"embed {dataset}/{cfg.label}"),
    }
    atomic.write_json(pointer_path, pointer)
    return pointer


def open_embeddings(pointer_path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the embeddings a pointer names.

    Returns
    -------
    E : np.ndarray
        float32 (n_windows, dim), row i = window_id i of the windows store.
    pointer : dict
        The pointer JSON.

    Raises
    ------
    FileNotFoundError, ValueError
        If the store is gone or does not match the pointer (re-run embed).
    eegfm.integrity.DamagedStoreError
        If a chunk of ``E`` does not match the digest recorded when it was written.
    """
    import zarr

    pointer = json.loads(Path(pointer_path).read_text())
    path = Path(pointer["store"])
    how = f"snakemake --forcerun {pointer_path}; a damaged store is moved aside and recomputed"
    if not path.exists():
        raise FileNotFoundError(f"{pointer_path}: embedding store {path} is gone (cache cleared?); re-run the embed "
                                f"rule ({how})")
    group = zarr.open_group(str(path), mode="r")
    stored_key = str(group.attrs.get("key"))
    if stored_key != pointer["key"]:
        raise ValueError(f"{pointer_path}: store {path} holds key {stored_key[:12]}, not the pointer's; re-run embed "
                         f"({how})")
    E = VerifiedArray(group["E"], name=f"embedding store {path}", fix=f"re-run the embed rule ({how})",
                      key=pointer["key"])
    E = np.asarray(E[:], dtype=np.float32)
    if E.shape != (pointer["n_windows"], pointer["dim"]):
        raise ValueError(
            f"{pointer_path}: store {path} holds {E.shape[0]} x {E.shape[1]} embeddings, the pointer says "
            f"{pointer['n_windows']} x {pointer['dim']}; re-run the embed rule"
        )
    return E, pointer


# ----------------------------------------------------------------------------- internals


def _check_store(path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(attrs, None)`` for a complete store whose every chunk matches its digest, else ``(None, problem)``.

    ``problem`` is ``None`` when there is no store at all.
    """
    import zarr

    if not path.exists():
        return None, None
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
        if attrs.get("key") != key:
            return None, f"it holds key {attrs.get('key')}"
        E = VerifiedArray(group["E"], name="E", fix="", key=key)
        if E.shape != (attrs["n_windows"], attrs["dim"]):
            return None, f"E is {E.shape}, its attributes say ({attrs['n_windows']}, {attrs['dim']})"
        E.verify()
    except Exception as err:  # noqa: BLE001 - whatever a damaged store raises (missing or corrupt files), it is damaged
        return None, f"{type(err).__name__}: {err}".rstrip("; ")
    return attrs, None


def _hit_or_clear(path: Path, key: str) -> dict[str, Any] | None:
    """Under the key's lock: the verified store's attrs, or ``None`` after moving a damaged store aside.

    The temporary leftovers of writers that died are removed too (holding
    the lock, no live writer of this key can own them).
    """
    attrs, problem = _check_store(path, key)
    if attrs is not None:
        return attrs
    if problem is not None:
        aside = atomic.move_aside(path)
        logger.warning("embedding store %s is damaged (%s); moved it aside to %s and computing it again",
                       path, problem, aside.name)
    atomic.sweep_stale(path, any_writer=True)
    return None


def _compute(windows, spec, cfg, emb, plan, fp, key, path, seed, dataset) -> dict[str, Any]:
    """Run the backbone over every window and publish the store atomically."""
    import zarr

    device = "cpu"
    if spec.kind == "braindecode":
        import torch

        device = resolve_device(emb.device, "embedding.device")
        torch.set_num_threads(emb.threads)
    t0 = time.perf_counter()
    extractor = build_extractor(spec, cfg, plan, seed, device)
    t_build = time.perf_counter() - t0
    n = windows.X.shape[0]
    with atomic.atomic_dir(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        passes, dim, bad = _run(extractor, windows.X, emb.batch_size, group, key,
                                desc=f"embed {dataset}/{cfg.label}")
        if bad:
            n_values, bad_ids = bad
            raise NonFiniteEmbeddingError(
                f"backbone '{cfg.label}' ({spec.name}) produced {n_values} non-finite embedding values in "
                f"{len(bad_ids)} of {n} windows of dataset '{dataset}' (window ids {bad_ids[:10]}); "
                "no embedding store was written"
            )
        elapsed = time.perf_counter() - t0
        attrs = {
            "key": key,
            "fingerprint": fp,
            "fingerprint_sha": sha256_json(fp),
            "adaptation": plan.record(),
            "windows_key": windows.key,
            "n_windows": n,
            "dim": dim,
            "forward_passes": passes,
            "computed_with": {"device": device, "batch_size": emb.batch_size, "threads": emb.threads,
                              "build_s": round(t_build, 3), "elapsed_s": round(elapsed, 3)},
            "created_by": versions(),
        }  # fmt: skip
        group.attrs.update(attrs)
    logger.info(
        "embed %s/%s: %d windows -> dim %d in %.1f s (%.0f windows/s, %d batches of %d on %s); store %s",
        dataset, cfg.label, n, dim, elapsed, n / max(elapsed, 1e-9), passes, emb.batch_size, device, path,
    )  # fmt: skip
    return attrs


def _run(extractor, X, batch_size: int, group, key: str,
         desc: str) -> tuple[int, int, tuple[int, list[int]] | None]:
    """Stream X in batches (the last one padded), writing E; returns (batches, dim, non-finite summary)."""
    from tqdm import tqdm

    n = X.shape[0]
    writer: _RowWriter | None = None
    n_bad_values, bad_ids, passes = 0, [], 0
    # default unit: the bar reads "it/s" (one it = one window), as the workflow test expects
    with tqdm(total=n, desc=desc, file=sys.stderr, mininterval=2.0) as bar:
        for start in range(0, n, batch_size):
            xb = np.asarray(X[start : start + batch_size], dtype=np.float32)
            n_real = len(xb)
            out = np.asarray(extractor(_pad(xb, batch_size)), dtype=np.float32)[:n_real]
            passes += 1
            if out.ndim != 2 or len(out) != n_real:
                raise ValueError(f"extractor returned shape {out.shape} for a batch of {n_real} windows")
            finite = np.isfinite(out)
            if not finite.all():
                n_bad_values += int((~finite).sum())
                bad_ids += [start + int(i) for i in np.flatnonzero(~finite.all(axis=1))]
            if writer is None:
                writer = _RowWriter(group, n, out.shape[1], key)
            writer.write(out)
            bar.update(n_real)
    writer.close()
    return passes, writer.dim, ((n_bad_values, bad_ids) if n_bad_values else None)


def _pad(xb: np.ndarray, batch_size: int) -> np.ndarray:
    """Pad a short last batch to ``batch_size`` by repeating its last window.

    Several backbones give slightly different outputs for a batch of 1 than
    for larger batches; a fixed batch shape keeps embeddings bitwise
    reproducible. Repeating a real window (not zeros) avoids feeding inputs a
    per-window normalisation cannot handle; padded rows are dropped.
    """
    if len(xb) == batch_size:
        return xb
    return np.concatenate([xb, np.repeat(xb[-1:], batch_size - len(xb), axis=0)])


class _RowWriter:
    """Write rows of ``E`` in whole chunks (no read-modify-write of partial chunks), with their digests."""

    def __init__(self, group, n: int, dim: int, key: str):
        self.dim, self.key = dim, key
        self.chunk = min(max(64, _CHUNK_BYTES // (4 * dim)), n)
        self.E = group.create_array("E", shape=(n, dim), chunks=(self.chunk, dim), dtype="float32")
        self.digests = ChunkDigests(self.chunk, "float32")
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._written = 0

    def write(self, rows: np.ndarray) -> None:
        self.digests.update(rows)
        self._buffer.append(rows)
        self._buffered += len(rows)
        if self._buffered >= self.chunk:
            self._flush(whole_chunks_only=True)

    def close(self) -> None:
        self._flush(whole_chunks_only=False)
        record(self.E, self.digests, key=self.key)

    def _flush(self, whole_chunks_only: bool) -> None:
        if not self._buffer:
            return
        rows = np.concatenate(self._buffer)
        take = (len(rows) // self.chunk) * self.chunk if whole_chunks_only else len(rows)
        self.E[self._written : self._written + take] = rows[:take]
        self._written += take
        self._buffer = [rows[take:]] if take < len(rows) else []
        self._buffered = len(rows) - take
