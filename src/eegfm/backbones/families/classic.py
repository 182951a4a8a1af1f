"""Supervised braindecode CNNs as random-init baselines: their penultimate activations are the features."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, FeatureTap, Inputs, Length

#: The input of the classifier = the penultimate activations.
PENULTIMATE = Braindecode(tap=FeatureTap("module_input", "final_layer"))


def classic(name: str, model_class: str, sfreq: float, n_times_min: int) -> BackboneSpec:
    """A supervised braindecode CNN trained from scratch (no pretraining convention), read before its classifier."""
    return BackboneSpec(
        name=name,
        model_class=model_class,
        family=PENULTIMATE,
        inputs=Inputs(
            sfreq=sfreq,
            length=Length(minimum=n_times_min),
            scale=1e6,
            scale_note="µV (trained from scratch; no pretraining convention)",
        ),
        pooling="flatten",
        nominal_seconds=4.0,
    )


SPECS = (
    classic("shallow_fbcsp", "ShallowFBCSPNet", 250.0, n_times_min=99),
    classic("eegnet", "EEGNet", 128.0, n_times_min=27),
    classic("deep4", "Deep4Net", 250.0, n_times_min=441),  # shorter: braindecode shrinks its kernels
)
