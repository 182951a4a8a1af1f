"""The built-in dataset: deterministic motor-imagery-like EEG written as BIDS/EDF.

:func:`write_synthetic_bids` writes one BIDS root with two tasks:

``task-target``
    ``n_subjects`` subjects (``sub-01`` ...), three classes (``left_hand``,
    ``right_hand``, ``feet``): the decoding task of the benchmark.
``task-source``
    ``n_source_subjects`` *other* subjects (numbering continues after the
    target subjects), four classes (the three above plus ``tongue``) whose
    rhythms sit at higher frequencies and more posterior locations: related
    but shifted data for pretraining experiments.

Signal model (per subject, in volts)
    * spatially smooth ~1/f (pink) background, subject-specific level;
    * a posterior alpha rhythm with slow random amplitude drifts (a
      class-independent distractor in the same band as mu);
    * sensorimotor mu and beta generators (left, right, midline) whose power
      drops during imagery of the contralateral limb (event-related
      desynchronisation, ERD) and rises slightly around it (surround ERS);
      ERD depth varies by subject (some subjects barely modulate) and by trial;
    * a cue-evoked response (N1/P3-like, parietal) at every trial onset.

Each subject is drawn from its own generator seeded with ``(seed, task,
subject index)``, so subject *k* is identical whatever the number of subjects.
The recordings go through ``mne_bids.write_raw_bids(format="EDF")`` and are
read back by the workflow through the same loader as users' data.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegfm import atomic
from eegfm.config import SyntheticSource

log = logging.getLogger(__name__)

#: The 19 channels of the 10-20 system the synthetic recordings hold, in file order.
CHANNELS: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
    "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2",
)  # fmt: skip

#: Classes of each task, in event-code order (code = index + 1 in events.tsv).
CLASSES: dict[str, tuple[str, ...]] = {
    "target": ("left_hand", "right_hand", "feet"),
    "source": ("left_hand", "right_hand", "feet", "tongue"),
}

# MNE 1.13 renamed 'standard_1020'/'standard_1005' to 'colin27_*' (same positions);
# the old names warn and disappear in MNE 1.14.
MONTAGE_1020 = "colin27_1020"
MONTAGE_1005 = "colin27_1005"

TRIAL_S = 4.0  # imagery period, the annotation duration
ITI_S = (1.5, 2.5)  # jittered rest between trials
EDGE_S = 2.0  # rest before the first and after the last trial
LINE_FREQ = 50.0
_TASK_CODE = {"target": 0, "source": 1}


@dataclass(frozen=True)
class _TaskLayout:
    """Where a task's rhythms live and how they move with the classes."""

    generators: dict[str, str]  # generator name -> 10-05 position it sits at
    mu_hz: tuple[float, float]  # range of the subject's mu peak frequency
    beta_hz: tuple[float, float]
    erd: dict[str, tuple[str, ...]]  # class -> generators that desynchronise
    ers: dict[str, tuple[str, ...]]  # class -> generators that slightly synchronise


_LAYOUTS = {
    "target": _TaskLayout(
        generators={"left": "C3", "right": "C4", "mid": "Cz"},
        mu_hz=(9.0, 12.0),
        beta_hz=(18.0, 24.0),
        erd={"left_hand": ("right",), "right_hand": ("left",), "feet": ("mid",)},
        ers={"left_hand": ("left",), "right_hand": ("right",), "feet": ("left", "right")},
    ),
    # Shifted structure: faster rhythms, centro-parietal generators, a fourth class.
    "source": _TaskLayout(
        generators={"left": "CP3", "right": "CP4", "mid": "CPz", "lat_l": "FT7", "lat_r": "FT8"},
        mu_hz=(11.5, 14.5),
        beta_hz=(21.0, 27.0),
        erd={
            "left_hand": ("right",),
            "right_hand": ("left",),
            "feet": ("mid",),
            "tongue": ("lat_l", "lat_r"),
        },
        ers={"left_hand": ("left",), "right_hand": ("right",), "feet": ("left", "right"), "tongue": ("mid",)},
    ),
}


