"""The probe's estimators are checked when the config is validated, without importing the probe."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eegfm.config import ConfigError, load_config
from eegfm.estimators import REGRESSORS, resolve_estimator


def test_validating_the_config_does_not_import_the_probe():
    code = (
        "import sys\n"
        "from eegfm.config import load_config\n"
        "load_config({'probe': {'estimator': 'logistic_regression', 'params': {'C': 0.5}}})\n"
        "assert 'eegfm.probe' not in sys.modules, 'validating the config imported eegfm.probe'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_bad_estimator_or_parameter_stops_validation():
    with pytest.raises(ConfigError, match="probe.estimator: unknown estimator 'svm'"):
        load_config({"probe": {"estimator": "svm"}})
    with pytest.raises(ConfigError, match="probe.estimator: estimator 'knn' does not take parameter"):
        load_config({"probe": {"estimator": "knn", "params": {"C": 1.0}}})


def test_importing_the_estimators_imports_no_scikit_learn():
    code = "import sys, eegfm.estimators; assert 'sklearn' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_a_passed_check_is_remembered_so_parsing_the_workflow_again_imports_no_sklearn(tmp_path):
    """Every snakemake invocation validates the config; scikit-learn's import (seconds) is paid once per check."""
    from eegfm.estimators import check_estimator

    with pytest.raises(ValueError, match="does not take parameter"):
        check_estimator("logistic_regression", {"nonsense": 1}, checked_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # a failed check is never remembered
    code = ("import sys; from eegfm.config import load_config; "
            f"load_config({{'probe': {{'params': {{'C': 0.5}}}}}}, checked_dir={str(tmp_path)!r}); "
            "print('sklearn' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (first.stdout.strip(), again.stdout.strip()) == ("True", "False")
    other = code.replace("0.5", "0.25")  # other parameters: checked (and remembered) on their own
    assert subprocess.run([sys.executable, "-c", other], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_the_default_probe_is_validated_without_importing_scikit_learn(tmp_path):
    """A catalogue name without parameters cannot fail (every entry is tested to build: below for regressors,
    tests/test_probe.py for classifiers): no import at parse."""
    code = ("import sys; from eegfm.config import load_config; "
            f"load_config({{'probe': {{'estimator': 'lda'}}}}, checked_dir={str(tmp_path)!r}); "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


# ----------------------------------------------------------------------------- regressors


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_every_short_regressor_name_builds_a_regressor(name):
    from sklearn.base import is_regressor

    assert is_regressor(resolve_estimator(name, {}, "regression"))


def test_one_short_name_means_the_kind_of_its_target():
    assert type(resolve_estimator("ridge", {}, "classification")).__name__ == "RidgeClassifier"
    assert type(resolve_estimator("ridge", {"alpha": 3.0}, "regression")).__name__ == "Ridge"
    assert resolve_estimator("lasso", {}, "regression").max_iter == 10000  # default cap
    assert resolve_estimator("sklearn.svm.SVR", {"C": 2.0}, "regression").C == 2.0


def test_a_classifier_for_a_regression_target_or_the_reverse_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"probe.regressor: unknown regressor 'logistic_regression'; "
                                          r"'logistic_regression' is a classifier \(probe.estimator\)"):
        load_config({"probe": {"regressor": "logistic_regression"}})
    with pytest.raises(ConfigError, match=r"probe.estimator: unknown estimator 'lasso'; 'lasso' is a regressor "
                                          r"\(probe.regressor\)"):
        load_config({"probe": {"estimator": "lasso"}})
    with pytest.raises(ConfigError, match="probe.regressor: 'sklearn.linear_model.LogisticRegression' is not a "
                                          "scikit-learn regressor"):
        load_config({"probe": {"regressor": "sklearn.linear_model.LogisticRegression"}})
    with pytest.raises(ConfigError, match="probe.estimator: 'sklearn.linear_model.Ridge' is not a scikit-learn "
                                          "classifier"):
        load_config({"probe": {"estimator": "sklearn.linear_model.Ridge"}})
    with pytest.raises(ConfigError, match=r"probe.regressor: regressor 'ridge' does not take parameter\(s\) C"):
        load_config({"probe": {"regressor_params": {"C": 1.0}}})
    with pytest.raises(ConfigError, match="probe.regressor: invalid parameter value"):
        load_config({"probe": {"regressor_params": {"alpha": -1.0}}})
