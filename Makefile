# Two commands on a fresh machine: `make run` (install + default study to its figures), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
SNAKEMAKE := $(BIN)/snakemake --cores $(CORES)

STUDY ?= $(shell sed -n 's/^study: *//p' config/config.yaml)

.PHONY: install run figures report test lint format dryrun clean

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

# The study's HTML report (figures, tables, summary, provenance); trains only what is missing.
report: install
	$(SNAKEMAKE)
	$(BIN)/snakemake --report results/$(STUDY)/report.html

# Formatters and linters, settings pinned in pyproject.toml; `make format` applies the formatters.
lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt Snakefile rules

dryrun: install
	for config in config/*.yaml; do $(BIN)/snakemake -n --quiet rules --configfile $$config || exit 1; done

test: install lint dryrun
	$(BIN)/pytest -q

# The engine against the plain Keras loop, the matmul peak, the study's time split and DAG scale
# (several minutes); writes results/bench/{engine,study,dag}.csv and prints them.
.PHONY: bench
bench: install
	$(BIN)/python -m batch_science.bench --out results/bench

# The study on a real single-node SLURM (Debian's slurm-wlm, installed if missing): needs root.
.PHONY: test-slurm
test-slurm: install
	BATCH_SCIENCE_SLURM_TEST=1 $(BIN)/pytest -q tests/pipeline/test_slurm.py

# Everything a run writes: outputs, logs, benchmarks, Snakemake's records, and the datasets it
# prepared (data_dir; downloaded ones included).
DATA_DIR ?= $(or $(shell sed -n 's/^data_dir: *//p' config/config.yaml 2>/dev/null),data/tfds)
clean:
	rm -rf results logs benchmarks .snakemake $(DATA_DIR)
	-rmdir -p $(dir $(DATA_DIR)) 2>/dev/null
