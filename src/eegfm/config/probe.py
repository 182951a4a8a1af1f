"""The ``probe`` section: the scikit-learn estimator fit on frozen embeddings.

Only names and parameters live here; whether they make an estimator is
checked by :func:`eegfm.config.load.load_config` through
:mod:`eegfm.estimators`, so that importing the config never imports
scikit-learn.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from eegfm.config.base import StrictModel


class Probe(StrictModel):
    """The scikit-learn classifier (or regressor, for regression targets) fit on frozen embeddings of the
    training fold."""

    estimator: str = Field(
        "logistic_regression",
        description="Classifier after StandardScaler: a short name (logistic_regression, lda, "
        "linear_svm, ridge, random_forest, knn) or a dotted sklearn path such as "
        "'sklearn.svm.SVC'.",
    )
    params: dict[str, Any] = Field(
        default={},
        description="Constructor parameters of the estimator (unknown names are an error); "
        "unset ones keep scikit-learn's defaults, except max_iter, raised for the iterative linear models.",
    )
    regressor: str = Field(
        "ridge",
        description="Regressor of datasets with target: regression, after StandardScaler: a short name (ridge, "
        "lasso, elastic_net, linear_svr, random_forest, knn) or a dotted sklearn path such as "
        "'sklearn.svm.SVR'. A classifier here (or a regressor as 'estimator') is an error.",
    )
    regressor_params: dict[str, Any] = Field(
        default={},
        description="Constructor parameters of the regressor (unknown names are an error); unset ones keep "
        "scikit-learn's defaults, except max_iter, raised for lasso, elastic_net and linear_svr.",
    )
    scale: bool = Field(
        True,
        description="Put a StandardScaler (fit on the training fold) before the estimator; for a regression "
        "target, also standardise the target on the training fold (predictions are mapped back to its units).",
    )
