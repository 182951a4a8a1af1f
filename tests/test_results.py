"""load_results: a finished run's tables, and a clear error naming the folder otherwise."""

from __future__ import annotations

import pytest

from eegfm.results import load_results


def test_a_missing_or_half_finished_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope'} is not a folder"):
        load_results(tmp_path / "nope")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "metrics.tsv").write_text("dataset\tmodel\n")
    with pytest.raises(FileNotFoundError, match=rf"no finished run in {tmp_path}: {tmp_path / 'report' / 'summary.tsv'}"
                                                r", .*statistics.tsv, .*summary.json missing"):
        load_results(tmp_path)


def test_the_report_folder_itself_points_to_the_results_folder_above_it(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    for name in ("metrics.tsv", "summary.tsv", "statistics.tsv"):
        (report / name).write_text("dataset\tmodel\nNA\tNone\n")
    (report / "summary.json").write_text("{}\n")
    with pytest.raises(FileNotFoundError, match=rf"is a run's report folder; .*load_results\('{tmp_path}'\)"):
        load_results(report)
    loaded = load_results(tmp_path)
    assert loaded.metrics.iloc[0].tolist() == ["NA", "None"]  # names, not missing values
