"""Input adaptation: how a dataset's windows are fed to one backbone.

:func:`plan_input` decides resampling, channels and scaling from the windows
store summary alone (cheap, torch-free, so a cache lookup never builds a
model) and refuses window lengths the model cannot take, naming the config
key to change. :func:`prepare_input` applies the plan to a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from eegfm.backbones.registry import BackboneSpec


class BackboneInputError(ValueError):
    """Windows or settings a backbone cannot take; the message says what to change."""


@dataclass(frozen=True)
class InputPlan:
    """How windows are adapted to a backbone (recorded in the store and the report).

    Attributes
    ----------
    sfreq_in, sfreq_out
        Sampling rate of the windows and of the model input (Hz).
    n_times_in, n_times_out
        Samples per window before and after resampling.
    ch_names
        Channels fed to the model, in order.
    scale
        Factor from volts to the model's input unit.
    positions
        Channel positions (metres, head frame) by name, when the store has them.
    input_norm
        Per-window normalisation after scaling (see :class:`BackboneSpec`).
    """

    sfreq_in: float
    sfreq_out: float
    n_times_in: int
    n_times_out: int
    ch_names: list[str]
    scale: float
    positions: dict[str, list[float]] | None = None
    input_norm: str = "none"

    @property
    def resampled(self) -> bool:
        """Whether windows are resampled."""
        return self.sfreq_in != self.sfreq_out

    def record(self) -> dict[str, Any]:
        """The adaptation record stored with the embeddings and shown in the report."""
        return {
            "resampled_from": self.sfreq_in,
            "resampled_to": self.sfreq_out,
            "n_times_in": self.n_times_in,
            "n_times_out": self.n_times_out,
            "mapped": list(self.ch_names),  # passed through, in store order
            "aliased": {},
            "zero_filled": [],
            "interpolated": [],
            "dropped": [],
            "scale": self.scale,
            "input_norm": self.input_norm,
        }


def plan_input(spec: BackboneSpec, info: dict[str, Any], *, dataset: str | None = None) -> InputPlan:
    """Plan how the windows described by ``info`` are fed to ``spec``'s model.

    Parameters
    ----------
    spec
        The backbone's registry entry.
    info
        The windows store summary (``windows.json``): ``sfreq``, ``n_times``,
        ``ch_names``, ``units`` and optional ``positions``.
    dataset
        Dataset name, only to name the config key in error messages.

    Returns
    -------
    InputPlan

    Raises
    ------
    BackboneInputError
        If the window length does not fit the model after resampling (never
        padded or cropped silently); the message gives the lengths in seconds
        the backbone accepts and the config key to change.
    """
    units = info.get("units", "V")
    if units != "V":
        raise BackboneInputError(f"windows are in '{units}', expected volts ('V'); the scale to model units assumes volts")
    sfreq_in, n_in = float(info["sfreq"]), int(info["n_times"])
    sfreq_out = float(spec.sfreq) if spec.sfreq else sfreq_in
    n_out = _resampled_length(spec, n_in, sfreq_in, sfreq_out, dataset)
    _check_length(spec, n_in, sfreq_in, n_out, sfreq_out, dataset)
    ch_names = list(info["ch_names"])
    positions = info.get("positions") or None
    if positions:
        positions = {name: [float(v) for v in positions[name]] for name in ch_names if name in positions} or None
    return InputPlan(
        sfreq_in=sfreq_in,
        sfreq_out=sfreq_out,
        n_times_in=n_in,
        n_times_out=n_out,
        ch_names=ch_names,
        scale=float(spec.scale),
        positions=positions,
        input_norm=spec.input_norm,
    )


def _length_key(dataset: str | None) -> str:
    return f"datasets.{dataset or '<dataset>'}.windows.length_s"


def _resampled_length(spec: BackboneSpec, n_in: int, sfreq_in: float, sfreq_out: float, dataset: str | None) -> int:
    ratio = Fraction(sfreq_out).limit_denominator(10_000) / Fraction(sfreq_in).limit_denominator(10_000)
    exact = n_in * ratio
    if exact.denominator != 1:
        raise BackboneInputError(
            f"backbone '{spec.name}' runs at {sfreq_out:g} Hz, but windows of {n_in} samples at {sfreq_in:g} Hz "
            f"({n_in / sfreq_in:g} s) resample to {float(exact):.3f} samples, not a whole number; set "
            f"{_length_key(dataset)} so that length_s x {sfreq_out:g} is an integer"
        )
    return int(exact)


def _check_length(
    spec: BackboneSpec, n_in: int, sfreq_in: float, n_out: int, sfreq_out: float, dataset: str | None
) -> None:
    have = f"the windows are {n_in / sfreq_in:g} s ({n_in} samples at {sfreq_in:g} Hz, {n_out} at {sfreq_out:g} Hz)"
    key = _length_key(dataset)
    if spec.n_times_fixed is not None and n_out != spec.n_times_fixed:
        need_s = spec.n_times_fixed / sfreq_out
        raise BackboneInputError(
            f"backbone '{spec.name}' needs windows of exactly {need_s:g} s ({spec.n_times_fixed} samples at "
            f"{sfreq_out:g} Hz); {have}. Set {key}: {need_s:g}"
        )
    if n_out < spec.n_times_min:
        need_s = spec.n_times_min / sfreq_out
        raise BackboneInputError(
            f"backbone '{spec.name}' needs windows of at least {need_s:g} s ({spec.n_times_min} samples at "
            f"{sfreq_out:g} Hz); {have}. Set {key} to {need_s:g} or more"
        )
    m = spec.n_times_multiple
    if n_out % m:
        step = m / sfreq_out
        lower, upper = (n_out // m) * m / sfreq_out, (n_out // m + 1) * m / sfreq_out
        options = f"{lower:g} or {upper:g}" if lower > 0 else f"{upper:g}"
        raise BackboneInputError(
            f"backbone '{spec.name}' needs windows whose length is a multiple of {step:g} s ({m} samples at "
            f"{sfreq_out:g} Hz); {have}. Set {key} to {options} (windows are never padded or cropped silently)"
        )


def prepare_input(X: np.ndarray, plan: InputPlan, dtype: Any = np.float32) -> np.ndarray:
    """Resample (polyphase), scale and normalise windows in volts to the model's input.

    Each window is processed independently, so the result does not depend on
    how windows are batched.
    """
    X = np.asarray(X)
    expected = (len(plan.ch_names), plan.n_times_in)
    if X.ndim != 3 or X.shape[1:] != expected:
        raise ValueError(f"windows of shape {X.shape} do not match the plan (batch, {expected[0]}, {expected[1]})")
    x = X.astype(np.float64)
    if plan.resampled:
        from mne.filter import resample

        x = resample(x, up=plan.sfreq_out, down=plan.sfreq_in, method="polyphase", verbose="error")
    x *= plan.scale
    if plan.input_norm == "channel_q95":
        x /= np.quantile(np.abs(x), 0.95, axis=-1, method="linear", keepdims=True) + 1e-8
    return x.astype(dtype)

