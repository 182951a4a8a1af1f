"""Ids that differ only in case, spaces or leading zeros: most likely one subject (or one class) typed twice.

Kept apart, one person would sit on both sides of a fold (their windows are
not identical, so the content audit cannot see it) and one class would be
two. The Python API's metadata (:mod:`eegfm.api_inputs`) and the workflow's
``files.metadata`` table (:mod:`eegfm.recordings`) both refuse them, for
subjects and for labels alike: 'S01' and 's01', '01' and '1' (a spreadsheet
drops leading zeros), 'sub-007' and 'sub-7'. Labels get the same rule since
classes named '01' and '1' are one class typed twice far more often than two
classes; the digits after a decimal point are kept as they are, so numeric
targets such as 1.05 and 1.5 stay apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["CLASH_RULE", "spelling_clashes", "spelling_key"]

# what the ids of a clash have in common, for error messages: "'01' and '1' {CLASH_RULE}"
CLASH_RULE = "differ only in case, spaces or leading zeros"

# a whole run of digits that is not the fraction of a decimal number ('05' in '1.05')
_NUMBER = re.compile(r"(?<!\d)(?<!\d\.)\d+")


def spelling_key(value: object) -> str:
    """The id with case, surrounding or repeated spaces and leading zeros of its numbers ignored."""
    text = " ".join(str(value).split()).casefold()
    return _NUMBER.sub(lambda m: str(int(m.group())), text)


def spelling_clashes(ids: Iterable[object]) -> list[list[str]]:
    """Groups of distinct ids equal once case, surrounding or repeated spaces and leading zeros of their
    numbers are ignored ('S01' and 's01 ', '01' and '1', 'sub-007' and 'sub-7'; not '1.05' and '1.5')."""
    spellings: dict[str, set[str]] = {}
    for value in ids:
        spellings.setdefault(spelling_key(value), set()).add(str(value))
    return [sorted(v) for v in spellings.values() if len(v) > 1]
