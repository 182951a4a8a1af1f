"""Channel positions: a recording's own where it carries them, else the 10-05 template, on a real file."""

from __future__ import annotations

import logging

import numpy as np

from eegfm.recordings import Recording, read_raw
from eegfm.windowing.positions import channel_positions, template_positions

EEGLAB = "sccn+eeglab/sample_data/eeglab_data.set"  # 32 channels with their own (digitised) locations


def test_a_recordings_own_positions_win_over_the_template(real_data):
    raw = read_raw(Recording(path=str(real_data / EEGLAB), subject="s"))
    own = channel_positions(raw.info)
    locs = {ch["ch_name"]: ch["loc"][:3] for ch in raw.info["chs"]}
    assert set(own) == set(raw.ch_names)  # EOG1/EOG2 have locations in the file, so they keep them
    assert all(np.allclose(own[name], locs[name]) for name in own)
    template = template_positions(raw.ch_names)
    assert not np.allclose(own["F3"], template["F3"], atol=1e-3)  # the file's F3, not the template's


def test_a_channel_without_any_position_is_named_in_the_log(caplog):
    caplog.set_level(logging.INFO, logger="eegfm.windowing.positions")
    found = template_positions(["C3", "Cz", "EOG1", "EXG1"])
    assert set(found) == {"C3", "Cz"} and all(np.linalg.norm(found[c]) < 0.2 for c in found)
    assert "no position for 2 of 4 channels: EOG1, EXG1" in caplog.text
    assert template_positions(["EXG1"]) is None
