"""PBT (Klein et al. 2025): a patched brain transformer with a CLS token (no published weights)."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, FeatureTap, Inputs, Length

SPECS = (
    BackboneSpec(
        name="pbt",
        model_class="PBT",
        # the CLS token fed to the head; PBT.forward has no return_features
        family=Braindecode(tap=FeatureTap("module_input", "final_layer")),
        inputs=Inputs(
            sfreq=250.0,
            length=Length(multiple=64),  # per-channel patches of 64 samples (others straddle channels)
            scale=1e6,
            scale_note="µV (no published weights)",
        ),
        nominal_seconds=4.096,
        pooling="as_is",
        embedding_dim=128,
        lora_targets=("mhsa.attn", "mhsa.proj", "proj_in", "feed_forward.proj"),
    ),
)
