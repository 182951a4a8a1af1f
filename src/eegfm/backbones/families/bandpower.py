"""Log band power: the cheap, non-neural baseline every backbone is compared with.

One feature per channel and band: ``log10`` of the power in the band (µV²),
from MNE's Welch PSD (:func:`mne.time_frequency.psd_array_welch`). Features
are ordered channel-major (all bands of the first channel, then the next).

Nothing here imports torch or braindecode: an embedding job for this backbone
stays a light process.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from eegfm.backbones.adapt import BackboneInputError, InputPlan
from eegfm.backbones.family import BaselineExtractor, FeatureBaseline
from eegfm.backbones.spec import BackboneSpec, Inputs

logger = logging.getLogger(__name__)

KWARGS = ("bands", "welch_seconds")
POWER_FLOOR_UV2 = 1e-20  # a flat (e.g. reference) channel gives log10 = -20, not -inf


def resolve_kwargs(init_kwargs: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge the registry's settings with the config's and normalise them.

    Parameters
    ----------
    init_kwargs
        The registry's ``init_kwargs`` (``bands``, ``welch_seconds``).
    overrides
        ``backbones[].kwargs`` from the config, merged over ``init_kwargs``.

    Returns
    -------
    dict
        ``{"bands": [[lo, hi], ...], "welch_seconds": float}`` with floats only,
        so equal settings fingerprint equally whether they came from YAML
        lists or Python tuples.

    Raises
    ------
    BackboneInputError
        On an unknown key or a malformed band.
    """
    unknown = sorted(set(overrides) - set(KWARGS))
    if unknown:
        raise BackboneInputError(f"bandpower: unknown kwargs {unknown}; allowed: {', '.join(KWARGS)}")
    merged = {**init_kwargs, **overrides}
    bands = []
    for band in merged["bands"]:
        if len(band) != 2 or not 0 <= float(band[0]) < float(band[1]):
            raise BackboneInputError(f"bandpower: band {list(band)} must be [low, high] Hz with 0 <= low < high")
        bands.append([float(band[0]), float(band[1])])
    welch_seconds = float(merged["welch_seconds"])
    if welch_seconds <= 0:
        raise BackboneInputError(f"bandpower: welch_seconds must be > 0, got {welch_seconds}")
    return {"bands": bands, "welch_seconds": welch_seconds}


def welch_segment(kwargs: dict[str, Any], sfreq: float, n_times: int) -> tuple[int, int]:
    """Welch segment length and overlap in samples (segments capped at the window)."""
    n_fft = min(n_times, max(1, round(kwargs["welch_seconds"] * sfreq)))
    return n_fft, n_fft // 2


def check_bands(kwargs: dict[str, Any], sfreq: float, n_times: int) -> None:
    """Raise :class:`BackboneInputError` if a band is above Nyquist or holds no PSD bin."""
    n_fft, _ = welch_segment(kwargs, sfreq, n_times)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sfreq)
    for lo, hi in kwargs["bands"]:
        if hi > sfreq / 2:
            raise BackboneInputError(
                f"bandpower: band [{lo:g}, {hi:g}) Hz exceeds the Nyquist frequency {sfreq / 2:g} Hz of the windows"
            )
        if not np.any((freqs >= lo) & (freqs < hi)):
            raise BackboneInputError(
                f"bandpower: band [{lo:g}, {hi:g}) Hz holds no frequency bin at the Welch resolution "
                f"{sfreq / n_fft:g} Hz ({n_fft}-sample segments); use longer windows or wider bands"
            )


def log_band_power(X_uv: np.ndarray, sfreq: float, bands: list[list[float]], n_fft: int, n_overlap: int) -> np.ndarray:
    """Log10 band power per channel and band.

    Parameters
    ----------
    X_uv
        Windows (n_windows, n_channels, n_times) in µV.
    sfreq
        Sampling rate in Hz.
    bands
        ``[[low, high], ...]`` in Hz; a band covers ``low <= f < high``.
    n_fft, n_overlap
        Welch segment length and overlap in samples (Hamming window).

    Returns
    -------
    np.ndarray
        float32 (n_windows, n_channels * n_bands), channel-major, log10 µV².
    """
    from mne.time_frequency import psd_array_welch

    fmin = min(lo for lo, _ in bands)
    fmax = max(hi for _, hi in bands)
    psd, freqs = psd_array_welch(
        X_uv, sfreq, fmin=fmin, fmax=fmax, n_fft=n_fft, n_overlap=n_overlap, n_per_seg=n_fft, verbose="error"
    )
    df = sfreq / n_fft
    power = np.stack([psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) * df for lo, hi in bands], axis=-1)
    out = np.log10(np.maximum(power, POWER_FLOOR_UV2))
    return out.reshape(len(X_uv), -1).astype(np.float32)


class BandpowerExtractor(BaselineExtractor):
    """Windows in volts (B, C, T) -> log band power (B, C * n_bands); settings from :func:`resolve_kwargs`."""

    def __init__(self, plan: InputPlan, kwargs: dict[str, Any]):
        self.bands = kwargs["bands"]
        super().__init__(plan, len(plan.ch_names) * len(self.bands))
        self.n_fft, self.n_overlap = welch_segment(kwargs, plan.sfreq_out, plan.n_times_out)
        if not math.isclose(plan.scale, 1e6):
            logger.warning("bandpower: scale %g is not volts -> µV; features are log10 of (scaled unit)²", plan.scale)

    def features(self, X_uv: np.ndarray) -> np.ndarray:
        return log_band_power(X_uv, self.plan.sfreq_out, self.bands, self.n_fft, self.n_overlap)


class Bandpower(FeatureBaseline):
    """The band-power family: settings, their check against the windows, and the extractor."""

    kind = "bandpower"
    libraries = ("mne", "numpy", "scipy")

    def resolve_kwargs(self, init_kwargs, overrides):
        return resolve_kwargs(init_kwargs, overrides)

    def check(self, kwargs, plan):
        check_bands(kwargs, plan.sfreq_out, plan.n_times_out)

    def extractor(self, plan, kwargs):
        return BandpowerExtractor(plan, kwargs)


SPECS = (
    BackboneSpec(
        name="bandpower",
        family=Bandpower(),
        inputs=Inputs(scale=1e6),
        pooling="none",
        # Welch segments of welch_seconds (half overlap), capped at the window length.
        init_kwargs={"bands": ((1, 4), (4, 8), (8, 13), (13, 30), (30, 45)), "welch_seconds": 2.0},
    ),
)
