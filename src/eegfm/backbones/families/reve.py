"""REVE (El Ouahidi et al. 2025): 1-s patches every 0.9 s with 4D positional encodings from a position bank.

braindecode's ``REVE`` downloads its position bank (``reve_positions.json``,
``{name: [x, y, z]}``) at construction. eegfm supplies it from local paths
instead (:class:`RevePositions`): the weights folder, else MNE's
``REVE_POSITIONS_PATH`` config (braindecode's own lookup); without either,
one built from MNE's template montage stands in for it, which gives a
different fingerprint than the real file REVE was pretrained with.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eegfm.backbones.adapt import BackboneInputError
from eegfm.backbones.channels import STANDARD_MONTAGE, standard_names, template_position
from eegfm.backbones.family import Asset, AssetSource, Braindecode
from eegfm.backbones.spec import BackboneSpec, Channels, Inputs, Length

#: braindecode reads the bank from this MNE config key (the environment wins over ``~/.mne``).
POSITIONS_KEY = "REVE_POSITIONS_PATH"


def template_bank() -> dict[str, list[float]]:
    """``{name: [x, y, z]}`` (m, head frame) of every channel of MNE's template montage."""
    return {name: template_position(name) for name in standard_names()}


def _mne_config(key: str) -> str | None:
    """An MNE config value (the environment wins over ``~/.mne``), as braindecode reads it."""
    if key in os.environ:
        return os.environ[key]
    import mne

    return mne.get_config(key, None)


@dataclass(frozen=True)
class RevePositions(Asset):
    """REVE's position bank, from the weights folder, MNE's config, or MNE's template."""

    name = "reve_positions"
    filename = "reve_positions.json"
    offline_note = "yes (position bank: a local reve_positions.json, else MNE's template)"

    def resolve(self, spec, cfg) -> AssetSource:
        local = self.beside_weights(cfg.weights)
        if local is None:
            configured = _mne_config(POSITIONS_KEY)
            candidate = Path(configured).expanduser() / self.filename if configured else None
            local = candidate if candidate is not None and candidate.is_file() else None
        if local is None:
            import mne

            return AssetSource(record=f"mne-template:{STANDARD_MONTAGE} (mne {mne.__version__})")
        return AssetSource.of_file(local)

    def apply(self, spec, kwargs, source, explicit) -> None:
        """Name every channel as the bank does (it is looked up by exact name); refuse unknown ones."""
        known = json.loads(source.path.read_text()) if source.path else dict.fromkeys(template_bank())
        by_upper = {k.upper(): k for k in known}
        unknown = [ch["ch_name"] for ch in kwargs["chs_info"] if ch["ch_name"].upper() not in by_upper]
        if unknown:
            raise BackboneInputError(
                f"backbone '{spec.name}': REVE's position bank ({source.record}) has no position for "
                f"{', '.join(unknown)}; rename them with backbones[].channel_aliases"
            )
        for ch in kwargs["chs_info"]:
            ch["ch_name"] = by_upper[ch["ch_name"].upper()]

    @contextlib.contextmanager
    def in_place(self, source):
        """A folder holding the bank under its expected name, named by ``REVE_POSITIONS_PATH`` meanwhile."""
        with tempfile.TemporaryDirectory(prefix="eegfm-reve-") as tmp:
            if source is not None and source.path is not None:
                folder = source.path.parent
                if source.path.name != self.filename:
                    folder = Path(tmp)
                    (folder / self.filename).write_bytes(source.path.read_bytes())
            else:
                folder = Path(tmp)
                (folder / self.filename).write_text(json.dumps(template_bank(), sort_keys=True))
            previous = os.environ.get(POSITIONS_KEY)
            os.environ[POSITIONS_KEY] = str(folder)
            try:
                yield
            finally:
                if previous is None:
                    os.environ.pop(POSITIONS_KEY, None)
                else:
                    os.environ[POSITIONS_KEY] = previous


SPECS = (
    BackboneSpec(
        name="reve",
        model_class="REVE",
        family=Braindecode(asset=RevePositions()),
        inputs=Inputs(
            sfreq=200.0,
            length=Length(
                minimum=200, note="1-s patches every 0.9 s: the last (n - 200) mod 180 samples are unused"
            ),
            channels=Channels(description="any 10-05 names (positions from REVE's bank, else MNE's template)"),
            scale=1e6,
            norm="channel_zscore_clip15",
            scale_note=(
                "pretraining z-scored each channel and clipped at 15 sd (braindecode REVE docstring); eegfm "
                "z-scores per window, not per recording"
            ),
        ),
        nominal_seconds=10.0,
        pooling="mean",
        embedding_dim=512,
        lora_targets=("to_qkv", "to_out"),
        pretraining_corpus=("REVE corpus",),
        pretrained_source="brain-bzh/reve-base",
    ),
)
