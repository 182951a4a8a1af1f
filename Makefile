# The two commands of README.md: `make run` and `make test`.
VENV   ?= .venv
CORES  ?= 2
CONFIG ?=
BIN    := $(VENV)/bin
# CONFIG=my.yaml: checked first by eegfm (a YAML error names its line), then given to Snakemake
SMK    := $(if $(CONFIG),$(BIN)/eegfm check-config $(CONFIG) && )$(BIN)/snakemake --cores $(CORES) \
          --workflow-profile workflow/profiles/default $(if $(CONFIG),--configfile $(CONFIG))

.PHONY: install run report test lint dry-run clean
.DEFAULT_GOAL := run

install: $(VENV)/.installed  ## pinned environment in .venv (torch CPU build where available)

$(VENV)/.installed: pyproject.toml requirements/lock.txt tools/install.sh
	tools/install.sh $(VENV)
	touch $@

run: install  ## run the workflow on config/config.yaml (or CONFIG=my.yaml) and build the Snakemake report
	$(SMK)
	$(SMK) --report results/report/snakemake-report.html

dry-run: install  ## what would run
	$(SMK) -n

lint: install  ## snakemake --lint and ruff (both also run as tests)
	$(BIN)/snakemake --lint
	$(BIN)/ruff check .

test: install  ## the whole test suite, end-to-end workflow runs included
	$(BIN)/python -m pytest

clean:  ## remove every output (the embedding cache included)
	rm -rf results/* .snakemake
	touch results/.gitkeep
