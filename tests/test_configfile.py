"""Config files: a YAML syntax error names the file, the line and the column; `eegfm check-config` reports it."""

from __future__ import annotations

import pytest

from eegfm.cli import main
from eegfm.config import ConfigError
from eegfm.configfile import read_config_file


@pytest.mark.parametrize(
    ("text", "line", "column", "problem"),
    [
        ("seed: 0\ndatasets:\n  a: {source: synthetic\nbackbones: [x]\n", 4, 10, "expected ',' or '}'"),
        ("seed: 0\ndatasets:\n  a:\n\tsource: synthetic\n", 4, 1, "found character '\\t'"),
        ("seed: 0\n  datasets: 1\n", 2, 11, "mapping values are not allowed here"),
    ],
)
def test_a_syntax_error_names_the_file_line_and_column(tmp_path, text, line, column, problem):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    message = str(err.value)
    assert message.startswith(f"config file {path}, line {line}, column {column}: YAML syntax error: ")
    assert problem in message and "fix the syntax there" in message


def test_valid_empty_and_non_mapping_files(tmp_path):
    (tmp_path / "ok.yaml").write_text("seed: 3\n")
    assert read_config_file(tmp_path / "ok.yaml") == {"seed": 3}
    (tmp_path / "empty.yaml").write_text("")
    assert read_config_file(tmp_path / "empty.yaml") == {}
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="holds a list, not a mapping"):
        read_config_file(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_config_file(tmp_path / "missing.yaml")


def test_check_config_command(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("datasets: [\n")
    assert main(["check-config", str(tmp_path / "bad.yaml")]) == 1
    assert f"config file {tmp_path / 'bad.yaml'}, line 2" in capsys.readouterr().err
    (tmp_path / "typo.yaml").write_text("sed: 0\n")
    assert main(["check-config", str(tmp_path / "typo.yaml")]) == 1
    assert "unknown key 'sed'" in capsys.readouterr().err
    (tmp_path / "ok.yaml").write_text("seed: 0\n")
    assert main(["check-config", str(tmp_path / "ok.yaml")]) == 0


def test_check_config_runs_the_workflows_parse_time_checks(tmp_path, capsys):
    """check-config said 'ok' for weights the workflow refuses at parse time (it checked folds only)."""
    (tmp_path / "weights.yaml").write_text(f"backbones: [{{name: labram, weights: {tmp_path / 'nope.pth'}}}]\n")
    assert main(["check-config", str(tmp_path / "weights.yaml")]) == 1
    assert f"backbones[0] (labram): weights {tmp_path / 'nope.pth'} do not exist" in capsys.readouterr().err
    (tmp_path / "ages.tsv").write_text(f"path\tsubject\tage\n{tmp_path / 'weights.yaml'}\ts1\tforty\n")
    (tmp_path / "ages.yaml").write_text(
        f"datasets: {{ages: {{source: files, target: regression, cv: {{scheme: within_subject}}, "
        f"files: {{metadata: {tmp_path / 'ages.tsv'}, label_column: age}}}}}}\n")
    assert main(["check-config", str(tmp_path / "ages.yaml")]) == 1
    assert "forty" in capsys.readouterr().err


def test_a_key_written_twice_names_both_lines(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("datasets:\n  a: {source: synthetic}\nseed: 1\ndatasets:\n  b: {source: synthetic}\n")
    with pytest.raises(ConfigError, match=rf"config file {path}, line 4: key 'datasets' is written twice in the same "
                       r"mapping \(first on line 1\).*merge the two into one"):
        read_config_file(path)  # YAML alone would keep only dataset b
    path.write_text("datasets:\n  a:\n    source: synthetic\n    seed: 1\n    source: files\n")
    with pytest.raises(ConfigError, match="line 5: key 'source' is written twice"):
        read_config_file(path)
    # anchors and merge keys still work: a merged key may be overridden
    path.write_text("base: &b {lr: 1.0, epochs: 2}\nrun:\n  <<: *b\n  lr: 0.5\n")
    assert read_config_file(path)["run"] == {"lr": 0.5, "epochs": 2}