# ----------------------------------------------------------------------------- public API


def subject_labels(cfg: SyntheticSource) -> dict[str, list[str]]:
    """BIDS subject labels of each task: target ``01..N``, source continuing after it.

    Parameters
    ----------
    cfg
        The synthetic-source settings.

    Returns
    -------
    dict
        ``{"target": [...], "source": [...]}``, zero-padded to a common width (at least 2).
    """
    total = cfg.n_subjects + cfg.n_source_subjects
    width = max(2, len(str(total)))
    labels = [f"{i:0{width}d}" for i in range(1, total + 1)]
    return {"target": labels[: cfg.n_subjects], "source": labels[cfg.n_subjects :]}


def simulate_raw(task: str, index: int, cfg: SyntheticSource):
    """Simulate one subject's continuous recording.

    Parameters
    ----------
    task
        ``"target"`` or ``"source"``.
    index
        Zero-based subject index within the task; with ``cfg.seed`` it alone
        determines the recording.
    cfg
        The synthetic-source settings (``trials_per_class``, ``sfreq``, ``seed``).

    Returns
    -------
    mne.io.RawArray
        19 EEG channels in volts, ``colin27_1020`` (standard 10-20) montage,
        one 4 s annotation per trial whose description is the class name.
    """
    import mne

    if task not in _LAYOUTS:
        raise ValueError(f"unknown synthetic task {task!r}; allowed: {sorted(_LAYOUTS)}")
    rng = np.random.default_rng([cfg.seed, _TASK_CODE[task], index])
    sfreq = float(cfg.sfreq)
    classes = CLASSES[task]
    labels = rng.permutation(np.repeat(np.arange(len(classes)), cfg.trials_per_class))
    onsets = _trial_onsets(rng, len(labels), sfreq)
    # Whole seconds, so EDF's 1 s data records need no padding.
    n_samples = int(round(np.ceil(onsets[-1] + TRIAL_S + EDGE_S) * sfreq))

    pos = _positions(CHANNELS)
    data = _background(rng, pos, n_samples, sfreq)
    data += _alpha(rng, pos, n_samples, sfreq)
    data += _sensorimotor(rng, task, pos, n_samples, sfreq, onsets, labels)
    data += _evoked(rng, pos, n_samples, sfreq, onsets)
    data *= rng.uniform(0.7, 1.4) * 1e-6  # subject gain; µV -> V

    info = mne.create_info(list(CHANNELS), sfreq, "eeg")
    info["line_freq"] = LINE_FREQ
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.set_montage(MONTAGE_1020, verbose=False)
    # A fixed date keeps the EDF bytes reproducible (EDF needs a start date).
    raw.set_meas_date(dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=index))
    raw.set_annotations(
        mne.Annotations(onsets, TRIAL_S, [classes[k] for k in labels], orig_time=raw.info["meas_date"])
    )
    return raw


