# tiered-supervision — two commands on a fresh clone: `make demo` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest workers: the machines have 2 cores
PYTEST_WORKERS ?= 2

.PHONY: install system-deps test lint demo bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e '.[dev,bench]'
	@# pyspark and dash-cytoscape ship only as sdists, and uv keeps a fresh 1.4 GB
	@# build of them in its cache on every install: 63 installs filled the disk and
	@# failed CI. They are rebuilt each time anyway, so drop them once installed.
	$(VENV)/bin/uv cache clean -q pyspark dash-cytoscape
	touch $(STAMP)

install: $(STAMP) system-deps

# Debian packages the tests need: Java 17 for local Spark, Chromium for the page tests.
system-deps:
	@bash scripts/system-deps.sh

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -p no:cacheprovider tests

demo: install
	$(VENV)/bin/tiers demo

bench: install
	bash benchmarks/run_all.sh

clean:
	rm -rf $(VENV) var .pytest_cache
