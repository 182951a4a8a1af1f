"""Ids that differ only in case or surrounding spaces: most likely one subject (or one class) typed twice.

Kept apart, one person would sit on both sides of a fold (their windows are
not identical, so the content audit cannot see it) and one class would be
two. The Python API's metadata (:mod:`eegfm.api_inputs`) and the workflow's
``files.metadata`` table (:mod:`eegfm.recordings`) both refuse them.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["spelling_clashes"]


def spelling_clashes(ids: Iterable[object]) -> list[list[str]]:
    """Groups of distinct ids equal once case and surrounding or repeated spaces are ignored ('S01', 's01 ')."""
    spellings: dict[str, set[str]] = {}
    for value in ids:
        spellings.setdefault(" ".join(str(value).split()).casefold(), set()).add(str(value))
    return [sorted(v) for v in spellings.values() if len(v) > 1]
