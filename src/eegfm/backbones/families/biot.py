"""BIOT (Yang et al. 2023): a linear transformer over per-channel STFT tokens of the double-banana montage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eegfm.backbones.channels import DOUBLE_BANANA
from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

#: Channel tokens of the registered checkpoints: the 16 derivations, plus SHHS's C3-A2, C4-A1.
CHECKPOINT_TOKENS = 18


@dataclass(frozen=True)
class Biot(Braindecode):
    """BIOT built with the checkpoint's 18 channel tokens, fed the 16 bipolar derivations.

    BIOT's own fine-tuning reads the 16 derivations through the first 16
    tokens of its 18-token checkpoints; tokens 16-17 (SHHS's C3-A2, C4-A1)
    stay unused on EEG. ``chs_info`` would have to name every token, so none
    is passed.
    """

    def slots(self, plan) -> dict[str, Any]:
        return {"n_chans": CHECKPOINT_TOKENS, "chs_info": None}


SPECS = (
    BackboneSpec(
        name="biot",
        model_class="BIOT",
        family=Biot(
            # The official release (github.com/ycq091044/BIOT, pretrained-models/*.ckpt) is the
            # state dict of its BIOTEncoder, loaded there into BIOTClassifier.biot: no prefix,
            # plus the frozen channel-index Parameter `index` (a non-persistent buffer in
            # braindecode). braindecode keeps the encoder under `encoder.`.
            key_remap=(
                (r"^(?:model\.)?biot\.", ""),  # BIOTClassifier / UnsupervisedPretrain (+ Lightning) wrappers
                (r"^(?:model\.)?(?:classifier|prediction)\.", None),  # their heads: never used for features
                (r"^index$", None),
                (r"^(patch_embedding|transformer|positional_encoding|channel_tokens)\.", r"encoder.\1."),
            ),
            # BIOT's STFT uses torch's default rectangular window on purpose (as pretrained)
            quiet=("A window was not provided",),
        ),
        inputs=Inputs(
            sfreq=200.0,
            length=Length(minimum=200),  # below 1 s BIOT silently changes its STFT size (n_fft)
            # BIOT's README: the 16 derivations of its TUAB/TUEV/PREST data.
            channels=Channels(
                description="16 longitudinal bipolar derivations (double banana) from referential 10-20 channels",
                montage=DOUBLE_BANANA,
            ),
            scale=1e6,  # µV before the per-channel q95 normalisation of BIOT's loaders
            norm="channel_q95",
            scale_note="µV, then each channel / its 95th percentile of |x| (BIOT's TUAB/TUEV loaders)",
        ),
        pooling="as_is",
        embedding_dim=256,
        lora_targets=("to_q", "to_k", "to_v", "to_out"),
        pretraining_corpus=("SHHS", "PREST"),
        pretrained_source="braindecode/biot-pretrained-shhs-prest-18chs",
    ),
)
