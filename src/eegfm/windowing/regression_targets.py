"""Regression targets (``datasets.<name>.target: regression``): every label must be a finite number.

The windows store keeps labels as the raw strings of the table cell or event
name (``windows.tsv``); these checks make sure that every one of them reads
as a finite float, so that nothing later meets a target it cannot score:

- :func:`check_recording_targets`, before any recording is read: the
  recording-level values (``files.label_column`` / ``bids.label_column``);
  the workflow runs it on every regression dataset when it builds the DAG
  (:func:`check_config_targets`), before any job, and the windows job again;
- :func:`check_window_targets`, after windowing: values that came from the
  events (event names, or their ``windows.event_id`` mapping);
- :func:`check_target_varies`: a target with a single value cannot be
  regressed on.

:func:`target_summary` is what ``windows.json`` records about the values;
:func:`checked_window_targets` runs the two window checks and returns it, for
the windows job and the Python API alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eegfm.windowing import WindowsError

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.config import Config
    from eegfm.recordings import Recording

_SHOWN = 10  # offending recordings or values named in a message


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (text, empty, NaN, Inf)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _where(dataset: str | None) -> str:
    return f"dataset '{dataset}'" if dataset else "the dataset"


def check_recording_targets(recordings: Iterable[Recording], dataset: str | None = None) -> None:
    """Every recording-level label must be a finite number.

    Raises
    ------
    WindowsError
        Naming the dataset, the column the labels came from, and each
        recording (path, subject) with its value, up to ten of them.
    """
    bad = [r for r in recordings if r.label is not None and as_number(r.label) is None]
    if not bad:
        return
    source = bad[0].label_source or "the recording-level label column"
    listed = "; ".join(f"{r.path} (subject {r.subject}): {r.label!r}" for r in bad[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    raise WindowsError(
        f"{_where(dataset)} has target: regression, but {len(bad)} recording(s) have a value in {source} that is "
        f"not a finite number: {listed}{more}. Fix these cells (a number such as 34 or 12.5; no units, no "
        "'n/a'), remove the rows, or set target: classification"
    )


def check_config_targets(config: Config, recordings: Callable[[str], Sequence[Recording]]) -> None:
    """:func:`check_recording_targets` on every dataset with ``target: regression`` that reads files or BIDS.

    ``recordings(name)`` gives a dataset's recordings (names and table cells only, no signal).
    """
    for name, ds in sorted(config.datasets.items()):
        if ds.target == "regression" and ds.source != "synthetic":
            check_recording_targets(recordings(name), name)


def check_window_targets(labels_by_recording: Mapping[str, Counter[str]], dataset: str | None = None) -> None:
    """Every window label (an event name or its ``event_id`` value) must be a finite number.

    Parameters
    ----------
    labels_by_recording
        Recording path -> count of each label of its windows.

    Raises
    ------
    WindowsError
        Naming the dataset, each recording and the labels that are not
        numbers (with their window counts).
    """
    bad = {path: {label: n for label, n in counts.items() if as_number(label) is None}
           for path, counts in labels_by_recording.items()}
    bad = {path: labels for path, labels in bad.items() if labels}
    if not bad:
        return
    listed = "; ".join(f"{path}: {dict(sorted(labels.items()))}" for path, labels in list(bad.items())[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more recording(s)" if len(bad) > _SHOWN else ""
    raise WindowsError(
        f"{_where(dataset)} has target: regression, but windows of {len(bad)} recording(s) carry labels that are "
        f"not finite numbers (label: windows): {listed}{more}. Map the event names to numbers with "
        "windows.event_id (e.g. {'low': '0.5', 'high': '2.0'}), take a numeric recording-level column "
        "(files.label_column), or set target: classification"
    )


def check_target_varies(labels: Counter[str], n_recordings: int, dataset: str | None = None) -> None:
    """A regression target needs at least two distinct values over the windows."""
    values = {as_number(label) for label in labels}
    if len(values) >= 2:
        return
    raise WindowsError(
        f"{_where(dataset)} has target: regression, but its windows over {n_recordings} recording(s) hold "
        f"{len(values)} distinct value(s) {sorted(labels)}; a regression needs the target to vary. Check the "
        "label column (files.label_column / bids.label_column) or windows.event_id"
    )


def target_summary(labels: Counter[str]) -> dict[str, Any]:
    """Window-weighted summary of the numeric labels for ``windows.json``: n, distinct values, min, max,
    mean, standard deviation and median."""
    import numpy as np

    values = np.array([as_number(label) for label in labels.elements()], dtype=float)
    if not values.size:
        return {"n_windows": 0}
    return {
        "n_windows": int(values.size), "n_distinct": int(np.unique(values).size),
        "min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else None, "median": float(np.median(values)),
    }


def checked_window_targets(labels_by_recording: Mapping[str, Counter[str]], dataset: str | None = None
                           ) -> dict[str, Any]:
    """:func:`check_window_targets` and :func:`check_target_varies` on the windows' labels (per recording);
    returns their :func:`target_summary` (``windows.json``'s ``target_summary``).

    Raises
    ------
    WindowsError
        As the two checks.
    """
    labels = sum(labels_by_recording.values(), Counter())
    check_window_targets(labels_by_recording, dataset)
    check_target_varies(labels, len(labels_by_recording), dataset)
    return target_summary(labels)
