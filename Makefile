# keras-swin: set-up, main job and tests on a fresh machine.
#   make train  set up .venv, then the main job: train a small Swin on the
#               bundled digits (keras-swin train; results under runs/)
#   make demo   set up .venv, then check the bundled official checkpoints
#   make test   set up .venv, then run the suite once per Keras backend
#               (the three backends in parallel processes)
#   make bench  set up .venv, then the speed benchmark against PyTorch and
#               KerasHub (benchmarks/results/latest.md; about 50 min on 2 cores
#               with the default float32 and bfloat16)
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
	@# One pytest process per backend, all at once: most of a leg's time
	@# is single-threaded compilation, so on 2 cores the legs overlap well.
	@# Each leg's log is printed whole when it ends (also kept in .test-logs/).
	@mkdir -p .test-logs; pids=""; \
	for backend in $(BACKENDS); do \
		echo "== KERAS_BACKEND=$$backend: started, log in .test-logs/$$backend.log"; \
		( start=$$(date +%s); \
		  KERAS_BACKEND=$$backend $(BIN)/python -m pytest tests \
			-p no:cacheprovider $(PYTEST_ARGS) > .test-logs/$$backend.log 2>&1; \
		  rc=$$?; \
		  echo "== $$backend: exit $$rc after $$(( $$(date +%s) - start )) s" \
			>> .test-logs/$$backend.log; \
		  cat .test-logs/$$backend.log; exit $$rc ) & \
		pids="$$pids $$!"; \
	done; \
	status=0; for pid in $$pids; do wait $$pid || status=1; done; \
	exit $$status

lint: setup
	$(BIN)/ruff check keras_swin weights_tools tests examples
	$(BIN)/ruff format --check keras_swin weights_tools tests examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .test-logs
