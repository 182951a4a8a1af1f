"""Prefetch: hub repos -> local from_pretrained folders (atomic), then used offline by embed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from eegfm import prefetch as prefetch_mod
from eegfm.backbones.checkpoints import weights_id
from eegfm.backbones.registry import get_spec
from eegfm.backbones.weights_check import check_weights
from eegfm.cli import main
from eegfm.config import Backbone, Config, Embedding
from eegfm.embed import embed, open_embeddings
from eegfm.prefetch import RECORD, PrefetchError, prefetch, targets
from eegfm.windows_store import WindowsStoreWriter

CH = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()
REPO = "braindecode/cbramod-pretrained"  # the registry's pretrained_source for cbramod


def _config(**backbone):
    return Config(backbones=[Backbone(name="bandpower"), Backbone(name="cbramod", **backbone)])


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A local folder laid out like the hub, holding a real braindecode ``save_pretrained`` of a 2-layer CBraMod."""
    import warnings

    from braindecode.models import CBraMod

    root = tmp_path_factory.mktemp("hub")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CBraMod(n_chans=19, n_times=800, sfreq=200, n_outputs=4, n_layer=2)
    model.save_pretrained(str(root / REPO))
    return root


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "windows"
    writer = WindowsStoreWriter(str(path), CH, 200.0, 800)
    X = np.random.default_rng(0).normal(scale=1e-5, size=(4, len(CH), 800)).astype(np.float32)
    writer.append(X, [{"subject": f"s{i % 2}", "label": "ab"[i % 2]} for i in range(4)])
    writer.close()
    return str(path)


def test_prefetch_from_a_hub_like_folder_then_embed_offline(hub, windows, tmp_path, capsys):
    assert {p.name for p in (hub / REPO).iterdir()} == {
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "README.md",
    }
    paths = prefetch(_config(), tmp_path / "models", source=hub)
    folder = tmp_path / "models" / REPO
    assert paths == [folder]
    # the pickle copy is not fetched when safetensors are there; nothing temporary is left
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md", RECORD}
    assert not list((tmp_path / "models" / "braindecode").glob(".tmp-*"))
    wid = weights_id(str(folder), 0)
    assert wid.startswith("sha256-dir:")
    out = capsys.readouterr().out
    assert f"{REPO} -> {folder} ({wid})" in out and f"backbones[1] (cbramod):  weights: {folder}" in out
    record = json.loads((folder / RECORD).read_text())
    assert record["repo_id"] == REPO and record["source"] == str((hub / REPO).resolve())
    assert set(record["files"]) == {"config.json", "model.safetensors", "README.md"}

    cfg = Backbone(name="cbramod", weights=str(folder))
    check_weights(get_spec("cbramod"), cfg)  # what the workflow runs at parse time
    cache, emb = str(tmp_path / "cache"), Embedding(batch_size=4)
    pointer = embed(windows, cfg, emb, 0, cache, str(tmp_path / "p.json"), "ds")
    assert pointer["fingerprint"]["weights"] == wid and pointer["fingerprint"]["init_kwargs"]["n_layer"] == 2
    E, _ = open_embeddings(str(tmp_path / "p.json"))
    original = embed(
        windows, Backbone(name="cbramod", weights=str(hub / REPO)), emb, 0, cache, str(tmp_path / "o.json"), "ds"
    )
    assert original["key"] != pointer["key"]  # other files (pytorch_model.bin), other key...
    np.testing.assert_array_equal(E, open_embeddings(str(tmp_path / "o.json"))[0])  # ...same weights, same values


def test_existing_folder_is_reused_and_force_fetches_again(hub, tmp_path):
    prefetch(_config(), tmp_path, source=hub)
    marker = tmp_path / REPO / "config.json"
    marker.write_text("{}")  # a local edit survives a plain re-run
    prefetch(_config(), tmp_path, source=hub)
    assert marker.read_text() == "{}"
    prefetch(_config(), tmp_path, source=hub, force=True)
    assert json.loads(marker.read_text())["n_layer"] == 2


