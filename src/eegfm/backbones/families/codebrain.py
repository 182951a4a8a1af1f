"""CodeBrain (Ding et al. 2025): an encoder over 1-s patches, pretrained on TUEG."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Inputs, Length

SPECS = (
    BackboneSpec(
        name="codebrain",
        model_class="CodeBrain",
        family=Braindecode(),
        inputs=Inputs(
            sfreq=200.0,
            length=Length(multiple=200),  # 1-s patches; braindecode trims other lengths silently
            scale=1e6 / 100,
            scale_note="µV / 100 as CBraMod, whose TUEG pipeline CodeBrain reuses (unverified)",
        ),
        pooling="mean",
        embedding_dim=200,
        lora_targets=("attention", "output_linear"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/codebrain-pretrained",
    ),
)
