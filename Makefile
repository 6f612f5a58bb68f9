# keras-swin: set-up, main job and tests on a fresh machine.
#   make train  set up .venv, then the main job: train a small Swin on the
#               bundled digits (keras-swin train; results under runs/)
#   make train-segmentation  set up .venv, then the segmentation main
#               job: a small Swin-UperNet on generated scenes (keras-swin
#               train --task segmentation; results under runs/)
#   make demo   set up .venv, then check the bundled official checkpoints
#               (tests/golden_harness.py)
#   make test   set up .venv, lint, then run the suite once per Keras
#               backend (the three in parallel processes; a line per test
#               file as it finishes, full logs in .test-logs/)
#   make test-fast  one backend (FAST_BACKEND, default torch), without the
#               tests marked slow, stopping at the first failure
#   make bench  set up .venv, then the speed benchmark against PyTorch and
#               KerasHub (benchmarks/run.py; BENCH_ARGS for its options;
#               benchmarks/results/latest.md; about 50 min on 2 cores
#               with the default float32 and bfloat16 before the SwinV2-T
#               row was added, which makes it longer)
PYTHON ?= python3
VENV ?= .venv
BACKENDS ?= tensorflow jax torch
FAST_BACKEND ?= torch
PYTEST_ARGS ?=

BIN := $(VENV)/bin

# The JAX leg of `make test` spends most of its time compiling small test
# models with XLA:CPU, not running them; without XLA's backend
# optimisations it compiles about a third faster and the suite passes
# with the same tolerances. Only the tests: `make demo` (the golden
# harness), the benchmark and users get XLA's defaults. An XLA_FLAGS of
# your own wins.
JAX_TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true

.PHONY: setup train train-segmentation demo test test-fast bench lint clean

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

train-segmentation: setup
	$(BIN)/keras-swin train --task segmentation

demo: setup
	$(BIN)/python tests/golden_harness.py tests/golden

bench: setup
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# The lines of a pytest log shown while it runs: one per test file (with
# its dots and percentage), failures, and the final count.
PROGRESS := ^(tests/[^ ]+\.py [.sxXFE]|[.sxXFE]+ +\[|(FAILED|ERROR) )|(passed|failed|error|no tests ran).* in [0-9.]+s

test: setup
	$(BIN)/ruff check keras_swin weights_tools tests examples
	$(BIN)/ruff format --check keras_swin weights_tools tests examples
	@# One pytest process per backend, all at once: most of a leg's time
	@# is single-threaded compilation, so on 2 cores the legs overlap well.
	@# Each leg streams its progress lines prefixed with its backend; the
	@# whole log is in .test-logs/BACKEND.log, its exit status in .rc.
	@mkdir -p .test-logs; pids=""; \
	for backend in $(BACKENDS); do \
		echo "[$$backend] started, log in .test-logs/$$backend.log"; \
		rm -f .test-logs/$$backend.rc; \
		( start=$$(date +%s); \
		  xla_flags="$${XLA_FLAGS:-}"; \
		  if [ "$$backend" = jax ] && [ -z "$$xla_flags" ]; then \
			xla_flags="$(JAX_TEST_XLA_FLAGS)"; fi; \
		  { XLA_FLAGS="$$xla_flags" KERAS_BACKEND=$$backend \
			PYTHONUNBUFFERED=1 $(BIN)/python -m pytest tests \
			-p no:cacheprovider $(PYTEST_ARGS) 2>&1; \
		    echo $$? > .test-logs/$$backend.rc; } \
			| tee .test-logs/$$backend.log \
			| sed -u -n -E '\%$(PROGRESS)%s%^%['"$$backend"'] %p'; \
		  rc=$$(cat .test-logs/$$backend.rc 2>/dev/null || echo 1); \
		  echo "== $$backend: exit $$rc after $$(( $$(date +%s) - start )) s" \
			| tee -a .test-logs/$$backend.log; \
		  exit $$rc ) & \
		pids="$$pids $$!"; \
	done; \
	status=0; for pid in $$pids; do wait $$pid || status=1; done; \
	echo "== summary"; \
	for backend in $(BACKENDS); do \
		summary=$$(grep -E '$(PROGRESS)' .test-logs/$$backend.log \
			| grep -E ' in [0-9.]+s' | tail -n 1); \
		rc=$$(cat .test-logs/$$backend.rc 2>/dev/null || echo 1); \
		echo "[$$backend] exit $$rc: $$summary"; \
	done; \
	exit $$status

test-fast: setup
	KERAS_BACKEND=$(FAST_BACKEND) $(BIN)/python -m pytest tests \
		-p no:cacheprovider -m "not slow" -x $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check keras_swin weights_tools tests examples
	$(BIN)/ruff format --check keras_swin weights_tools tests examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .test-logs
