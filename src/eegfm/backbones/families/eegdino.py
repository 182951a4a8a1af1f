"""EEG-DINO (Wang et al. 2025): self-distilled transformer over 1-s patches, one embedding slot per input channel."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

SPECS = (
    BackboneSpec(
        name="eegdino",
        model_class="EEGDINO",
        family=Braindecode(),
        inputs=Inputs(
            sfreq=200.0,
            length=Length(multiple=200),  # braindecode zero-pads other lengths
            channels=Channels(description="any, at most 19 (input channel i uses embedding slot i)", max_count=19),
            scale=1e6 / 100,
            scale_note="µV / 100 ('pre-trained on EEG in microvolts scaled by 1/100', braindecode EEGDINO docstring)",
        ),
        pooling="mean",  # patch tokens, as EEG-DINO's fine-tuning head
        embedding_dim=200,
        # qkv is computed with F.linear on qkv.weight, bypassing a peft wrapper: eegfm adapts it
        # through a weight parametrization instead (eegfm.finetune.adapters).
        lora_targets=("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"),
        pretrained_source="braindecode/eegdino-small-pretrained",
    ),
)
