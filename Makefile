# The commands a person types. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVERS_STAMP := $(VENV)/.servers-installed
PYTEST_ARGS ?=

.PHONY: help install run test test-unit test-e2e lint bench cluster cluster-down clean milvus-suite

help:
	@echo "make run      install into .venv and start Quiver standalone (gRPC 19530, HTTP 9091)"
	@echo "make test     install what the tests need (incl. etcd, SeaweedFS, pulsar-lite) and run them all"
	@echo "make cluster  start a local cluster (etcd, SeaweedFS, pulsar-lite + every role as a process)"
	@echo "make cluster-down  stop it"
	@echo "make bench    compare Quiver with milvus-lite 2.5.1 on the same workload"
	@echo "make lint     ruff and mypy"
	@echo "make milvus-suite MILVUS=/path/to/milvus  run Milvus's own L0 tests against Quiver standalone"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,cluster]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/quiver run standalone $(ARGS)

$(SERVERS_STAMP): $(STAMP) scripts/install-servers.sh
	VENV=$(CURDIR)/$(VENV) bash scripts/install-servers.sh
	touch $(SERVERS_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check common services quiver tests bench operator
	$(VENV)/bin/mypy common services quiver operator/quiver_operator

test: $(STAMP) $(SERVERS_STAMP) lint
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e $(PYTEST_ARGS)

cluster: $(STAMP) $(SERVERS_STAMP)
	$(PY) -m quiver.devcluster up $(ARGS)

cluster-down: $(STAMP)
	$(PY) -m quiver.devcluster down $(ARGS)

bench: $(STAMP) $(SERVERS_STAMP)
	$(PY) -m bench.run $(ARGS) $(BENCH_ARGS)
	$(PY) -m bench.cluster_ab $(AB_ARGS)
	$(PY) -m bench.faiss_ab $(FAISS_AB_ARGS)
	$(PY) -m bench.scaling $(SCALING_ARGS)
	$(PY) -m bench.deletes $(DELETES_ARGS)
	$(PY) -m bench.delete_matching $(MATCHING_ARGS)

milvus-suite: $(STAMP)
	$(PY) tools/milvus_suite.py $(MILVUS) $(ARGS)

clean:
	rm -rf $(VENV) .venv-clients .venv-milvus-suite .milvus-suite .bench .cluster .pytest_cache .mypy_cache .ruff_cache quiver-data
