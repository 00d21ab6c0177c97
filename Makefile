# Only python3.11 and make are assumed; everything else is installed into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# What each target needs: run the runtime alone, test/lint also the tools and the extras.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint install chromium bench load clean wrk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes, so `make test` also updates an old .venv.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/banditrec serve

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Headless chromium for the dashboard's browser test (skipped without it); needs root.
chromium:
	.ci/install-chromium

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench,peers]'
	touch $(BENCH_STAMP)

# wrk, the C load generator the endpoint benchmark runs next to locust (Debian package);
# without root the benchmark skips its wrk runs and says so.
wrk:
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq wrk

# Benchmarks: ratios against baselines measured in the same run (bench/README.md).
bench: $(BENCH_STAMP) wrk
	$(BIN)/python -m bench

# Bounded locust run against a local service (started if not running).
load: $(BENCH_STAMP)
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
