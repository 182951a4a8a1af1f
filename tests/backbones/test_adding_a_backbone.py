"""docs/adding-a-backbone.md works: its family file, dropped into a copy of the package, is a backbone.

The test takes the family file the document shows (EEGConformer, a model
the registry does not have), writes it into a copy of ``src/eegfm``, and in
a fresh process on that copy: finds it in the registry, fingerprints it,
embeds a tiny windows store with it, and fine-tunes it for one step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eegfm.backbones.registry import REGISTRY
from tests.finetune.conftest import ft_data  # noqa: F401 — the small real dataset of the fine-tuning tests

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "adding-a-backbone.md"


def _documented_family_file() -> tuple[str, str]:
    """``(file name, code)`` of the family file the document shows."""
    match = re.search(r"<!-- family-file: (\S+) -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"{DOC} shows no family file (a ```python block after <!-- family-file: NAME.py -->)"
    return match.group(1), match.group(2)


@pytest.mark.slow
def test_the_documented_family_file_adds_a_working_backbone(tmp_path, ft_data):  # noqa: F811
    name, code = _documented_family_file()
    backbone = name.removesuffix(".py")
    assert backbone not in REGISTRY, f"{backbone} is registered already: document a model that is not"
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "eegfm", src / "eegfm", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "eegfm" / "backbones" / "families" / name).write_text(code)  # step 1 of the document

    script = textwrap.dedent(
        f"""
        import json, math
        import numpy as np
        import eegfm
        from eegfm.backbones.adapt import plan_input
        from eegfm.backbones.build import build_extractor
        from eegfm.backbones.fingerprint import fingerprint
        from eegfm.backbones.registry import get_spec
        from eegfm.config import Backbone, Embedding, Finetune
        from eegfm.embed import embed, open_embeddings
        from eegfm.finetune.run import run_finetune
        from eegfm.windows_store import open_windows

        assert eegfm.__file__.startswith({str(src)!r}), eegfm.__file__  # the copy, not the installed package
        spec, cfg = get_spec({backbone!r}), Backbone(name={backbone!r})
        windows = open_windows({str(ft_data["windows"])!r})
        plan = plan_input(spec, windows.info, cfg=cfg)
        fp = fingerprint(spec, cfg, plan, 0)
        extractor = build_extractor(spec, cfg, plan, 0)
        E = extractor(np.asarray(windows.X[:3]))
        pointer = embed({str(ft_data["windows"])!r}, cfg, Embedding(batch_size=16), 0, {str(tmp_path / "cache")!r},
                        {str(tmp_path / "pointer.json")!r}, "tiny")
        stored, _ = open_embeddings({str(tmp_path / "pointer.json")!r})
        ft = Finetune(backbones=[{backbone!r}], optim={{"max_epochs": 1, "batch_size": 256, "warmup_epochs": 0}})
        record = run_finetune({str(ft_data["windows"])!r}, {str(ft_data["folds"])!r}, 0, cfg, ft, "full", 0,
                              {str(tmp_path / "ft")!r}, dataset="tiny")
        history = open({str(tmp_path / "ft" / "history.tsv")!r}).read().splitlines()
        print(json.dumps({{
            "fingerprint": fp, "dim": int(E.shape[1]), "n_windows": int(windows.X.shape[0]),
            "stored": list(stored.shape), "finite": bool(np.isfinite(stored).all()), "status": record["status"],
            "n_train": record["n_train"], "trainable": record["trainable_params"], "history": history,
            "accuracy": record["metrics"]["balanced_accuracy"],
        }}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    fp = out["fingerprint"]
    assert fp["backbone"] == backbone and fp["model_class"] == "EEGConformer" and fp["kind"] == "braindecode"
    assert fp["features"]["source"] == "module_input" and fp["input"]["resampled_to"] == 250.0
    assert out["dim"] == 32 and out["stored"] == [out["n_windows"], 32] and out["finite"]
    assert out["status"] == "ok" and out["trainable"] > 0 and out["accuracy"] is not None
    epochs = [line for line in out["history"][1:] if line.strip()]
    assert len(epochs) == 1 and out["n_train"] <= 256, out["history"]  # one epoch of one step


@pytest.mark.parametrize("step", ["EEGFM_PIN_FINGERPRINTS=1", "eegfm schema --write", "eegfm backbones"])
def test_the_document_names_every_step(step):
    assert step in DOC.read_text()
