"""The workflow's own pretrained weights are checked against the sha256 of their manifest before a job loads them."""

from __future__ import annotations

import pytest

from eegfm.config import Backbone, Embedding, Pretrain
from eegfm.integrity import DamagedStoreError
from eegfm.pretrain.run import run_pretrain
from eegfm.pretrain.verify import verify_weights


@pytest.fixture(scope="module")
def pretrained(ft_data, tmp_path_factory):
    recipe = Pretrain(backbone="cbramod", kwargs={"n_layer": 1}, recipe="supervised-source", datasets=["x"],
                      batch_size=16, epochs=1)
    out = tmp_path_factory.mktemp("pre") / "p"
    manifest = run_pretrain([ft_data["windows"]], recipe, "p", 0, out)
    return out, manifest


def test_intact_weights_pass(pretrained):
    out, manifest = pretrained
    assert verify_weights(out) == manifest["sha256"]


def test_damaged_weights_name_the_file_and_the_rule_and_nothing_is_embedded(pretrained, ft_data, tmp_path):
    import shutil

    from eegfm.embed import embed

    out = shutil.copytree(pretrained[0], tmp_path / "p")
    weights = out / "weights/model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the tensors: still loads, different weights
    weights.write_bytes(bytes(data))
    pattern = rf"pretrained weights {weights} do not match the sha256 in {out / 'manifest.json'}.*rule pretrain"
    with pytest.raises(DamagedStoreError, match=pattern):
        verify_weights(out)
    cfg = Backbone(name="cbramod", kwargs={"n_layer": 1}, weights=str(out / "weights"))
    with pytest.raises(DamagedStoreError, match="do not match"):
        embed(str(ft_data["windows"]), cfg, Embedding(batch_size=16), 0, str(tmp_path / "cache"),
              str(tmp_path / "e.json"), "x", pretrain_dir=str(out))
    assert not (tmp_path / "cache").exists() and not (tmp_path / "e.json").exists()
