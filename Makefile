# kpi-stream developer entry points. GNU make; every recipe runs in bash.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Touched after a successful install; a newer pyproject.toml or lock means reinstall.
STAMP := $(VENV)/.installed
# Every dependency pinned with its hashes (infra/lock.sh regenerates it from pyproject.toml).
LOCK := infra/requirements/dev.lock
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-k stack -x'`.
PYTEST_ARGS ?=

.PHONY: help install native stack stack-down stack-status test lint run bench bench-replay

help:
	@echo "make install       create $(VENV) and install the project with dev extras"
	@echo "make native        (re)compile the hot modules of tables/ with mypyc (install does it)"
	@echo "make stack         start local Kafka + Redis, create the topics, print the env exports"
	@echo "make stack-down    stop the local Kafka + Redis"
	@echo "make test          run the test suite against a real stack (started and stopped here"
	@echo "                   unless KAFKA_BOOTSTRAP_SERVERS and REDIS_URL are already set)"
	@echo "make lint          ruff + mypy"
	@echo "make run           stack + worker + live simulator; prints the wallboard and /metrics URLs"

# Compiled core: rebuilt whenever a source of tables/ changes. A failed build
# is not fatal: the same modules run as plain Python, only slower.
NATIVE_STAMP := .build/native.stamp
NATIVE_SRC := $(wildcard tables/*.py) infra/build_native.py

install: $(STAMP) $(NATIVE_STAMP)

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SRC)
	@mkdir -p .build
	@if $(PY) infra/build_native.py > .build/native.log 2>&1; then \
		echo "tables/: compiled with mypyc"; \
	else \
		$(PY) infra/build_native.py --clean; \
		echo "make: compiling tables/ failed (.build/native.log has why); the core runs as" \
			"plain Python, slower. For full speed install a C compiler and the Python" \
			"headers (apt-get install gcc python3.11-dev), then run make native." >&2; \
	fi
	@touch $@

native: $(STAMP)
	@rm -f $(NATIVE_STAMP)
	@$(MAKE) --no-print-directory $(NATIVE_STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@if [ ! -x $(PY) ]; then \
		command -v $(PYTHON) >/dev/null 2>&1 || { \
			echo "make: $(PYTHON) not found; install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv)" >&2; \
			exit 1; }; \
		$(PYTHON) -m venv $(VENV); \
	fi
	@$(PY) -m pip install -q --require-hashes -r $(LOCK) || { \
		echo "make: installing $(LOCK) failed. If pyproject.toml changed, run infra/lock.sh" \
			"and commit the new locks; a hash mismatch means a download differs from the one" \
			"locked: do not work around it." >&2; exit 1; }
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

stack: install
	@infra/stack.sh up

stack-down:
	@infra/stack.sh down

stack-status:
	@infra/stack.sh status

# stack.sh run stops what it started even when pytest fails or is interrupted.
# Exit 5 means pytest collected nothing: for this suite that is a broken
# setup, not a pass.
test: install
	@infra/browser.sh ensure
	@infra/prometheus.sh ensure
	@infra/apt.sh ensure amtool prometheus-alertmanager
	@infra/apt.sh ensure docker-compose docker-compose
	@rc=0; KPI_EXPECT_NATIVE=1 infra/stack.sh run -- $(PY) -m pytest -q $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
		echo "make test: no tests ran (pytest exit 5); the suite must run tests" >&2; \
		exit 1; \
	fi; \
	exit $$rc

lint: install
	$(PY) -m ruff check stream_app agents tables connectors tests
	$(PY) -m mypy stream_app agents tables connectors

run: install
	@infra/run.sh

# Speed and memory are measured here, never by timed tests. BENCH_ARGS passes options,
# e.g. `make bench BENCH_ARGS='--events 200000 --memory-events 1000000'`.
BENCH_ARGS ?=
bench: install
	@infra/stack.sh run -- $(PY) -m stream_app bench $(BENCH_ARGS)

bench-replay: install
	@$(PY) -m stream_app bench --skip live --skip latency --skip gateway --skip soak $(BENCH_ARGS)
