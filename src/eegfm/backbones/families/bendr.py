"""BENDR (Kostas et al. 2021): a convolutional encoder + transformer, fed dn3's 19 10-20 channels plus SCALE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eegfm.backbones.channels import CHANNELS_1020
from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length


@dataclass(frozen=True)
class Bendr(Braindecode):
    """BENDR is built without ``chs_info``: it checks the names against its 20-name order, SCALE included."""

    def slots(self, plan) -> dict[str, Any]:
        return {**super().slots(plan), "chs_info": None}


SPECS = (
    BackboneSpec(
        name="bendr",
        model_class="BENDR",
        # dn3's To1020 appends SCALE; dn3 sets it to 0 when no dataset-wide range is known.
        family=Bendr(constant_channels=(("SCALE", 0.0),)),
        inputs=Inputs(
            sfreq=256.0,
            length=Length(minimum=96),  # one BENDR vector per 96 samples
            channels=Channels(
                description="the 19 10-20 channels in BENDR's order, plus its SCALE channel (set to 0)",
                vocabulary=CHANNELS_1020,
            ),
            scale=1e6,
            norm="window_minmax",
            scale_note="pretraining min-max-normalised each window to [-1, 1] (dn3 MappingDeep1010)",
        ),
        pooling="as_is",  # the start-token output
        embedding_dim=512,
        lora_targets=("self_attn", "linear1", "linear2"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/braindecode-bendr",
    ),
)
