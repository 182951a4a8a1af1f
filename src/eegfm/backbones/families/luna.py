"""LUNA (Döner et al. 2025): cross-attention from channels to a few queries, with channel-location embeddings."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, FeatureTap, Inputs, Length

SPECS = (
    BackboneSpec(
        name="luna",
        model_class="LUNA",
        family=Braindecode(tap=FeatureTap("module_output", "norm")),  # LUNA.forward has no return_features
        inputs=Inputs(
            sfreq=256.0,
            length=Length(multiple=40),  # patches of 40 samples
            # channel-location embedding from chs_info
            channels=Channels(description="any, with positions", needs_positions=True),
            scale=1e6,
            scale_note="not stated in braindecode's docs; eegfm feeds µV (unverified)",
        ),
        nominal_seconds=5.0,
        pooling="mean",
        embedding_dim=256,
        lora_targets=("attn.qkv_proj", "attn.proj", "mlp.fc1", "mlp.fc2"),
        pretraining_corpus=("TUEG", "Siena Scalp EEG"),
        pretrained_source="PulpBio/LUNA",
    ),
)
