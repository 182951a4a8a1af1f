"""The probe's estimators: short names, dotted scikit-learn paths, and their parameters checked early.

Two catalogues, one per kind of target: :data:`ESTIMATORS` (classifiers, the
config's ``probe.estimator`` and ``probe.params``) and :data:`REGRESSORS`
(``probe.regressor`` and ``probe.regressor_params``, for datasets with
``target: regression``). A short name means what its catalogue says
(``ridge`` is ``RidgeClassifier`` for a classification target and ``Ridge``
for a regression target); a dotted ``sklearn.`` path must be of the right
kind. :func:`resolve_estimator` builds the unfitted estimator. The config
validator calls it at parse time, so a bad name, a classifier given for a
regression target (or the reverse) or a bad parameter stops the run before
any job; this module imports scikit-learn only inside that call and nothing
of eegfm. :func:`check_estimator` skips a catalogue name without parameters
(the catalogue is tested) and remembers any other passed check, so the
workflow's parse (every ``snakemake`` invocation) imports scikit-learn at most
once per checked estimator and parameters, and never for the defaults.
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

REGRESSORS: dict[str, str] = {
    "ridge": "sklearn.linear_model.Ridge",
    "lasso": "sklearn.linear_model.Lasso",
    "elastic_net": "sklearn.linear_model.ElasticNet",
    # the linear epsilon-insensitive SVR scales to many windows like LinearSVC
    "linear_svr": "sklearn.svm.LinearSVR",
    "random_forest": "sklearn.ensemble.RandomForestRegressor",
    "knn": "sklearn.neighbors.KNeighborsRegressor",
}

#: catalogue, config keys (name, params) and sklearn's test of the kind, per kind of target
KINDS: dict[str, tuple[dict[str, str], str, str]] = {
    "classification": (ESTIMATORS, "probe.estimator", "is_classifier"),
    "regression": (REGRESSORS, "probe.regressor", "is_regressor"),
}

# Applied under the user's params for short names only: sklearn's default
# iteration caps stop these solvers before they converge on standardized
# embeddings of a few hundred dimensions.
DEFAULT_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {"logistic_regression": {"max_iter": 2000}, "linear_svm": {"max_iter": 10000}},
    "regression": {"lasso": {"max_iter": 10000}, "elastic_net": {"max_iter": 10000}, "linear_svr": {"max_iter": 10000}},
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


def resolve_estimator(name: str, params: dict[str, Any], kind: str = "classification") -> BaseEstimator:
    """Build an unfitted classifier or regressor from a short name or a dotted sklearn path.

    Parameters
    ----------
    name
        A key of the kind's catalogue (:data:`ESTIMATORS` or
        :data:`REGRESSORS`) or a dotted path starting with ``sklearn.``,
        e.g. ``"sklearn.svm.SVC"``.
    params
        Constructor parameters; for a short name they are merged over
        :data:`DEFAULT_PARAMS`.
    kind
        ``"classification"`` or ``"regression"``: the kind of target the
        estimator must fit.

    Returns
    -------
    sklearn.base.BaseEstimator
        The estimator with ``params`` set.

    Raises
    ------
    ValueError
        Unknown name (lists the kind's short names, and says when the name
        belongs to the other kind), an estimator of the wrong kind, a
        parameter the estimator does not take (names it and lists the valid
        ones), or a value sklearn rejects. Messages start with no key; the
        caller names it (:data:`KINDS`).
    """
    import sklearn.base

    if kind not in KINDS:
        raise ValueError(f"unknown kind of target '{kind}'; allowed: {', '.join(KINDS)}")
    catalogue, _, test = KINDS[kind]
    if name in catalogue:
        path = catalogue[name]
    elif name.startswith("sklearn.") and name.count(".") >= 2:
        path = name
    else:
        other = next((k for k, (names, _, _) in KINDS.items() if k != kind and name in names), None)
        hint = f"; '{name}' is a {'classifier' if other == 'classification' else 'regressor'} ({KINDS[other][1]})" \
            if other else ""
        raise ValueError(
            f"unknown {_noun(kind)} '{name}'{hint}; use one of {', '.join(catalogue)} or a dotted path "
            f"starting with 'sklearn.' (e.g. {'sklearn.svm.SVR' if kind == 'regression' else 'sklearn.svm.SVC'})"
        )
    cls = import_class(path)
    try:
        default = cls()
    except TypeError as err:
        raise ValueError(f"'{path}' cannot be built without arguments: {err}") from None
    if not (hasattr(default, "get_params") and getattr(sklearn.base, test)(default)):
        role = "regressor" if kind == "regression" else "classifier"
        raise ValueError(f"'{path}' is not a scikit-learn {role}, which a {kind} target needs")
    valid = sorted(default.get_params(deep=False))
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"{_noun(kind)} '{name}' does not take parameter(s) {', '.join(unknown)}; valid parameters: "
            f"{', '.join(valid)}"
        )
    estimator = cls(**{**DEFAULT_PARAMS[kind].get(name, {}), **params})
    _validate_values(estimator, name)
    return estimator


def _noun(kind: str) -> str:
    return "regressor" if kind == "regression" else "estimator"


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


def check_estimator(name: str, params: dict[str, Any], kind: str = "classification", *,
                    checked_dir: str | os.PathLike | None = None) -> None:
    """:func:`resolve_estimator`, remembered: a marker in ``checked_dir`` skips the check next time.

    A short name of the kind's catalogue without parameters is not checked
    at all: every catalogue entry is tested to build with its defaults.

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

    if kind in KINDS and name in KINDS[kind][0] and not params:
        # A catalogue name with its catalogue defaults: the catalogue is tested (every entry builds an estimator
        # of its kind: tests/test_probe.py, tests/test_estimators.py), so the default config imports no sklearn
        # at parse.
        return
    marker = None
    if checked_dir is not None:
        what = {"name": name, "params": params, "kind": kind, "catalogue": KINDS[kind][0] if kind in KINDS else None,
                "defaults": DEFAULT_PARAMS, "sklearn": importlib.metadata.version("scikit-learn")}
        key = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
        marker = Path(checked_dir) / f"{key}.ok"
        if marker.is_file():
            return
    resolve_estimator(name, params, kind)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
