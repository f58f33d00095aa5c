VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo demo-lambda demo-approval test bench install clean

$(VENV)/bin/activate:
	python3 -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/activate setup.cfg setup.py pyproject.toml
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The main job org-wide against the local sandbox; the sandbox stops even when a step fails.
demo: install
	$(VENV)/bin/c7n-unused-keys demo -c custodian.yml --policies policies -s .demo

# The lambda/ policies deployed to the sandbox's accounts with c7n-org, each function
# invoked once as Lambda would run it, and the report read back from S3.
demo-lambda: install
	$(VENV)/bin/c7n-unused-keys demo-lambda -c custodian.yml --policies lambda -s .demo-lambda

# A delete approved from Slack, end to end: the digest's button clicked, signed as Slack
# signs, answered by the local approval app; the next run deletes; the report names who.
demo-approval: install
	$(VENV)/bin/c7n-unused-keys demo-approval -c custodian.yml -s .demo-approval

test: install
	$(VENV)/bin/ruff check
	# An editable install leaves no bytecode: without it the start-up hook compiles every run.
	$(PY) -m compileall -q plugin
	# Three workers on two cores: a test waiting on a retry or a subprocess leaves its core
	# to another (166 s against 178 s with four, one run each; see docs/development.md).
	$(PY) -m pytest -q -n 3 $(PYTEST_ARGS)

# Benchmarks print numbers; they assert nothing (BENCH_SIZES, BENCH_LATENCY_MS).
bench: install
	$(PY) bench/bench.py
	$(PY) bench/lambda_bench.py

clean:
	rm -rf $(VENV) build dist plugin/*.egg-info .pytest_cache .demo .demo-lambda .demo-approval