def write_synthetic_bids(root: str | Path, cfg: SyntheticSource) -> Path:
    """Write the built-in dataset as a BIDS root (EDF files), atomically.

    The root is built in a temporary sibling and renamed into place, so
    ``root`` is either absent, the previous complete dataset, or the new
    complete dataset.

    Parameters
    ----------
    root
        Folder to create (replaced if it exists).
    cfg
        Number of subjects, trials per class, sampling rate and seed.

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    import mne_bids

    root = Path(root)
    labels = subject_labels(cfg)
    with atomic.atomic_dir(root) as tmp:
        (tmp / "README").write_text(_readme(cfg, labels), encoding="utf-8")
        for task in ("target", "source"):
            event_id = {name: code for code, name in enumerate(CLASSES[task], start=1)}
            for index, subject in enumerate(labels[task]):
                raw = simulate_raw(task, index, cfg)
                path = mne_bids.BIDSPath(subject=subject, task=task, datatype="eeg", root=tmp)
                mne_bids.write_raw_bids(
                    raw, path, event_id=event_id, format="EDF", allow_preload=True, overwrite=True, verbose=False
                )
                log.debug("wrote synthetic %s sub-%s", task, subject)
        mne_bids.make_dataset_description(
            path=tmp,
            name="eegfm synthetic motor imagery",
            authors=["eegfm"],
            generated_by=[{"Name": "eegfm.synthetic", "Description": f"seed={cfg.seed}"}],
            overwrite=True,
            verbose=False,
        )
    log.info(
        "wrote synthetic BIDS root %s: %d target + %d source subjects",
        root,
        len(labels["target"]),
        len(labels["source"]),
    )
    return root


# ----------------------------------------------------------------------------- signal components


def _trial_onsets(rng: np.random.Generator, n_trials: int, sfreq: float) -> np.ndarray:
    """Trial onsets (s): 4 s trials separated by a 1.5-2.5 s jittered rest."""
    gaps = TRIAL_S + rng.uniform(*ITI_S, size=n_trials)
    onsets = EDGE_S + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    # On the sample grid, so annotations, events.tsv and epochs agree exactly.
    return np.round(onsets * sfreq) / sfreq


def _positions(names) -> np.ndarray:
    """Head-frame positions (m) of 10-05 channel names, shape (n, 3)."""
    import mne

    info = mne.create_info(list(names), 100.0, "eeg")
    info.set_montage(MONTAGE_1005, verbose=False)
    return np.array([ch["loc"][:3] for ch in info["chs"]])


def _spatial(pos: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian fall-off of a source's field with scalp distance (unit peak)."""
    dist2 = np.sum((pos - centre) ** 2, axis=-1)
    return np.exp(-dist2 / (2 * sigma**2))


