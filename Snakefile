# eegfm: recordings -> windows -> splits -> embeddings -> probes / fine-tuning -> report.
# All science lives in src/eegfm; the rules only wire files together.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# This checkout's src/ comes first, before any installed eegfm (a venv shared
# by two checkouts, a non-editable install), so the code that validates the
# config is the code the jobs run (they put it first in workflow/scripts/_bootstrap.py).
SRC = str(Path(workflow.basedir) / "src")
sys.path[:] = [SRC] + [p for p in sys.path if p != SRC]

import eegfm

if not Path(eegfm.__file__).resolve().is_relative_to(Path(SRC).resolve()):
    raise ImportError(
        f"eegfm was already imported from {eegfm.__file__}, not from this checkout's {SRC}; "
        "run Snakemake in a fresh process"
    )

from eegfm.config import ConfigError
from eegfm.configfile import read_config_file

# A --configfile given on the command line replaces the defaults instead of
# being deep-merged into them (which would keep the built-in dataset running).
# Snakemake reports a YAML error only as "not valid JSON or YAML": read the
# default file first, so an error names its line.
# Every --configfile is read again for keys written twice, which Snakemake's
# loader silently collapses to the last one.
for _config_file in workflow.overwrite_configfiles or ["config/config.yaml"]:
    try:
        read_config_file(_config_file)
    except ConfigError as err:
        raise ValueError(str(err)) from None

if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/windows.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/job_server.smk"


rule all:
    default_target: True
    input:
        report_outputs(),
        [f"{d}/metrics.json" for d in finetune_fold_dirs()],
