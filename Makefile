# keras-swin: set-up, main job and tests on a fresh machine.
#   make train  set up .venv, then the main job: train a small Swin on the
#               bundled digits (keras-swin train; results under runs/)
#   make demo   set up .venv, then check the bundled official checkpoints
#   make test   set up .venv, then run the suite once per Keras backend
PYTHON ?= python3
VENV ?= .venv
BACKENDS ?= tensorflow jax torch
PYTEST_ARGS ?= -q

BIN := $(VENV)/bin

.PHONY: setup train demo test lint clean

$(BIN)/.installed: pyproject.toml requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt -e .
	touch $@

setup: $(BIN)/.installed

train: setup
	$(BIN)/keras-swin train

demo: setup
	$(BIN)/keras-swin parity tests/golden

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
