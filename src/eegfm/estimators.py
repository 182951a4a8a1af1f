"""The probe's estimators: short names, dotted scikit-learn paths, and their parameters checked early.

:func:`resolve_estimator` builds an unfitted classifier from the config's
``probe.estimator`` and ``probe.params``. The config validator calls it at
parse time, so a bad name or parameter stops the run before any job; this
module imports scikit-learn only inside that call, and nothing of eegfm. :func:`check_estimator`
remembers a passed check, so the workflow's parse (every ``snakemake``
invocation) does not import scikit-learn again for a config it has checked.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.base import BaseEstimator

ESTIMATORS: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model.LogisticRegression",
    "lda": "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    # LinearSVC scales to many windows; its scores are a softmax of the margins
    # (AUC needs only their ranking). SVC(probability=True) is deprecated in sklearn 1.9.
    "linear_svm": "sklearn.svm.LinearSVC",
    "ridge": "sklearn.linear_model.RidgeClassifier",
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
    "knn": "sklearn.neighbors.KNeighborsClassifier",
}

# Applied under the user's params for short names only: sklearn's default
# iteration caps stop these solvers before they converge on standardized
# embeddings of a few hundred dimensions.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 2000},
    "linear_svm": {"max_iter": 10000},
}


def import_class(path: str) -> type:
    """The class named by a dotted path; ``ValueError`` naming what could not be found."""
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import module '{module_name}' for estimator '{path}': {err}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"'{module_name}' has no estimator class '{class_name}'")
    return cls


def resolve_estimator(name: str, params: dict[str, Any]) -> BaseEstimator:
    """Build an unfitted classifier from a short name or a dotted sklearn path.

    Parameters
    ----------
    name
        A key of :data:`ESTIMATORS` or a dotted path starting with
        ``sklearn.``, e.g. ``"sklearn.svm.SVC"``.
    params
        Constructor parameters; for a short name they are merged over
        :data:`DEFAULT_PARAMS`.

    Returns
    -------
    sklearn.base.BaseEstimator
        The classifier with ``params`` set.

    Raises
    ------
    ValueError
        Unknown name (lists the short names), not a classifier, a parameter
        the estimator does not take (names it and lists the valid ones), or a
        value sklearn rejects.
    """
    from sklearn.base import is_classifier

    if name in ESTIMATORS:
        path = ESTIMATORS[name]
    elif name.startswith("sklearn.") and name.count(".") >= 2:
        path = name
    else:
        raise ValueError(
            f"unknown estimator '{name}'; use one of {', '.join(ESTIMATORS)} or a dotted path "
            "starting with 'sklearn.' (e.g. sklearn.svm.SVC)"
        )
    cls = import_class(path)
    try:
        default = cls()
    except TypeError as err:
        raise ValueError(f"'{path}' cannot be built without arguments: {err}") from None
    if not (hasattr(default, "get_params") and is_classifier(default)):
        raise ValueError(f"'{path}' is not a scikit-learn classifier")
    valid = sorted(default.get_params(deep=False))
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"estimator '{name}' does not take parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(valid)}"
        )
    estimator = cls(**{**DEFAULT_PARAMS.get(name, {}), **params})
    _validate_values(estimator, name)
    return estimator


def _validate_values(estimator: BaseEstimator, name: str) -> None:
    """Check parameter values now rather than at fit time in some fold job.

    Uses sklearn's own declared constraints when the estimator has them.
    """
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as err:  # sklearn's InvalidParameterError subclasses both
        raise ValueError(f"invalid parameter value for estimator '{name}': {err}") from None


def check_estimator(name: str, params: dict[str, Any], *, checked_dir: str | os.PathLike | None = None) -> None:
    """:func:`resolve_estimator`, remembered: a marker in ``checked_dir`` skips the check next time.

    The marker is keyed by the name, the parameters, this module's catalogue
    and the installed scikit-learn version (read from its metadata, without
    importing it), so a passed check is only reused for exactly what passed.

    Raises
    ------
    ValueError
        As :func:`resolve_estimator`.
    """
    import hashlib
    import importlib.metadata
    import json

    marker = None
    if checked_dir is not None:
        what = {"name": name, "params": params, "catalogue": ESTIMATORS, "defaults": DEFAULT_PARAMS,
                "sklearn": importlib.metadata.version("scikit-learn")}
        key = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
        marker = Path(checked_dir) / f"{key}.ok"
        if marker.is_file():
            return
    resolve_estimator(name, params)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