def _coloured(rng: np.random.Generator, n: int, n_samples: int, sfreq: float, gain) -> np.ndarray:
    """``n`` unit-RMS noise series whose spectrum is shaped by ``gain(freqs)``."""
    freqs = np.fft.rfftfreq(n_samples, 1 / sfreq)
    spec = rng.standard_normal((n, freqs.size)) + 1j * rng.standard_normal((n, freqs.size))
    x = np.fft.irfft(spec * gain(freqs), n=n_samples, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _narrowband(rng, n, n_samples, sfreq, centre_hz, width_hz) -> np.ndarray:
    """Unit-RMS oscillations around ``centre_hz`` (Gaussian spectral peak)."""
    return _coloured(rng, n, n_samples, sfreq, lambda f: np.exp(-0.5 * ((f - centre_hz) / width_hz) ** 2))


def _slow_envelope(rng, n, n_samples, sfreq, spread) -> np.ndarray:
    """Positive amplitude drifts (log-normal, below ~0.3 Hz) of rhythms across trials."""
    drift = _coloured(rng, n, n_samples, sfreq, lambda f: (f < 0.3).astype(float))
    return np.exp(spread * drift)


def _background(rng, pos, n_samples, sfreq) -> np.ndarray:
    """Pink background mixed smoothly over the scalp plus a little sensor noise (µV)."""
    pink = _coloured(rng, len(pos), n_samples, sfreq, lambda f: 1 / np.sqrt(np.maximum(f, 0.5)))
    dist2 = np.sum((pos[:, None] - pos[None]) ** 2, axis=-1)
    mixing = np.exp(-dist2 / (2 * 0.04**2)) * rng.uniform(0.8, 1.2, size=(len(pos), len(pos)))
    mixed = mixing @ pink
    level = rng.uniform(10.0, 18.0)  # subject noise level, µV RMS
    mixed *= level / mixed.std(axis=-1, keepdims=True)
    return mixed + rng.standard_normal(mixed.shape)


def _alpha(rng, pos, n_samples, sfreq) -> np.ndarray:
    """Posterior alpha with slow drifts: power in the mu band that carries no class."""
    centre = _positions(["POz"])[0]
    osc = _narrowband(rng, 1, n_samples, sfreq, rng.uniform(9.0, 11.0), 0.8)
    osc *= _slow_envelope(rng, 1, n_samples, sfreq, 0.5) * rng.uniform(3.0, 9.0)
    return _spatial(pos, centre, 0.05)[:, None] * osc


def _raised_cosine_profile(t: np.ndarray) -> np.ndarray:
    """ERD time course within a trial (0..1): ramp 0.5-1.25 s, hold, release 3.5-4.25 s."""
    rise = np.clip((t - 0.5) / 0.75, 0, 1)
    fall = np.clip((4.25 - t) / 0.75, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _sensorimotor(rng, task, pos, n_samples, sfreq, onsets, labels) -> np.ndarray:
    """Mu and beta generators whose power follows the imagined class (µV)."""
    layout = _LAYOUTS[task]
    classes = CLASSES[task]
    names = list(layout.generators)
    centres = _positions([layout.generators[g] for g in names])
    # Small subject-specific shifts of the generators (anatomy, cap placement).
    centres = centres + rng.normal(0, 0.006, size=centres.shape)
    mu = _narrowband(rng, len(names), n_samples, sfreq, rng.uniform(*layout.mu_hz), 1.0)
    beta = _narrowband(rng, len(names), n_samples, sfreq, rng.uniform(*layout.beta_hz), 2.0)
    mu_amp, beta_amp = rng.uniform(4.0, 9.0), rng.uniform(1.5, 4.0)
    depth = rng.uniform(0.15, 0.65)  # subject's ERD aptitude: some barely modulate

    gain = np.ones((len(names), n_samples))
    window = np.arange(int(round((TRIAL_S + 0.5) * sfreq)))
    profile = _raised_cosine_profile(window / sfreq)
    for onset, label in zip(onsets, labels, strict=True):
        cls = classes[label]
        trial_depth = depth * rng.lognormal(0.0, 0.4)
        start = int(round(onset * sfreq))
        stop = min(start + window.size, n_samples)
        seg = profile[: stop - start]
        for g in layout.erd[cls]:
            gain[names.index(g), start:stop] *= 1 - min(trial_depth, 0.9) * seg
        for g in layout.ers[cls]:
            gain[names.index(g), start:stop] *= 1 + 0.3 * trial_depth * seg
    drift = _slow_envelope(rng, len(names), n_samples, sfreq, 0.35)
    sources = gain * drift * (mu_amp * mu + beta_amp * beta)
    patterns = np.stack([_spatial(pos, c, 0.035) for c in centres], axis=1)  # (channels, generators)
    return patterns @ sources


def _evoked(rng, pos, n_samples, sfreq, onsets) -> np.ndarray:
    """A parietal N1/P3-like response to every cue (class-independent, µV)."""
    t = np.arange(int(round(0.8 * sfreq))) / sfreq
    wave = -1.0 * np.exp(-0.5 * ((t - 0.17) / 0.03) ** 2) + 1.5 * np.exp(-0.5 * ((t - 0.35) / 0.08) ** 2)
    amp = rng.uniform(2.0, 5.0)
    series = np.zeros(n_samples)
    for onset in onsets:
        start = int(round(onset * sfreq))
        stop = min(start + t.size, n_samples)
        series[start:stop] += amp * rng.lognormal(0.0, 0.3) * wave[: stop - start]
    return _spatial(pos, _positions(["Pz"])[0], 0.06)[:, None] * series[None]


def _readme(cfg: SyntheticSource, labels: dict[str, list[str]]) -> str:
    """README of the generated root: what the data are and how they were made."""
    return (
        "eegfm synthetic motor-imagery dataset\n"
        "=====================================\n\n"
        "Simulated EEG written by eegfm.synthetic (not recorded from people).\n\n"
        f"task-target: subjects {labels['target'][0]}-{labels['target'][-1]}, classes "
        f"{', '.join(CLASSES['target'])}, {cfg.trials_per_class} trials per class.\n"
        f"task-source: subjects {labels['source'][0]}-{labels['source'][-1]}, classes "
        f"{', '.join(CLASSES['source'])} (shifted rhythms), {cfg.trials_per_class} trials per class.\n\n"
        f"19 channels (10-20), {cfg.sfreq:g} Hz, 4 s trials, 1.5-2.5 s jittered rest, seed {cfg.seed}.\n"
        "Signal: pink background, posterior alpha, lateralised mu/beta desynchronisation, cue-evoked response.\n"
    )
