# Trailboss — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TRAILBOSS_CACHE ?= $(HOME)/.cache/trailboss
export TRAILBOSS_STACK_DIR ?= $(TRAILBOSS_CACHE)/stack

##@ Getting started

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: dev
dev: $(STAMP) ## Create .venv and install trailboss with its dev tools

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: demo
demo: $(STAMP) stack-build ## The main job: train, serve, canary, drift, retrain, canary on the local stack
	$(PY) -m demo

##@ Testing

RESULTS := build/test-results
E2E_WORKERS ?= 4

.PHONY: test
test: $(STAMP) stack-build promtool ## Every tier (unit, integration, e2e), then the time per tier and the 15 slowest tests
	@rm -rf $(RESULTS); failed=0; \
	for tier in unit integration e2e; do $(MAKE) --no-print-directory $$tier || failed=1; done; \
	$(PY) -m tests.report $(RESULTS); exit $$failed

.PHONY: unit
# The suite records the client calls the operator makes on the fakes as it runs; the RBAC
# test then derives the chart's grants from that recording instead of running them again.
unit: $(STAMP) ## Pure tests, no server: API, builders, policies, reconcilers on fakes, simulation
	@rm -rf $(RESULTS)/kube-calls
	TRAILBOSS_KUBE_CALLS=$(RESULTS)/kube-calls $(PY) -m pytest tests/unit tests/sim -n auto \
	  -p tests.unit.kube_calls --ignore tests/unit/test_rbac_derived.py --junitxml=$(RESULTS)/unit.xml
	TRAILBOSS_KUBE_CALLS_FROM=$(RESULTS)/kube-calls $(PY) -m pytest tests/unit/test_rbac_derived.py \
	  --junitxml=$(RESULTS)/unit-rbac.xml

.PHONY: integration
integration: $(STAMP) ## Tests that start local servers (the model server, MLflow's scoring app); no cluster
	$(PY) -m pytest tests/integration --junitxml=$(RESULTS)/integration.xml

SEQUENCES ?= 20000
STEPS ?= 50
JOBS ?= 2

.PHONY: simulate
simulate: $(STAMP) ## Simulate rollouts and retraining at length: SEQUENCES=20000 STEPS=50 JOBS=2 (new random sequences, split across JOBS processes)
	$(PY) -m pytest tests/sim/test_regressions.py -q -p no:cacheprovider
	TRAILBOSS_SIM_DATABASE=.hypothesis/simulation $(PY) -m tests.sim.parallel \
	  --jobs $(JOBS) --sequences $(SEQUENCES) --steps $(STEPS)

# The tests that leave shared state alone run side by side on one stack and one operator
# (E2E_WORKERS processes); those marked `disruptive` stop what the others share and run
# after them, alone. A stack already up is used as it is and stays up. Otherwise the run
# brings up a clean one of its own in E2E_STACK_DIR (so that nothing an earlier demo or an
# interrupted run left there serves, checks drift or retrains beside the tests) and takes it
# down at the end.
E2E_STACK_DIR ?= $(TRAILBOSS_CACHE)/test-stack

.PHONY: e2e
e2e: $(STAMP) stack-build promtool ## End-to-end on the local stack (or TRAILBOSS_E2E_KUBECONFIG): side by side, then the disruptive ones
	@was_up=0; $(PY) e2e/stack/stack.py status >/dev/null 2>&1 && was_up=1; failed=0; \
	if [ $$was_up = 0 ] && [ -z "$$TRAILBOSS_E2E_KUBECONFIG" ]; then \
	  export TRAILBOSS_STACK_DIR=$(E2E_STACK_DIR); $(PY) e2e/stack/stack.py down --purge >/dev/null; \
	  echo "a clean stack for the run in $(E2E_STACK_DIR)"; fi; \
	TRAILBOSS_E2E_KEEP_STACK=1 $(PY) -m pytest e2e -m "not disruptive" -n $(E2E_WORKERS) \
	  --dist loadgroup --no-loadscope-reorder --junitxml=$(RESULTS)/e2e.xml || failed=1; \
	TRAILBOSS_E2E_KEEP_STACK=1 $(PY) -m pytest e2e -m disruptive \
	  --junitxml=$(RESULTS)/e2e-disruptive.xml || failed=1; \
	if [ $$was_up = 0 ] && [ -z "$$TRAILBOSS_E2E_KUBECONFIG" ]; then $(PY) e2e/stack/stack.py down >/dev/null; fi; \
	exit $$failed

.PHONY: bench
bench: $(STAMP) stack-build ## TrainingRun burst against raw Jobs and the floor (measured in the same run), then rollout timing
	$(PY) -m bench.burst
	$(PY) -m bench.rollout

.PHONY: bench-scale
bench-scale: $(STAMP) stack-build ## Operator RSS, idle CPU and startup backlog with 1,000 and 5,000 finished TrainingRuns
	$(PY) -m bench.scale

# The operator's runtime dependencies only (mlflow-skinny, no dev tools), as in its
# image, for the benchmarks' memory figures:
# BENCH_OPERATOR_PYTHON=$(OPERATOR_VENV)/bin/python make bench-scale
OPERATOR_VENV := .venv-operator

