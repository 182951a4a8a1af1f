"""Ids spelled two ways (case, spaces) are found, whatever their type."""

from eegfm.id_spellings import spelling_clashes


def test_clashes_ignore_case_and_spaces_only():
    assert spelling_clashes(["S01", "s01 ", "S02", "S 03", "S  03", 3, "3"]) == [["S01", "s01 "], ["S  03", "S 03"]]
    assert spelling_clashes(["a", "b"]) == []
