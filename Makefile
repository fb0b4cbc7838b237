.PHONY: demo test build demo-wheel faults bench bench-curves bench-peers lint messages

# The virtualenv's Python once scripts/demo or scripts/test has made it.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

# Run the example project end to end (README's first command).
demo:
	scripts/demo

# Run the test suite (README's second command); make test ARGS="tests/core -x"
test:
	scripts/test $(ARGS)

# Build the sdist and the wheel into dist/ and check what they hold; then
# demo-wheel runs the example project on that wheel, installed in a fresh virtualenv.
build:
	scripts/build

demo-wheel:
	scripts/demo --wheel $(firstword $(wildcard dist/django_taskq_streams-*.whl))

# Fault-injection tests at full scale (tests/faults; CI runs them small), then a
# table of what they measured. make faults ARGS="-k kill"; TASKQ_FAULTS_SCALE=small
# for the quick version. The figures stay in $(FAULTS_REPORT).
FAULTS_REPORT ?= $(CURDIR)/.faults-report.jsonl
faults:
	rm -f $(FAULTS_REPORT)
	TASKQ_FAULTS_SCALE=$${TASKQ_FAULTS_SCALE:-full} TASKQ_FAULTS_REPORT=$(FAULTS_REPORT) \
		scripts/test tests/faults -p no:randomly $(ARGS); \
	status=$$?; $(PYTHON) -m tests.faults.report $(FAULTS_REPORT); exit $$status

# Benchmark against a private redis-server and real workers, from benchmarks/ of
# the checkout (docs/benchmarks.md).
# make bench BENCH_ARGS="--quick"   or   make bench PYTHON=.venv/bin/python
bench:
	$(PYTHON) -m benchmarks.bench $(BENCH_ARGS)

# Cost as work grows: Redis bytes per task, drain rate, ETA lateness and worker
# memory at 10^4..10^6 tasks, and 1/10/100 queues on one worker (about 20 minutes;
# docs/benchmarks.md, "Cost as work grows").  make bench-curves CURVES_ARGS="--quick"
bench-curves:
	$(PYTHON) -m benchmarks.curves $(CURVES_ARGS)

# django_taskq side by side with Celery, Huey, Dramatiq and RQ: builds .venv-peers
# from benchmarks/peers/requirements.txt if needed, runs every system (defaults and
# documented tuning) round-robin, and writes the table into docs/benchmarks.md.
# make bench-peers PEERS_ARGS="--tasks 5000 --write-docs"
PEERS_ARGS ?= --write-docs
bench-peers:
	scripts/bench-peers $(PEERS_ARGS)

# The admin's translation catalogs: update them from the code and templates, and
# compile them (translate the new entries of each .po, then run it again).
messages:
	P=$$($(PYTHON) -c 'import sys; print(sys.executable)') && cd django_taskq && \
	$$P -m django makemessages -l es -l ja -l pt_BR -l zh_Hans --no-obsolete && \
	$$P -m django compilemessages

# What CI checks before the tests (needs the dev extras: scripts/test installs them).
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy django_taskq
