"""MVPFormer (Carzaniga et al. 2026): a transformer over 5-s segments, pretrained on iEEG."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

SPECS = (
    BackboneSpec(
        name="mvpformer",
        model_class="MVPFormer",
        family=Braindecode(),
        inputs=Inputs(
            sfreq=512.0,
            # 5-s segments (braindecode zero-pads other lengths), at most max_segments of them
            length=Length(multiple=2560, maximum=110 * 2560),
            channels=Channels(description="any, at most 128", max_count=128),
            scale=1e6,
            scale_note="any: each segment is RMS-normalised inside the model (iEEG in the paper)",
        ),
        nominal_seconds=5.0,
        pooling="as_is",  # last segment, mean over channels
        embedding_dim=256,
        lora_targets=("q_attn", "c_attn", "c_proj", "gate_proj", "up_proj", "down_proj"),
        pretraining_corpus=("SWEC iEEG",),
    ),
)
