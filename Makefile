# tinyllm — every command sets up what it needs: a fresh machine needs only python3 (3.11+) and make.
# Precedence of settings: make VAR=value > environment > the defaults below.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8080
STACK  ?= gcp
CLOUD  ?= gcp

.PHONY: install model serve lint format test bench bundle preflight deploy destroy smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Train only when artifacts/model/ does not match the corpus and training config (see train/manifest.py).
model: install
	$(BIN)/python -m train --if-stale

# With TINYLLM_MODEL_DIR set (e.g. a converted checkpoint), that model is served as it is: nothing is trained.
serve: $(if $(TINYLLM_MODEL_DIR),install,model)
	$(BIN)/python -m functions.devtools serve --port $(PORT)

# Lint, format check and type check (versions pinned in pyproject's dev extra). All three run, so one CI run
# shows every finding; any finding fails the target.
lint: install
	status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/basedpyright --pythonpath $(BIN)/python || status=1; \
	exit $$status

# Fix what ruff can fix by itself (import order, modern spellings), reformat, then show what is left to fix by hand
# (this target fails while something is). Type errors are always fixed by hand.
format: install
	$(BIN)/ruff check --fix-only .
	$(BIN)/ruff format .
	$(BIN)/ruff check .

# CI runs this (.ci/run): a lint or type error fails it before a test runs.
test: lint
	$(BIN)/python -m pytest

bench: model
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# MODEL_DIR=DIR bakes that model directory as it is (never retrained); unset, artifacts/model/, trained if stale.
bundle: $(if $(MODEL_DIR),install,model)
	$(BIN)/python -m infra.bundle $(CLOUD) $(if $(ARCH),--arch $(ARCH),) $(if $(MODEL_DIR),--model-dir $(MODEL_DIR),)

# What a first `pulumi up` needs (CLI, credentials, quotas, APIs, providers), checked before anything is created.
preflight: install
	$(BIN)/python -m infra.preflight $(STACK)

# `pulumi up`, re-run once only if a first GCP deploy hits the build's IAM propagation race (infra/deploy.py).
deploy: preflight
	$(BIN)/python -m infra.deploy $(STACK)

destroy: install
	cd infra && pulumi destroy --stack $(STACK)

# The smoke client needs only the `smoke` extra (botocore for SigV4), never torch or the dev set: CI runs it in a
# virtualenv that has just `.[infra]`, where .installed does not exist.
$(VENV)/.smoke-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[smoke]'
	touch $@

smoke: $(VENV)/.smoke-installed
	$(BIN)/python -m infra.smoke $(STACK)

clean:
	rm -rf artifacts dist .pytest_cache .hypothesis
