"""LaBraM (Jiang et al. 2024): a transformer over 1-s patches with a position embedding per channel name."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

#: LaBraM's 128 position-embedding names (braindecode.models.labram.LABRAM_CHANNEL_ORDER) in
#: canonical 10-05 spelling; the legacy T3/T4/T5/T6 rows collapse onto T7/T8/P7/P8, hence 124.
VOCABULARY: tuple[str, ...] = (
    "Fp1", "Fpz", "Fp2", "AF9", "AF7", "AF5", "AF3", "AF1", "AFz", "AF2", "AF4", "AF6", "AF8", "AF10",
    "F9", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "F10", "FT9", "FT7", "FC5", "FC3", "FC1",
    "FCz", "FC2", "FC4", "FC6", "FT8", "FT10", "T9", "T7", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8",
    "T10", "TP9", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "TP10", "P9", "P7", "P5",
    "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "P10", "PO9", "PO7", "PO5", "PO3", "PO1", "POz", "PO2", "PO4",
    "PO6", "PO8", "PO10", "O1", "Oz", "O2", "O9", "CB1", "CB2", "Iz", "O10", "M1", "M2", "A1", "A2",
    "CFC1", "CFC2", "CFC3", "CFC4", "CFC5", "CFC6", "CFC7", "CFC8", "CCP1", "CCP2", "CCP3", "CCP4", "CCP5",
    "CCP6", "CCP7", "CCP8", "T1", "T2", "FTT9h", "TTP7h", "TPP9h", "FTT10h", "TPP8h", "TPP10h",
    "Fp1-F7", "F7-T7", "T7-P7", "P7-O1", "Fp2-F8", "F8-T8", "T8-P8", "P8-O2",
)  # fmt: skip

SPECS = (
    BackboneSpec(
        name="labram",
        model_class="Labram",
        family=Braindecode(
            ch_names_kwarg="ch_names",  # selects the position embeddings; chs_info alone is not enough
            # ... which is what this warning says; eegfm passes ch_names
            quiet=("Labram chs_info does not match",),
        ),
        inputs=Inputs(
            sfreq=200.0,
            length=Length(multiple=200),  # 1-s patches
            channels=Channels(
                description="any subset of its 128 position embeddings (10-05 names, 8 bipolar pairs)",
                vocabulary=VOCABULARY,
                subset=True,
            ),
            scale=1e6 / 100,
            scale_note="µV / 100 (0.1 mV units, LaBraM's dataset preparation, github.com/935963004/LaBraM)",
        ),
        pooling="mean",  # patch tokens, as LaBraM's fine-tuning (use_mean_pooling)
        embedding_dim=200,
        # qkv is computed with F.linear on qkv.weight, bypassing a peft wrapper: eegfm adapts it
        # through a weight parametrization instead (eegfm.finetune.adapters).
        lora_targets=("attn.qkv", "attn.proj", "mlp.0", "mlp.2"),
        pretraining_corpus=("TUEG", "SEED", "Siena Scalp EEG", "BCI Competition IV-1", "Grasp and Lift"),
        pretrained_source="braindecode/labram-pretrained",
    ),
)
