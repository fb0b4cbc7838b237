.PHONY: demo test bench lint

# The virtualenv's Python once scripts/demo or scripts/test has made it.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

# Run the example project end to end (README's first command).
demo:
	scripts/demo

# Run the test suite (README's second command); make test ARGS="tests/core -x"
test:
	scripts/test $(ARGS)

# Benchmark against a private redis-server and real workers (docs/benchmarks.md).
# make bench BENCH_ARGS="--quick"   or   make bench PYTHON=.venv/bin/python
bench:
	$(PYTHON) -m django_taskq.bench $(BENCH_ARGS)

# What CI checks before the tests (needs the dev extras: scripts/test installs them).
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy django_taskq
