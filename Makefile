.PHONY: bench

PYTHON ?= python

# Benchmark against a private redis-server and real workers (docs/benchmarks.md).
# make bench BENCH_ARGS="--quick"   or   make bench PYTHON=.venv/bin/python
bench:
	$(PYTHON) -m django_taskq.bench $(BENCH_ARGS)
