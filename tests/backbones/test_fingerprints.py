"""Every registered backbone's fingerprint (hence its embedding cache key) is pinned.

A change of how eegfm describes a backbone invalidates every cached
embedding store made with it, so it must never happen by accident (e.g. when
moving a model's quirks between files). ``fingerprints.json`` holds, per
case, the windows-store summary, the config entry, the seed and files the
case needs (weights, position banks), and the fingerprint the code computed
for them; library versions are compared by name only, so an upgrade of the
pinned environment does not fail this test.

A backbone added to the registry needs its cases pinned: run
``EEGFM_PIN_FINGERPRINTS=1 .venv/bin/python -m pytest tests/backbones/test_fingerprints.py``,
which adds the cases of unpinned backbones and never rewrites existing ones,
and commit the file. While a new backbone's file is still changing,
``EEGFM_PIN_FINGERPRINTS=<name>[,<name>...]`` drops those backbones' cases and
pins them again (never for a released backbone: its users' caches would miss).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eegfm.backbones.adapt import plan_input
from eegfm.backbones.fingerprint import fingerprint
from eegfm.backbones.registry import REGISTRY, get_spec
from eegfm.backbones.spec import nominal_windows
from eegfm.config import Backbone

PINS = Path(__file__).with_name("fingerprints.json")
PIN = os.environ.get("EEGFM_PIN_FINGERPRINTS", "")
WRITE = PIN != ""
#: Backbones whose pinned cases are dropped and pinned again (EEGFM_PIN_FINGERPRINTS=<name>,...).
REPIN = set() if PIN in ("", "1") else {name.strip() for name in PIN.split(",")}
CH_1020 = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2".split()
#: A sparser montage with a 10-05 channel outside the 10-20 set: some models drop it, some zero-fill.
CH_SPARSE = ["Fp1", "Fp2", "F3", "F4", "FC1", "C3", "Cz", "C4", "P3", "Pz", "P4", "O1", "O2"]


def _load() -> list[dict]:
    return json.loads(PINS.read_text()) if PINS.exists() else []


def _normalised(fp: dict) -> dict:
    """The fingerprint with library versions reduced to their names."""
    return {**fp, "versions": sorted(fp["versions"])}


def _compute(case: dict, tmp_path: Path, monkeypatch) -> dict:
    """Write the case's files, set its environment, and compute the fingerprint."""
    for name, text in case.get("files", {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.delenv("REVE_POSITIONS_PATH", raising=False)
    for key, value in case.get("env", {}).items():
        monkeypatch.setenv(key, value.replace("<tmp>", str(tmp_path)))
    raw = dict(case["cfg"])
    if raw.get("weights"):
        raw["weights"] = raw["weights"].replace("<tmp>", str(tmp_path))
    cfg = Backbone(**raw)
    spec = get_spec(cfg.name)
    plan = plan_input(spec, case["info"], cfg=cfg)
    return _normalised(fingerprint(spec, cfg, plan, case["seed"]))


def _cases_for(name: str) -> list[dict]:
    """The pinned cases of one backbone: its nominal input, and a sparse, resampled, padded one."""
    spec = get_spec(name)
    nominal = nominal_windows(spec)
    sparse = {"sfreq": 500.0, "n_times": 2250, "ch_names": CH_SPARSE, "units": "V"}
    return [
        {"id": f"{name}/nominal", "cfg": {"name": name}, "info": nominal, "seed": 0},
        {
            "id": f"{name}/sparse-resampled-padded",
            "cfg": {"name": name, "missing_channels": "zero", "length_policy": "pad"},
            "info": sparse,
            "seed": 3,
        },
    ]


#: Cases beyond the two per backbone: settings and files that change the fingerprint.
EXTRA_CASES: list[dict] = [
    {
        "id": "cbramod/kwargs-pooling",
        "cfg": {"name": "cbramod", "kwargs": {"n_layer": 2}, "pooling": "grouped_mean"},
        "info": {"sfreq": 250.0, "n_times": 1000, "ch_names": CH_1020, "units": "V"},
        "seed": 1,
    },
    {
        "id": "cbramod/from-pretrained-folder",
        "cfg": {"name": "cbramod", "weights": "<tmp>/cbramod"},
        "info": {"sfreq": 200.0, "n_times": 800, "ch_names": CH_1020, "units": "V"},
        "files": {
            "cbramod/config.json": json.dumps({"n_layer": 2, "n_chans": 22, "braindecode_version": "1.8.1"}),
            "cbramod/model.safetensors": "not read by the fingerprint",
        },
        "seed": 0,
    },
    {
        "id": "biot/weights-file",
        "cfg": {"name": "biot", "weights": "<tmp>/biot.ckpt"},
        "info": {"sfreq": 200.0, "n_times": 1000, "ch_names": CH_1020, "units": "V"},
        "files": {"biot.ckpt": "not read by the fingerprint"},
        "seed": 0,
    },
    {
        "id": "bandpower/bands",
        "cfg": {"name": "bandpower", "kwargs": {"bands": [[4, 8], [8, 13]], "welch_seconds": 1.0}},
        "info": {"sfreq": 128.0, "n_times": 512, "ch_names": CH_SPARSE, "units": "V"},
        "seed": 0,
    },
    {
        "id": "riemann/estimator",
        "cfg": {"name": "riemann", "kwargs": {"estimator": "lwf"}},
        "info": {"sfreq": 128.0, "n_times": 512, "ch_names": CH_SPARSE, "units": "V"},
        "seed": 0,
    },
    {
        "id": "reve/position-bank",
        "cfg": {"name": "reve"},
        "info": {"sfreq": 200.0, "n_times": 2000, "ch_names": CH_1020, "units": "V"},
        "env": {"REVE_POSITIONS_PATH": "<tmp>/bank"},
        "files": {
            "bank/reve_positions.json": json.dumps({n.upper(): [0.01 * i, 0.0, 0.05] for i, n in enumerate(CH_1020)})
        },
        "seed": 0,
    },
    {
        "id": "steegformer/weights-and-vocabulary",
        "cfg": {"name": "steegformer", "weights": "<tmp>/steeg/model.safetensors"},
        "info": {"sfreq": 250.0, "n_times": 1024, "ch_names": CH_1020, "units": "V"},
        "files": {
            "steeg/model.safetensors": "not read by the fingerprint",
            "steeg/steegformer_channels.json": json.dumps(["AFz", *reversed(CH_1020)]),
        },
        "seed": 0,
    },
    {
        "id": "steegformer/explicit-slots",
        "cfg": {"name": "steegformer", "kwargs": {"chan_pos_idx": list(range(100, 119))}},
        "info": {"sfreq": 250.0, "n_times": 1024, "ch_names": CH_1020, "units": "V"},
        "seed": 0,
    },
    {
        "id": "luna/store-positions",
        "cfg": {"name": "luna"},
        "info": {
            "sfreq": 256.0, "n_times": 1280, "ch_names": CH_1020, "units": "V",
            "positions": {n: [0.001 * i, 0.002 * i, 0.05] for i, n in enumerate(CH_1020)},
        },  # fmt: skip
        "seed": 0,
    },
]


def test_every_pinned_fingerprint_is_unchanged(tmp_path, monkeypatch):
    pins = _load()
    assert pins, f"{PINS} is missing; see this module's docstring"
    changed = []
    for i, pin in enumerate(pins):
        if pin["id"].split("/")[0] in REPIN:
            continue  # pinned again by the next test
        case_dir = tmp_path / str(i)
        case_dir.mkdir()
        with monkeypatch.context() as m:
            now = _compute(pin, case_dir, m)
        if now != pin["fingerprint"]:
            changed.append(pin["id"])
            print(f"{pin['id']}:\n  pinned {json.dumps(pin['fingerprint'])}\n  now    {json.dumps(now)}")
    assert not changed, f"fingerprints changed (every cached embedding of these would be recomputed): {changed}"


def test_every_registered_backbone_is_pinned(tmp_path, monkeypatch):
    """A new backbone gets its cases pinned (``EEGFM_PIN_FINGERPRINTS=1``, see the module docstring)."""
    committed = _load()
    unknown = REPIN - set(REGISTRY)
    assert not unknown, f"EEGFM_PIN_FINGERPRINTS names {sorted(unknown)}, not registered backbones"
    pins = [pin for pin in committed if pin["id"].split("/")[0] not in REPIN]
    known = {pin["id"] for pin in pins}
    missing = [case for name in REGISTRY for case in _cases_for(name) if case["id"] not in known]
    missing += [case for case in EXTRA_CASES if case["id"] not in known]
    if missing and WRITE:
        for i, case in enumerate(missing):
            case_dir = tmp_path / f"new{i}"
            case_dir.mkdir()
            with monkeypatch.context() as m:
                pins.append({**case, "fingerprint": _compute(case, case_dir, m)})
        new = {pin["id"]: pin for pin in pins}  # re-pinned cases keep their place in the file
        ordered = [new.pop(pin["id"]) for pin in committed if pin["id"] in new] + list(new.values())
        PINS.write_text(json.dumps(ordered, indent=1, sort_keys=True) + "\n")
        missing = []
    assert not missing, (
        f"no pinned fingerprint for {[case['id'] for case in missing]}: run "
        "EEGFM_PIN_FINGERPRINTS=1 .venv/bin/python -m pytest tests/backbones/test_fingerprints.py and commit the file"
    )