.PHONY: operator-venv
operator-venv: $(OPERATOR_VENV)/.installed ## A venv with only the operator's runtime dependencies, as in the image

$(OPERATOR_VENV)/.installed: pyproject.toml requirements/operator.txt
	@test -x $(OPERATOR_VENV)/bin/python || $(PYTHON) -m venv $(OPERATOR_VENV)
	$(OPERATOR_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/operator.txt
	$(OPERATOR_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $@

##@ Releasing

# The images install exactly these pins (with their hashes), for Linux and Python 3.11
# as in the Dockerfile's base image; `make lock` after a change of the dependencies in
# pyproject.toml, and a unit test fails until then.
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes \
  --python-version 3.11 --python-platform linux --no-header --annotation-style line

.PHONY: lock
lock: $(STAMP) ## Pin the images' dependencies: requirements/operator.txt, serve.txt and drift.txt
	$(LOCK) -o requirements/operator.txt
	$(LOCK) --extra serve -o requirements/serve.txt
	$(LOCK) --extra drift -o requirements/drift.txt

.PHONY: chart-publish
chart-publish: stack-build ## Lint, package and push the chart, versioned like the operator: OCI=oci://<registry>/<path> [PUSH_FLAGS=--plain-http]
	@test -n "$(OCI)" || { echo "set OCI=oci://<registry>/<path>"; exit 2; }
	HELM=$(HELM) VERSION=$(VERSION) deploy/publish-chart.sh $(OCI) $(PUSH_FLAGS)

# Each image's pins installed into a clean venv, as its Dockerfile stage does, and
# each entry point of that image started: what can be checked of the images without
# a container engine.
.PHONY: image-venvs
image-venvs: ## Install each image's lock into a clean venv and start its entry points
	bash deploy/image-venvs.sh

# Evidently only for the comparison, in its own venv: never a Trailboss dependency.
BENCH_VENV := .venv-bench

.PHONY: bench-drift
bench-drift: $(STAMP) $(BENCH_VENV)/.installed ## Drift: Trailboss vs Evidently's preset vs a numpy floor, exactness, Job memory
	$(PY) -m bench.drift

$(BENCH_VENV)/.installed:
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet 'evidently==0.7.23' 'pandas<3'
	@touch $@

.PHONY: bench-serve
bench-serve: $(STAMP) ## Model server: trailboss serve vs MLflow's scoring app and `mlflow models serve`
	$(PY) -m bench.serve

.PHONY: lint
lint: $(STAMP) ## ruff, mypy (strict) and the import layering contract
	$(VENV)/bin/ruff check operator tests e2e bench demo
	$(VENV)/bin/ruff format --check operator tests bench demo
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

##@ Generated files

.PHONY: crds
crds: $(STAMP) ## Regenerate crds/, the chart's copy and docs/api.md from the pydantic models
	$(VENV)/bin/trailboss crds -o crds --docs docs/api.md
	$(VENV)/bin/trailboss crds -o charts/trailboss/files/crds

.PHONY: verify
verify: $(STAMP) ## Fail when generated files are stale
	$(VENV)/bin/trailboss crds --check -o crds --docs docs/api.md
	$(VENV)/bin/trailboss crds --check -o charts/trailboss/files/crds

.PHONY: docs
docs: $(STAMP) ## Build the documentation site (docs/, mkdocs.yml) into build/docs; fails on any warning
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

##@ Release

VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' operator/trailboss/__init__.py)
HELM ?= $(TRAILBOSS_CACHE)/bin/helm

.PHONY: chart-package
chart-package: stack-build ## Package the chart, versioned like the operator, into dist/ (push: helm push dist/*.tgz oci://...)
	$(HELM) lint --strict charts/trailboss
	$(HELM) package charts/trailboss --version $(VERSION) --app-version $(VERSION) -d dist

.PHONY: promtool
promtool: ## promtool (for the alert tests) from Debian's prometheus package, into the cache
	bash e2e/stack/promtool.sh

##@ Local stack (real control plane, MLflow and S3 on loopback)

.PHONY: stack-build
stack-build: ## Build etcd, kube-*, kubectl, kwok, helm, Traefik (and MinIO) from Go modules, cached
	bash e2e/stack/system-deps.sh
	bash e2e/stack/build.sh

.PHONY: stack-up
stack-up: $(STAMP) stack-build ## Start the local stack; prints the kubeconfig path
	$(PY) e2e/stack/stack.py up

.PHONY: stack-down
stack-down: ## Stop everything the local stack started
	@if [ -x $(PY) ]; then $(PY) e2e/stack/stack.py down; fi

.PHONY: stack-clean
stack-clean: stack-down ## Stop the stack and delete the binary cache
	rm -rf $(TRAILBOSS_CACHE)

##@ Operator

.PHONY: run
run: $(STAMP) ## Run the operator against the current kubeconfig
	$(VENV)/bin/trailboss run --all-namespaces --verbose

.PHONY: clean
clean: ## Remove the venv and caches in the tree
	rm -rf $(VENV) $(OPERATOR_VENV) .pytest_cache .mypy_cache .ruff_cache
