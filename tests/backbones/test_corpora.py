"""Pretraining-corpus overlap by exact dataset identifiers, aliases and containment (TUAB is part of TUEG)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from eegfm.backbones.corpora import BY_ID, CORPORA, corpora_table, corpus_overlap, identify, warn_corpus_overlap
from eegfm.backbones.registry import REGISTRY, get_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding-a-backbone.md"


def test_corpus_overlap_is_warned_and_recorded():
    assert corpus_overlap(["TUEG", "mystudy"], ("TUEG", "TUAB")) == ["TUEG"]
    assert corpus_overlap(["tueg"], ("TUEG",)) == ["tueg"]
    assert corpus_overlap(["mystudy"], ("TUEG",)) == []


def test_a_part_of_a_pretraining_dataset_overlaps_with_it():
    """TUAB, TUEV, TUSZ, … are subsets of the TUH EEG Corpus: a model pretrained on TUEG has seen them."""
    cbramod = get_spec("cbramod").pretraining_corpus
    assert corpus_overlap(["TUAB"], cbramod) == ["TUAB (part of TUEG)"]
    assert corpus_overlap(["tusz", "TUH EEG Events Corpus"], cbramod) == [
        "TUH EEG Events Corpus (part of TUEG)", "tusz (part of TUEG)",
    ]  # fmt: skip
    assert corpus_overlap(["TUH EEG"], cbramod) == ["TUH EEG"]  # an alias of TUEG itself
    assert corpus_overlap(["TUEG"], ("TUAB",)) == []  # the whole is not part of its part
    signal_jepa = get_spec("signal_jepa").pretraining_corpus
    assert corpus_overlap(["Lee2019_MI"], signal_jepa) == ["Lee2019_MI (part of Lee2019)"]


def test_names_match_exactly_not_as_substrings():
    labram = get_spec("labram").pretraining_corpus  # TUEG, SEED, Siena Scalp EEG, BCI Competition IV-1, ...
    assert corpus_overlap(["e"], labram) == []
    assert corpus_overlap(["EEG", "Siena Scalp", "SEED-IV", "BCI"], labram) == []
    assert corpus_overlap(["siena"], labram) == ["siena"]  # an alias
    assert identify(" Siena Scalp EEG ") == "Siena Scalp EEG" and identify("Siena Scalp") is None


def test_a_collection_that_is_not_itemised_may_hold_any_public_dataset():
    reve = get_spec("reve").pretraining_corpus
    overlap = corpus_overlap(["TUAB", "BNCI2014_001"], reve)
    assert len(overlap) == 2 and all("(possibly: REVE corpus, 92 public datasets" in o for o in overlap)
    assert corpus_overlap([], reve) == []


def test_unknown_names_and_overlap_are_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="eegfm.backbones.corpora"):
        assert warn_corpus_overlap(["TUAB", "mystudy"], ("TUEG",), "embed ds/cbramod") == ["TUAB (part of TUEG)"]
    assert "embed ds/cbramod: corpus mystudy: not dataset identifiers eegfm knows" in caplog.text
    assert "pretraining corpus includes TUAB (part of TUEG)" in caplog.text


def test_identifiers_are_consistent_and_registry_uses_them():
    names = [name.upper() for c in CORPORA for name in (c.id, *c.aliases)]
    assert len(names) == len(set(names)), "an alias names two datasets"
    assert all(part in BY_ID for c in CORPORA for part in c.parts)
    for spec in REGISTRY.values():
        unknown = [p for p in spec.pretraining_corpus if p not in BY_ID]
        assert not unknown, f"{spec.name}: pretraining_corpus {unknown} are not identifiers of eegfm.backbones.corpora"


def test_the_documented_table_is_the_code_table():
    text = DOC.read_text()
    table = re.search(r"<!-- corpora:start -->\n(.*?)\n<!-- corpora:end -->", text, re.S)
    assert table, f"{DOC} lacks the corpora table markers"
    assert table.group(1).strip() == corpora_table(), (
        'paste the output of: .venv/bin/python -c "from eegfm.backbones.corpora import corpora_table as t; print(t())"'
    )


def test_embed_records_the_overlap_in_the_pointer(tmp_path, caplog, monkeypatch):
    """The embed job writes the overlap into its pointer (read by the report) and warns in its log."""
    import dataclasses

    from eegfm.config import Backbone, Embedding
    from eegfm.embed import embed
    from eegfm.windows_store import WindowsStoreWriter

    # band power pretrained on TUEG, for this test: a real embed job without torch
    monkeypatch.setitem(REGISTRY, "bandpower", dataclasses.replace(get_spec("bandpower"), pretraining_corpus=("TUEG",)))
    writer = WindowsStoreWriter(tmp_path / "win", ["Cz", "Pz"], 100.0, 200)
    X = np.random.default_rng(0).normal(scale=1e-5, size=(2, 2, 200)).astype("float32")
    writer.append(X, [{"subject": "1", "label": "a"}] * 2)
    writer.close()
    with caplog.at_level(logging.WARNING, logger="eegfm.backbones.corpora"):
        pointer = embed(str(tmp_path / "win"), Backbone(name="bandpower"), Embedding(batch_size=2), 0,
                        str(tmp_path / "cache"), str(tmp_path / "p.json"), "ds", corpus=["TUAB", "e"])  # fmt: skip
    assert pointer["corpus_overlap"] == ["TUAB (part of TUEG)"]
    assert "embed ds/bandpower: the backbone's pretraining corpus includes TUAB (part of TUEG)" in caplog.text


def test_the_overlap_check_imports_no_torch():
    code = "import sys, eegfm.backbones.corpora; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
