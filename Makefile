# Two commands on a fresh machine: `make run` (install + default study to its figures), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
SNAKEMAKE := $(BIN)/snakemake --cores $(CORES)

.PHONY: install run figures test lint dryrun clean

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/snakemake

run: install
	$(SNAKEMAKE)

figures: install
	$(SNAKEMAKE) figures

lint: install
	$(BIN)/snakemake --lint

dryrun: install
	for config in config/*.yaml; do $(BIN)/snakemake -n --quiet rules --configfile $$config || exit 1; done

test: install lint dryrun
	$(BIN)/pytest -q

# The study on a real single-node SLURM (Debian's slurm-wlm, installed if missing): needs root.
.PHONY: test-slurm
test-slurm: install
	BATCH_SCIENCE_SLURM_TEST=1 $(BIN)/pytest -q tests/test_slurm.py

clean:
	rm -rf results logs benchmarks .snakemake
