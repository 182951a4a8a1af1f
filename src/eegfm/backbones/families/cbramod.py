"""CBraMod (Wang et al. 2025): criss-cross transformer over 1-s patches, pretrained on TUEG."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, FeatureTap, Inputs, Length

SPECS = (
    BackboneSpec(
        name="cbramod",
        model_class="CBraMod",
        # The encoder output: CBraMod's `proj_out` is its patch-reconstruction head
        # (d_model -> 200 samples), replaced by Identity in all of its fine-tuning code.
        family=Braindecode(tap=FeatureTap("module_output", "encoder")),
        inputs=Inputs(
            sfreq=200.0,
            length=Length(multiple=200),
            scale=1e6 / 100,  # CBraMod was pretrained on µV / 100
            scale_note="µV / 100: CBraMod's TUEG preprocessing (github.com/wjq-learning/CBraMod)",
        ),
        pooling="mean",
        embedding_dim=200,
        # Peft wraps whole nn.MultiheadAttention modules (their out_proj alone gets no gradient).
        lora_targets=("self_attn_s", "self_attn_t", "linear1", "linear2"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/cbramod-pretrained",
    ),
)
