# Two commands on a fresh machine:
#   make demo   set everything up and run the demo (broker, simulator, worker, metrics)
#   make test   set everything up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test unit integration lint typecheck check clean prometheus alertmanager chromium dashboards docs

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Prometheus and Alertmanager from Debian's packages, unpacked into .tools/ (metrics and sink tests).
prometheus:
	@.ci/prometheus.sh >/dev/null

alertmanager:
	@.ci/alertmanager.sh >/dev/null

# Debian's chromium (apt-get install when missing) for the console's browser test (Playwright).
chromium:
	@.ci/chromium.sh >/dev/null

# The Grafana dashboards are code (ioc/dashboards): regenerate config/grafana/dashboards/*.json.
dashboards: $(STAMP)
	$(PY) -m ioc.dashboards

# docs/streams.md is generated from the event schemas and the reference data.
docs: $(STAMP)
	$(PY) -m ioc.events.streams_doc

demo: $(STAMP)
	$(VENV)/bin/ioc demo $(DEMO_ARGS)

test: $(STAMP) prometheus alertmanager chromium
	IOC_PROMETHEUS_BIN=$$(.ci/prometheus.sh) IOC_ALERTMANAGER_BIN=$$(.ci/alertmanager.sh) \
	IOC_CHROMIUM_BIN=$$(.ci/chromium.sh) $(PY) -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check ioc streams sensors_sim tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy ioc streams sensors_sim

check: lint typecheck test

clean:
	rm -rf $(VENV) .tools .ioc .pytest_cache .mypy_cache .ruff_cache

# The runtime benchmark (bench/runtime.py): make bench BENCH_ARGS="--quick". Quix Streams (the
# `bench` extra) goes into its own venv, .ioc/bench/quix-venv: see bench/quix_env.py.
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMP)
	$(PY) bench/quix_env.py
	$(PY) bench/runtime.py $(BENCH_ARGS)
