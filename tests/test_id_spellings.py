"""Ids spelled two ways (case, spaces, leading zeros) are found, whatever their type."""

from eegfm.id_spellings import spelling_clashes


def test_clashes_ignore_case_and_spaces():
    assert spelling_clashes(["S01", "s01 ", "S02", "S 03", "S  03", 3, "3"]) == [["S01", "s01 "], ["S  03", "S 03"]]
    assert spelling_clashes(["a", "b"]) == []


def test_clashes_ignore_leading_zeros_of_numbers():
    """A spreadsheet turns '01' into 1: one subject would be two, on both sides of a fold."""
    assert spelling_clashes(["01", "1", 1, "2"]) == [["01", "1"]]
    assert spelling_clashes(["S01", "S1", "sub-007", "sub-7", "sub-07_ses-01", "sub-7_ses-1"]) == [
        ["S01", "S1"], ["sub-007", "sub-7"], ["sub-07_ses-01", "sub-7_ses-1"]]
    assert spelling_clashes(["0", "00", "10", "100", "S10", "S1"]) == [["0", "00"]]


def test_numbers_that_differ_are_not_clashes():
    """The fraction of a decimal number keeps its zeros: 1.05 and 1.5 are two targets (or classes)."""
    assert spelling_clashes(["1.05", "1.5", "1.005", "0.5", ".5", "2.50", "2.5"]) == []
    assert spelling_clashes(["sub.01", "sub.1"]) == [["sub.01", "sub.1"]]  # a dot that is no decimal point
