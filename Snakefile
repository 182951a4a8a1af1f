# eegfm: recordings -> windows -> splits -> embeddings -> probes / fine-tuning -> report.
# All science lives in src/eegfm; the rules only wire files together.
from snakemake.utils import min_version

min_version("9.0")


# A --configfile given on the command line replaces the defaults instead of
# being deep-merged into them (which would keep the built-in dataset running).
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


rule all:
    default_target: True
    input:
        report_outputs(),
        [f"{d}/metrics.json" for d in finetune_fold_dirs()],
