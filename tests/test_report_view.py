"""What the report page says, from small summary records (report_view's sentence builders)."""

from __future__ import annotations

from eegfm.report_view import held_out_text, input_warnings


def test_held_out_text_counts_units_only_when_every_fold_completed():
    assert held_out_text({"unit": "run", "n_units": 3, "n_failed": 0}) == " holding out 3 runs"
    assert held_out_text({"unit": "subject", "n_units": 1, "n_failed": 0}) == " holding out 1 subject"
    # 6 of 8 subjects were pooled after a failed fold: the design's count is not 6
    assert held_out_text({"unit": "subject", "n_units": 6, "n_failed": 1}) == " holding out subjects"
    assert held_out_text({"unit": None, "n_units": None, "n_failed": 0}) == ""


def test_input_warnings_read_any_dropped_record_generically():
    info = {"channels_dropped": {"eog": ["EOG1"]}, "event_conflicts_dropped": {"run-1.edf": 3},
            "n_windows_dropped": 0, "windows_dropped": ["a", "b"]}
    assert input_warnings("motor", info) == [
        "motor: event conflicts dropped: run-1.edf: 3",
        "motor: windows dropped: a", "motor: windows dropped: b"]


def test_dropped_windows_of_the_windows_job_are_one_plain_line_each():
    info = {"dropped_windows": [
        {"recording": "run-1.edf", "subject": "S1", "reason": "events of different classes at one sample", "n": 2,
         "first_s": 10.0, "labels": ["left", "right"]},
        {"recording": "run-2.edf", "subject": "S1", "reason": "does not fit in the recording", "n": 1,
         "first_s": 0.0, "labels": ["T0"]}]}
    assert input_warnings("motor", info) == [
        "motor: 2 labelled window(s) of run-1.edf (subject S1) dropped: events of different classes at one sample "
        "(first at 10.0 s; left, right)",
        "motor: 1 labelled window(s) of run-2.edf (subject S1) dropped: does not fit in the recording (first at 0.0 s; "
        "T0)"]