def test_targets_skip_local_weights_and_non_neural_backbones(tmp_path):
    local = tmp_path / "w.safetensors"
    local.write_bytes(b"")
    config = Config(
        backbones=[
            Backbone(name="bandpower"),
            Backbone(name="riemann"),
            Backbone(name="cbramod"),
            Backbone(name="cbramod", id="again", weights=str(tmp_path / "models" / REPO)),  # not there yet
            Backbone(name="cbramod", id="local", weights=str(local)),
        ]
    )
    (found,) = targets(config)
    assert found.repo_id == REPO and found.wanted_by == ["backbones[2] (cbramod)", "backbones[3] (again)"]
    assert [t.repo_id for t in targets(config, ["braindecode/biot-pretrained-prest-16chs"])][-1].endswith("16chs")


def test_only_braindecode_repos_unless_allowed(hub, tmp_path):
    other = hub / "someone" / "model"
    shutil.copytree(hub / REPO, other, dirs_exist_ok=True)
    with pytest.raises(PrefetchError, match="not a braindecode/\\* repo.*--allow-any-org"):
        prefetch(_config(), tmp_path, source=hub, repos=["someone/model"])
    assert not (tmp_path / "braindecode").exists()  # refused before fetching anything
    for bad in ("../etc", "braindecode/../x", "braindecode", "a/b/c"):
        with pytest.raises(PrefetchError, match="not a Hugging Face repo id"):
            prefetch(_config(), tmp_path, source=hub, repos=[bad])
    paths = prefetch(_config(), tmp_path, source=hub, repos=["someone/model"], allow_any_org=True)
    assert paths[-1] == tmp_path / "someone" / "model"


def test_failures_leave_nothing_at_the_destination(hub, tmp_path, monkeypatch):
    with pytest.raises(PrefetchError, match="does not exist; --source must hold <org>/<repo>/"):
        prefetch(Config(backbones=[Backbone(name="bandpower")]), tmp_path, source=hub, repos=["braindecode/not-there"])
    real_copy, copied = shutil.copy2, []

    def dies_on_second_file(src, dst):
        copied.append(src)
        if len(copied) == 2:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(prefetch_mod.shutil, "copy2", dies_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        prefetch(_config(), tmp_path, source=hub)
    assert list((tmp_path / "braindecode").iterdir()) == []  # no folder, no .tmp-* sibling


def test_a_folder_without_weights_is_not_accepted(hub, tmp_path):
    empty = tmp_path / "mirror" / "braindecode" / "cbramod-pretrained"
    empty.mkdir(parents=True)
    (empty / "config.json").write_text("{}")
    with pytest.raises(Exception, match="expected model.safetensors"):
        prefetch(_config(), tmp_path / "models", source=tmp_path / "mirror")
    assert list((tmp_path / "models" / "braindecode").iterdir()) == []


def test_hub_download_is_pinned_to_the_resolved_commit(hub, tmp_path, monkeypatch):
    """The hub path cannot reach the network here: the two huggingface_hub calls are replaced by a local copy."""
    import huggingface_hub

    calls = {}

    class Info:
        sha = "0123456789abcdef0123456789abcdef01234567"
        siblings = [type("S", (), {"rfilename": p.name}) for p in (hub / REPO).iterdir()]

    def model_info(self, repo_id, revision=None):
        calls["info"] = (repo_id, revision)
        return Info()

    def snapshot_download(repo_id, *, revision, local_dir, ignore_patterns=None):
        calls["download"] = (repo_id, revision, ignore_patterns)
        shutil.copytree(
            hub / repo_id, local_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*(ignore_patterns or []))
        )
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    (folder,) = prefetch(_config(), tmp_path, revision="v1")
    assert calls["info"] == (REPO, "v1")
    assert calls["download"] == (REPO, Info.sha, ["*.bin", "*.pth", "*.pt", "*.ckpt"])
    assert not (folder / ".cache").exists() and (folder / "model.safetensors").is_file()
    assert json.loads((folder / RECORD).read_text())["revision"] == Info.sha


def test_cli(hub, tmp_path, capsys):
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump({"backbones": [{"name": "cbramod"}]}))
    args = ["prefetch", "--configfile", str(configfile), "--dest", str(tmp_path / "models"), "--source", str(hub)]
    assert main(args) == 0
    assert f"backbones[0] (cbramod):  weights: {tmp_path / 'models' / REPO}" in capsys.readouterr().out
    assert main([*args, "--repo", "someone/model"]) == 1
    assert "eegfm prefetch: 'someone/model' is not a braindecode/* repo" in capsys.readouterr().err
