# Two commands on a fresh machine: `make run` (install + default study to its figures), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
SNAKEMAKE := $(BIN)/snakemake --cores $(CORES)

# The study config of `make run`, `make figures` and `make report`: `make report CONFIG=my_study.yaml`.
CONFIG ?= config/config.yaml
STUDY = $(shell $(BIN)/python -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['study'])")

.PHONY: install run figures report test lint format dryrun clean

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/snakemake

run: install
	$(SNAKEMAKE) --configfile $(CONFIG)

figures: install
	$(SNAKEMAKE) --configfile $(CONFIG) -- figures

# The study's HTML report (figures, tables, summary, provenance); trains only what is missing.
report: install
	$(SNAKEMAKE) --configfile $(CONFIG)
	$(BIN)/snakemake --configfile $(CONFIG) --report results/$(STUDY)/report.html

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
# (several minutes); writes results/bench/{engine,study,dag,paper_models,pruning}.csv and prints them.
.PHONY: bench
bench: install
	$(BIN)/python -m batch_science.bench --out results/bench

# The study on a real single-node SLURM (Debian's slurm-wlm, installed if missing): needs root.
.PHONY: test-slurm
test-slurm: install
	BATCH_SCIENCE_SLURM_TEST=1 $(BIN)/pytest -q tests/pipeline/test_slurm.py

# The conda env file's packages in a fresh venv (pip's cache or PyPI, minutes) run a tune job without
# the package installed, as `snakemake --sdm conda` would (conda itself does not run here).
.PHONY: test-env
test-env: install
	BATCH_SCIENCE_ENV_TEST=1 $(BIN)/pytest -q tests/test_envs.py

# Everything a run writes: outputs, logs, benchmarks, Snakemake's records, and the datasets it
# prepared (data_dir; downloaded ones included).
DATA_DIR ?= $(or $(shell sed -n 's/^data_dir: *//p' config/config.yaml 2>/dev/null),data/tfds)
clean:
	rm -rf results logs benchmarks .snakemake $(DATA_DIR)
	-rmdir -p $(dir $(DATA_DIR)) 2>/dev/null
