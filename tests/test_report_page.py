"""The report page: its template and CSS ship with the package (editable install and wheel alike), every name
from a record is escaped, and a value the template names but the context lacks is an error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jinja2
import pytest
from markupsafe import escape

from eegfm import report_page
from tests.test_report import build_inputs, run_aggregate

REPO = Path(__file__).resolve().parents[1]
EVIL_DATASET = '<script>alert("dataset")</script>'
EVIL_MODEL = "<img src=x onerror=alert('model')>"


def test_the_template_and_css_are_read_from_the_package():
    env = report_page.environment()
    template = env.get_template(report_page.TEMPLATE)
    css, path, _ = env.loader.get_source(env, report_page.CSS)
    package = Path(report_page.__file__).parent / "templates"
    assert Path(template.filename) == package / report_page.TEMPLATE and Path(path) == package / report_page.CSS
    assert "td.num{" in css and env.autoescape is True and env.undefined is jinja2.StrictUndefined


def test_a_wheel_ships_the_template_and_css(tmp_path):
    """Built from a copy of the project (pyproject.toml's package data), unpacked alone on sys.path."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src" / "eegfm", project / "src" / "eegfm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "--disable-pip-version-check", str(project), "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("eegfm-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    code = ("import json, eegfm.report_page as p; env = p.environment(); "
            "print(json.dumps([p.__file__, env.get_template(p.TEMPLATE).filename, env.loader.get_source(env, p.CSS)[1]]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    module, template, css = json.loads(done.stdout)
    site = tmp_path / "site" / "eegfm"
    assert Path(module) == site / "report_page.py"  # the wheel's copy, not the working tree's
    assert Path(template) == site / "templates" / "report.html.j2" and Path(css) == site / "templates" / "report.css"


def test_names_from_the_records_are_escaped(tmp_path):
    """A dataset and a model named like markup: shown as text everywhere, never as tags."""
    inputs = build_inputs(tmp_path / "in")
    for kind in ("metrics_paths", "pointer_paths"):
        inputs[kind] = [p for p in inputs[kind] if json.loads(Path(p).read_text())["dataset"] == "sleep"]
        for path in inputs[kind]:
            record = json.loads(Path(path).read_text())
            record["dataset"] = EVIL_DATASET
            for key in ("model", "backbone"):
                if record.get(key) == "cbramod":
                    record[key] = EVIL_MODEL
            Path(path).write_text(json.dumps(record))
    for kind in ("windows_paths", "folds_paths"):
        inputs[kind] = {EVIL_DATASET: inputs[kind]["sleep"]}
    summary = run_aggregate(inputs, tmp_path / "report", n_permutations=0, n_bootstrap=0)
    assert summary["best"][EVIL_DATASET]["model"] == EVIL_MODEL
    page = (tmp_path / "report" / "report.html").read_text()
    assert EVIL_DATASET not in page and EVIL_MODEL not in page and "<script" not in page
    assert page.count(str(escape(EVIL_DATASET))) > 10 and page.count(str(escape(EVIL_MODEL))) > 10
    assert str(escape(f"{EVIL_DATASET} · {EVIL_MODEL}")) in page  # the channel adaptation record's title
    figures = re.findall(r'<img alt="[^"<>]+" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page)
    assert len(figures) >= 3 and len(re.findall(r"<img ", page)) == len(figures)  # the figures, no other image


def test_a_value_missing_from_the_context_is_an_error():
    with pytest.raises(jinja2.UndefinedError, match="title"):
        report_page.render_page({})
