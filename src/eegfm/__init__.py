"""eegfm: measure how well pretrained EEG foundation models decode your own EEG.

From Python: ``eegfm.Experiment(config).run(X, metadata, sfreq=..., ch_names=...)``
runs the workflow's stages on windows in memory (:mod:`eegfm.api`), and
``eegfm.load_results("results")`` opens a finished run (:mod:`eegfm.results`).
Both are imported on first use, so ``import eegfm`` stays light.
"""

from eegfm.version import __version__

__all__ = ["Experiment", "ExperimentConfig", "Results", "__version__", "load_results"]


def __getattr__(name: str):
    if name in ("Experiment", "ExperimentConfig"):
        from eegfm import api

        return getattr(api, name)
    if name in ("Results", "load_results"):
        from eegfm import results

        return getattr(results, name)
    raise AttributeError(f"module 'eegfm' has no attribute {name!r}")
