"""A report figure as PNG and SVG bytes that do not depend on the date or the machine; many, in parallel."""

from __future__ import annotations

import io
import multiprocessing
from collections.abc import Callable, Mapping
from typing import Any

_DPI = 110


def render(fig) -> tuple[bytes, bytes]:
    """``(png, svg)`` bytes of a figure; no dates or software versions are embedded."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "eegfm", "svg.fonttype": "path"}):
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=_DPI, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return png.getvalue(), svg.getvalue()


def render_all(draw: Mapping[str, Callable[[], Any]], workers: int = 1) -> dict[str, dict[str, Any]]:
    """Draw and render every figure, in up to ``workers`` forked processes.

    Parameters
    ----------
    draw
        Figure name -> a function without arguments that returns the figure.
    workers
        Processes to use. Laying out and drawing a figure is single-threaded
        Python (most of a report's time) and the figures are independent, so
        on Linux each worker draws and renders a share of them; the bytes are
        those one process gives. With one worker, or without ``fork``, they
        are drawn here.

    Returns
    -------
    dict
        Name -> ``{"png": bytes, "svg": bytes, "placeholder": str | None}``
        (the placeholder's message, see :func:`eegfm.figures.placeholder`).
    """
    names = list(draw)
    workers = min(workers, len(names))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return {name: _draw_and_render(draw[name]) for name in names}
    # forked workers inherit the functions and their data (initargs are not pickled with fork); bytes come back
    with multiprocessing.get_context("fork").Pool(workers, initializer=_hold, initargs=(draw,)) as pool:
        return dict(zip(names, pool.map(_draw_held, names, chunksize=1)))


def _draw_and_render(draw: Callable[[], Any]) -> dict[str, Any]:
    fig = draw()
    png, svg = render(fig)
    return {"png": png, "svg": svg, "placeholder": getattr(fig, "eegfm_placeholder", None)}


_HELD: Mapping[str, Callable[[], Any]] = {}  # in a render_all worker: the functions it was forked with


def _hold(draw: Mapping[str, Callable[[], Any]]) -> None:
    global _HELD
    _HELD = draw


def _draw_held(name: str) -> dict[str, Any]:
    return _draw_and_render(_HELD[name])
