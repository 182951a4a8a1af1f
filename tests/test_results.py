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


def test_a_results_object_shows_itself_in_one_line(tmp_path):
    """QA: the dataclass repr printed every table in full when a notebook cell ended with the result."""
    report = tmp_path / "report"
    report.mkdir()
    (report / "metrics.tsv").write_text("dataset\tmodel\tregime\tfold\n" + "d\tm\tprobe\t0\n" * 200)
    (report / "summary.tsv").write_text("dataset\tmodel\tregime\nd\tm\tprobe\nd\tm\thead\n")
    (report / "statistics.tsv").write_text("test\n")
    (report / "summary.json").write_text("{}\n")
    assert repr(load_results(tmp_path)) == f"Results('{tmp_path}': 200 fold rows; d: 2 model x regime)"
