"""Riemannian tangent space: a label-free covariance baseline, one vector per window.

Each window (µV) gets a shrinkage covariance estimate (pyriemann's
:func:`~pyriemann.geometry.covariance.covariances`, OAS by default), which is
mapped to the tangent space at the identity with the log-Euclidean metric
(:func:`~pyriemann.geometry.tangentspace.tangent_space` with ``Cref = I``,
i.e. the matrix logarithm) and vectorised as its weighted upper triangle
(off-diagonal entries × √2, so the Euclidean norm of the vector is the
Frobenius norm of the matrix): ``n_channels * (n_channels + 1) / 2`` features.

Nothing is fitted across windows (no Riemannian mean as reference point), so
the map is a deterministic function of one window and cannot leak between
folds; the probe's scaler and classifier are fit on each training fold.

Nothing here imports torch: an embedding job for this backbone stays a light
process (see :func:`_import_pyriemann`).
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

import numpy as np

from eegfm.backbones.adapt import BackboneInputError, InputPlan
from eegfm.backbones.family import BaselineExtractor, FeatureBaseline
from eegfm.backbones.spec import BackboneSpec, Inputs, Length

KWARGS = ("estimator",)
#: Shrinkage (or plain sample) estimators of pyriemann that work on any window.
ESTIMATORS = ("oas", "lwf", "sch", "scm")
#: Added to the diagonal (µV²) so a flat window has a finite logarithm, as bandpower's power floor.
COV_FLOOR_UV2 = 1e-10


def resolve_kwargs(init_kwargs: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge the registry's settings with the config's and validate them.

    Parameters
    ----------
    init_kwargs
        The registry's ``init_kwargs`` (``estimator``).
    overrides
        ``backbones[].kwargs`` from the config, merged over ``init_kwargs``.

    Returns
    -------
    dict
        ``{"estimator": str}``.

    Raises
    ------
    BackboneInputError
        On an unknown key or estimator.
    """
    unknown = sorted(set(overrides) - set(KWARGS))
    if unknown:
        raise BackboneInputError(f"riemann: unknown kwargs {unknown}; allowed: {', '.join(KWARGS)}")
    estimator = str({**init_kwargs, **overrides}["estimator"])
    if estimator not in ESTIMATORS:
        raise BackboneInputError(f"riemann: estimator '{estimator}' is not one of {', '.join(ESTIMATORS)}")
    return {"estimator": estimator}


class _RefuseTorch(importlib.abc.MetaPathFinder):
    """Make ``import torch`` fail, so that pyriemann's optional backend stays off."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("torch is not imported for the riemann baseline", name=name)
        return None


def _import_pyriemann():
    """``(covariances, tangent_space)`` from pyriemann, without importing torch.

    pyriemann 0.12 tries ``import torch`` at import time for its optional
    array-API backend (~1.5 s and several hundred MB per job). We only pass
    NumPy arrays, so torch is refused while pyriemann is first imported; if
    torch is already loaded, pyriemann simply uses it. A finder is used rather
    than ``sys.modules["torch"] = None``, which array-api-compat would trip on.
    """
    blocker = None
    if "torch" not in sys.modules and "pyriemann" not in sys.modules:
        blocker = _RefuseTorch()
        sys.meta_path.insert(0, blocker)
    try:
        from pyriemann.geometry.covariance import covariances
        from pyriemann.geometry.tangentspace import tangent_space
    finally:
        if blocker is not None:
            sys.meta_path.remove(blocker)
    return covariances, tangent_space


def tangent_vectors(X_uv: np.ndarray, estimator: str = "oas") -> np.ndarray:
    """Log-Euclidean tangent vectors at the identity of per-window covariances.

    Parameters
    ----------
    X_uv
        Windows (n_windows, n_channels, n_times) in µV.
    estimator
        pyriemann covariance estimator (one of :data:`ESTIMATORS`).

    Returns
    -------
    np.ndarray
        float32 (n_windows, n_channels * (n_channels + 1) / 2).
    """
    covariances, tangent_space = _import_pyriemann()
    n_chans = X_uv.shape[1]
    C = covariances(np.asarray(X_uv, dtype=np.float64), estimator=estimator)
    C += COV_FLOOR_UV2 * np.eye(n_chans)
    return tangent_space(C, np.eye(n_chans), metric="logeuclid").astype(np.float32)


class RiemannExtractor(BaselineExtractor):
    """Windows in volts (B, C, T) -> tangent vectors (B, C(C+1)/2); settings from :func:`resolve_kwargs`."""

    def __init__(self, plan: InputPlan, kwargs: dict[str, Any]):
        n = len(plan.ch_names)
        super().__init__(plan, n * (n + 1) // 2)
        self.estimator = kwargs["estimator"]

    def features(self, X_uv: np.ndarray) -> np.ndarray:
        return tangent_vectors(X_uv, self.estimator)


class Riemann(FeatureBaseline):
    """The Riemannian tangent-space family: settings and the extractor."""

    kind = "riemann"
    libraries = ("numpy", "scipy", "scikit-learn", "pyriemann")

    def resolve_kwargs(self, init_kwargs, overrides):
        return resolve_kwargs(init_kwargs, overrides)

    def extractor(self, plan, kwargs):
        return RiemannExtractor(plan, kwargs)


SPECS = (
    BackboneSpec(
        name="riemann",
        family=Riemann(),
        inputs=Inputs(scale=1e6, length=Length(minimum=2)),  # covariances in µV²
        pooling="none",
        # Shrinkage keeps covariances positive definite (e.g. average-referenced data is rank C-1).
        init_kwargs={"estimator": "oas"},
    ),
)
