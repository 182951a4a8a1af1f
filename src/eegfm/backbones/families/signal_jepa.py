"""Signal-JEPA (Guetschel et al. 2024): a per-channel conv encoder (+ transformer), four braindecode variants.

The variants share the pretrained conv encoder and its input conventions.
The contextual ones also use the transformer and its channel embedding:
``channel_embedding='pretrain_aligned'`` indexes the published 62-row
embedding by name (so braindecode/signal-jepa loads strictly) and takes any
subset of those channels. The local ones only run the per-channel conv
encoder: any channels.
"""

from __future__ import annotations

from typing import Any

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

#: The 62 pre-training channels (braindecode.models.signal_jepa._PRETRAIN_CHS_INFO), canonical 10-05 spelling.
VOCABULARY: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
    "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9", "O1", "Oz", "O2", "PO10",
    "FC3", "FC4", "C5", "C1", "C2", "C6", "CP3", "CPz", "CP4", "P1", "P2", "POz", "FT9", "FTT9h", "TTP7h",
    "TP7", "TPP9h", "FT10", "FTT10h", "TPP8h", "TP8", "TPP10h", "F9", "F10", "AF7", "AF3", "AF4", "AF8",
    "PO3", "PO4",
)  # fmt: skip

#: nn.Transformer's unused decoder also has self_attn/linear1/linear2:
#: eegfm.finetune.adapters adapts only the encoder's (the modules that run).
TRANSFORMER_TARGETS = ("self_attn", "linear1", "linear2")


def _variant(name: str, model_class: str, *, contextual: bool, **fields: Any) -> BackboneSpec:
    if contextual:
        channels = Channels(
            description="any subset of its 62 pretraining channels (10-05 names)", vocabulary=VOCABULARY, subset=True
        )
        fields = {"init_kwargs": {"channel_embedding": "pretrain_aligned"}, **fields}
    else:
        channels = Channels()
    return BackboneSpec(
        name=name,
        model_class=model_class,
        family=Braindecode(),
        inputs=Inputs(
            sfreq=128.0,
            length=Length(
                minimum=152,  # the conv encoder's receptive field (1.1875 s)
                note="one token per channel every 1 s (128 samples); the last (n - 152) mod 128 samples are unused",
            ),
            channels=channels,
            scale=1e6,
            scale_note="µV: 'rescaled by a factor of 1e6 (volts to microvolts)' (braindecode SignalJEPA docstring)",
        ),
        embedding_dim=64,
        pooling="mean",
        pretraining_corpus=("Lee2019",),
        pretrained_source="braindecode/signal-jepa",
        nominal_seconds=4.0,
        **fields,
    )


SPECS = (
    _variant("signal_jepa", "SignalJEPA", contextual=True, lora_targets=TRANSFORMER_TARGETS),
    _variant("signal_jepa_contextual", "SignalJEPA_Contextual", contextual=True, lora_targets=TRANSFORMER_TARGETS),
    _variant("signal_jepa_post_local", "SignalJEPA_PostLocal", contextual=False),  # local (conv) features only
    # A new (random) spatial filter to 4 virtual channels, then the local features.
    _variant("signal_jepa_pre_local", "SignalJEPA_PreLocal", contextual=False),
)
