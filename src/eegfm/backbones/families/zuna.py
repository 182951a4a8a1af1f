"""ZUNA (Warner et al. 2026): 32-sample tokens per channel with 4D rotary channel positions."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

SPECS = (
    BackboneSpec(
        name="zuna",
        model_class="ZUNA",
        family=Braindecode(),
        inputs=Inputs(
            sfreq=256.0,
            length=Length(multiple=32, maximum=256 * 32),  # 32-sample tokens, at most max_seqlen coarse-time rows
            # 4D rotary positions from chs_info
            channels=Channels(description="any, with positions", needs_positions=True),
            scale=1e6,
            scale_note=(
                "ZUNA's pipeline z-scores each recording and divides by a data norm; eegfm feeds µV (unverified)"
            ),
        ),
        nominal_seconds=2.0,  # ZUNA1.1 pretrained on 0.5-30 s windows; attention over 2 x channels x 8 tokens/s
        pooling="flatten",  # per-channel latents (channels x 32), as braindecode's head reads them
        lora_targets=("wq", "wk", "wv", "wo", "w1", "w2", "w3"),
        pretraining_corpus=("ZUNA public EEG",),
        pretrained_source="braindecode/ZUNA",
    ),
)
