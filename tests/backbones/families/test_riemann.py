"""Riemannian tangent-space baseline: values, determinism, validation, and a torch-free embedding path."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.linalg import logm

from eegfm.backbones.adapt import BackboneInputError, plan_input
from eegfm.backbones.build import build_extractor
from eegfm.backbones.families.riemann import RiemannExtractor, resolve_kwargs
from eegfm.backbones.fingerprint import fingerprint
from eegfm.backbones.registry import get_spec
from eegfm.config import Backbone

SFREQ, N_TIMES = 200.0, 800
CH = ["Fz", "Cz", "Pz", "O1", "O2"]
DIM = len(CH) * (len(CH) + 1) // 2


def _info(ch_names=CH, n_times=N_TIMES):
    return {"sfreq": SFREQ, "n_times": n_times, "ch_names": list(ch_names), "units": "V"}


def _extractor(weights=None, **kwargs):
    spec = get_spec("riemann")
    cfg = Backbone(name="riemann", kwargs=kwargs, weights=weights)
    return build_extractor(spec, cfg, plan_input(spec, _info(), cfg=cfg), seed=0)


def _windows(n=6, seed=0, mixing=None):
    """Windows in volts; ``mixing`` (C x C) gives them a covariance structure."""
    x = np.random.default_rng(seed).normal(scale=10e-6, size=(n, len(CH), N_TIMES))
    if mixing is not None:
        x = np.einsum("ij,njt->nit", mixing, x)
    return x.astype(np.float32)


def test_tangent_vectors_are_the_weighted_upper_triangle_of_logm_of_oas_covariances():
    from pyriemann.geometry.covariance import covariances

    X = _windows(4)
    extractor = _extractor()
    assert isinstance(extractor, RiemannExtractor) and extractor.dim == DIM
    E = extractor(X)
    assert E.shape == (4, DIM) and E.dtype == np.float32 and np.isfinite(E).all()
    C = covariances(X.astype(np.float64) * 1e6, estimator="oas")  # µV²
    i, j = np.triu_indices(len(CH))
    weights = np.where(i == j, 1.0, np.sqrt(2.0))
    for k in range(4):
        L = logm(C[k] + 1e-10 * np.eye(len(CH))).real
        np.testing.assert_allclose(E[k], weights * L[i, j], rtol=1e-5, atol=1e-5)


def test_rows_do_not_depend_on_the_batch_and_calls_are_deterministic():
    X = _windows(7, seed=1)
    extractor = _extractor()
    E = extractor(X)
    np.testing.assert_array_equal(E[3:], extractor(X[3:]))
    np.testing.assert_array_equal(E[:1], extractor(X[:1]))
    np.testing.assert_array_equal(E, _extractor()(X))


def test_rank_deficient_and_flat_windows_stay_finite():
    X = _windows(3, seed=2)
    X[0] -= X[0].mean(axis=0, keepdims=True)  # average reference: rank C - 1
    X[1, 2] = 0.0  # one flat channel
    X[2] = 0.0  # a flat window
    E = _extractor()(X)
    assert np.isfinite(E).all()


def test_covariance_structure_separates_classes():
    """Two classes that differ only in their spatial covariance are linearly separable."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(3)
    a = np.eye(len(CH))
    b = np.eye(len(CH)) + 0.8 * np.eye(len(CH), k=1)  # neighbouring channels correlated
    X = np.concatenate([_windows(20, seed=4, mixing=a), _windows(20, seed=5, mixing=b)])
    y = np.repeat([0, 1], 20)
    order = rng.permutation(len(y))
    E = _extractor()(X[order])
    assert cross_val_score(LogisticRegression(max_iter=1000), E, y[order], cv=4).mean() > 0.95


def test_kwargs_and_weights_are_validated():
    with pytest.raises(BackboneInputError, match="unknown kwargs"):
        resolve_kwargs(get_spec("riemann").init_kwargs, {"metric": "riemann"})
    with pytest.raises(BackboneInputError, match="estimator 'mcd'"):
        _extractor(estimator="mcd")
    with pytest.raises(BackboneInputError, match="riemann has no weights"):
        _extractor(weights="w.safetensors")
    assert _extractor(estimator="lwf").estimator == "lwf"


def test_fingerprint_is_seed_free_and_names_pyriemann():
    spec = get_spec("riemann")
    plan = plan_input(spec, _info())
    fp = fingerprint(spec, Backbone(name="riemann"), plan, seed=0)
    assert fp == fingerprint(spec, Backbone(name="riemann"), plan, seed=7)  # nothing random: one store for all seeds
    assert fp["weights"] == "none" and fp["init_kwargs"] == {"estimator": "oas"}
    assert {"pyriemann", "scikit-learn", "numpy", "scipy"} <= set(fp["versions"]) and "torch" not in fp["versions"]
    assert fingerprint(spec, Backbone(name="riemann", kwargs={"estimator": "lwf"}), plan, 0) != fp


def test_riemann_embedding_imports_no_torch(tmp_path):
    """Each Snakemake job is a new process: the riemann path must stay light, end to end through embed()."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from eegfm.windows_store import WindowsStoreWriter
        from eegfm.config import Backbone, Embedding
        from eegfm.embed import embed, open_embeddings

        w = WindowsStoreWriter({str(tmp_path / "win")!r}, {CH!r}, {SFREQ}, {N_TIMES})
        X = np.random.default_rng(0).normal(scale=1e-5, size=(6, {len(CH)}, {N_TIMES})).astype("float32")
        w.append(X, [{{"subject": str(i % 2), "label": "ab"[i % 2]}} for i in range(6)])
        w.close()
        args = (Embedding(batch_size=4), 0, {str(tmp_path / "cache")!r})
        p = embed({str(tmp_path / "win")!r}, Backbone(name="riemann"), *args, {str(tmp_path / "p.json")!r}, "ds")
        E, _ = open_embeddings({str(tmp_path / "p.json")!r})
        assert E.shape == (6, {DIM}) and np.isfinite(E).all() and p["forward_passes"] == 2, (E.shape, p)
        assert p["fingerprint"]["weights"] == "none" and p["cache"] == "miss", p
        again = embed({str(tmp_path / "win")!r}, Backbone(name="riemann", id="tangent"), *args,
                      {str(tmp_path / "q.json")!r}, "ds")
        assert again["cache"] == "hit" and again["key"] == p["key"], again
        heavy = [m for m in ("torch", "braindecode") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
