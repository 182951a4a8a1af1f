"""STEEGFormer (Yang et al. 2026): a transformer over 16-sample patches with a 145-slot channel embedding.

braindecode's ``STEEGFormer`` resolves channel names to embedding slots
through a vocabulary file it downloads (``steegformer_channels.json`` from
``braindecode/STEEGFormer-*``). eegfm reads it from the weights folder or
next to a weights file and passes the slots itself (``chan_pos_idx``)
(:class:`SteegformerChannels`); a random init needs none (its channel
embedding starts at zero, so channel i simply takes slot i).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from eegfm.backbones.adapt import BackboneInputError
from eegfm.backbones.checkpoints import BackboneWeightsError
from eegfm.backbones.family import Asset, AssetSource, Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length


@dataclass(frozen=True)
class SteegformerChannels(Asset):
    """STEEGFormer's channel vocabulary: required with pretrained weights, not for a random init."""

    name = "steegformer_channels"
    filename = "steegformer_channels.json"
    offline_note = "yes (pretrained weights need steegformer_channels.json beside them)"

    def resolve(self, spec, cfg) -> AssetSource:
        local = self.beside_weights(cfg.weights)
        if local is not None:
            return AssetSource.of_file(local)
        if cfg.weights:
            repo = spec.pretrained_source or "of the weights"
            raise BackboneWeightsError(
                f"backbone '{cfg.label}' ({spec.model_class}): its pretrained channel embedding is indexed by the "
                f"montage vocabulary {self.filename} (in the Hugging Face repo {repo}), which eegfm never downloads. "
                f"Put {self.filename} in the weights folder {cfg.weights} (prefetch downloads it with the weights), "
                "or next to the weights file"
            )
        return AssetSource(record="identity: channel i -> slot i (random init; the channel embedding starts at zero)")

    def apply(self, spec, kwargs, source, explicit) -> None:
        """The embedding slot of every channel (``chan_pos_idx``), unless the config gives them."""
        if "chan_pos_idx" in explicit:
            return  # the config's explicit slots win, as in braindecode
        names = [ch["ch_name"] for ch in kwargs["chs_info"]]
        if source.path is None:
            kwargs["chan_pos_idx"] = list(range(len(names)))
            return
        index = {name.upper(): i for i, name in enumerate(json.loads(source.path.read_text()))}
        unknown = [n for n in names if n.upper() not in index]
        if unknown:
            raise BackboneInputError(
                f"backbone '{spec.name}': {', '.join(unknown)} are not in the channel vocabulary {source.path}; rename "
                "them with backbones[].channel_aliases, or give backbones[].kwargs.chan_pos_idx"
            )
        kwargs["chan_pos_idx"] = [index[n.upper()] for n in names]


SPECS = (
    BackboneSpec(
        name="steegformer",
        model_class="STEEGFormer",
        family=Braindecode(asset=SteegformerChannels()),
        inputs=Inputs(
            sfreq=250.0,
            # patches of 16 samples (braindecode crops other lengths); the temporal encoding's table
            length=Length(multiple=16, maximum=2047 * 16),
            channels=Channels(
                description="any, at most 145 (pretrained weights: names in its 145-slot vocabulary file)",
                max_count=145,  # slots of its channel embedding
            ),
            scale=1e6,
            scale_note="not stated in braindecode's docs; eegfm feeds µV (unverified)",
        ),
        nominal_seconds=4.096,
        pooling="mean",  # patch tokens, as its default 'avg' read-out
        embedding_dim=512,
        lora_targets=("queries", "keys", "values", "projection"),
        pretrained_source="braindecode/STEEGFormer-small",
    ),
)
