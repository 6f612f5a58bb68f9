# keras-swin: set-up, main job and tests on a fresh machine.
#   make train  set up .venv, then the main job: train a small Swin on the
#               bundled digits (keras-swin train; results under runs/)
#   make demo   set up .venv, then check the bundled official checkpoints
#   make test   set up .venv, then run the suite once per Keras backend
#   make bench  set up .venv, then the speed benchmark against PyTorch and
#               KerasHub (benchmarks/results/latest.md; about 40 min on 2 cores)
PYTHON ?= python3
VENV ?= .venv
BACKENDS ?= tensorflow jax torch
PYTEST_ARGS ?= -q

BIN := $(VENV)/bin

.PHONY: setup train demo test bench lint clean

$(BIN)/.installed: pyproject.toml requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt -e .
	# KerasHub, a benchmark baseline: its model code needs nothing more,
	# while its declared tensorflow-text would pull the full tensorflow.
	$(BIN)/python -m pip install --quiet --no-deps keras-hub==0.32.0
	touch $@

setup: $(BIN)/.installed

train: setup
	$(BIN)/keras-swin train

demo: setup
	$(BIN)/keras-swin parity tests/golden

bench: setup
	$(BIN)/keras-swin benchmark $(BENCH_ARGS)

test: setup
	$(BIN)/ruff check keras_swin weights_tools tests examples
	@set -e; for backend in $(BACKENDS); do \
		echo "== KERAS_BACKEND=$$backend"; \
		start=$$(date +%s); \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest tests $(PYTEST_ARGS); \
		echo "== $$backend: $$(( $$(date +%s) - start )) s"; \
	done

lint: setup
	$(BIN)/ruff check keras_swin weights_tools tests examples
	$(BIN)/ruff format --check keras_swin weights_tools tests examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
