"""MEDFormer (Wang et al. 2024): multi-granularity patching transformer (no published weights)."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, FeatureTap, Inputs

SPECS = (
    BackboneSpec(
        name="medformer",
        model_class="MEDFormer",
        family=Braindecode(tap=FeatureTap("module_output", "encoder")),  # MEDFormer.forward has no return_features
        inputs=Inputs(sfreq=250.0, scale=1e6, scale_note="µV (no published weights)"),
        pooling="mean",
        embedding_dim=128,
        lora_targets=("query_projection", "key_projection", "value_projection", "out_projection"),
    ),
)
