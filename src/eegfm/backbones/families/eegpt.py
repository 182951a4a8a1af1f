"""EEGPT (Wang et al. 2024): a transformer with summary tokens over 64-sample patches and channel embeddings."""

from __future__ import annotations

from eegfm.backbones.family import Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

#: EEGPT's 62 channel embeddings (braindecode.models.eegpt.EEGPT_CHANNELS), canonical 10-05 spelling.
VOCABULARY: tuple[str, ...] = (
    "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "Cz", "C2", "C4",
    "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1", "Pz",
    "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POz", "PO4", "PO6", "PO8", "O1", "Oz", "O2",
)  # fmt: skip

SPECS = (
    BackboneSpec(
        name="eegpt",
        model_class="EEGPT",
        family=Braindecode(),
        inputs=Inputs(
            sfreq=256.0,
            length=Length(multiple=32, minimum=64),  # patches of 64 samples every 32
            channels=Channels(
                description="any subset of its 62 channel embeddings (10-10 names)", vocabulary=VOCABULARY, subset=True
            ),
            scale=1e3,
            scale_note="mV (EEGPT paper's preprocessing; unverified in braindecode's docs)",
        ),
        # 'none': no learned 19-channel projection, so chs_info selects the channel embeddings.
        init_kwargs={"chan_proj_type": "none"},
        pooling="mean",  # over patches of the 4 summary tokens (4 x 512)
        embedding_dim=2048,
        lora_targets=("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"),
        pretraining_corpus=("PhysioNet MI", "HGD", "TSU", "SEED", "M3CV"),
        pretrained_source="braindecode/eegpt-pretrained",
    ),
)
