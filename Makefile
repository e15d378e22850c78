# modelrollout developer entry points. `make demo` and `make test` are the two that matter.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(STAMP) ## create the virtual environment from pyproject.toml

.PHONY: crds
crds: $(STAMP) ## regenerate crds/ from the API models
	$(PY) -m modelrollout crds --output crds --output manifests/base/crds --output charts/modelrollout/crds

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, import layering, dead code (vulture)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture

.PHONY: argocd-cm
argocd-cm: $(STAMP) ## regenerate manifests/argocd/argocd-cm-patch.yaml from its Lua
	$(PY) hack/tools/argocd_cm.py

.PHONY: check-generated
check-generated: crds ## fail when generated files differ from what is committed
	$(PY) hack/tools/argocd_cm.py --check
	$(PY) hack/tools/k8s_schemas.py --check
	@git diff --exit-code -- crds manifests charts || { echo "generated files are stale: run make crds and commit"; exit 1; }

.PHONY: test-unit
test-unit: $(STAMP) ## pure tests only (fast)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: test
test: $(STAMP) lint check-generated tools ## everything CI runs: lint, generated files, unit, integration and e2e tests
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: tools
tools: $(STAMP) deploy-tools ## build or reuse the local control plane, helm, kustomize; install Prometheus
	$(PY) hack/localcluster/cluster.py build
	bash hack/localprom/install.sh

.PHONY: deploy-tools
deploy-tools: ## build or reuse helm and kustomize (cached in ~/.cache/modelrollout/tools)
	bash hack/tools/helm.sh >/dev/null
	bash hack/tools/kustomize.sh >/dev/null

.PHONY: chart-lint
chart-lint: deploy-tools ## lint and render the chart, build the kustomize manifests, check the Prometheus rules
	"$$(bash hack/tools/helm.sh)" lint charts/modelrollout --strict --kube-version v1.31.0
	"$$(bash hack/tools/helm.sh)" template modelrollout charts/modelrollout --kube-version v1.31.0 >/dev/null
	"$$(bash hack/tools/kustomize.sh)" build manifests/default >/dev/null
	promtool check rules charts/modelrollout/files/prometheus-rules.yaml

.PHONY: cluster-up
cluster-up: $(STAMP) ## start the local control plane (etcd, apiserver, controller-manager, scheduler, kwok)
	$(PY) hack/localcluster/cluster.py up

.PHONY: cluster-down
cluster-down: ## stop the local control plane and remove its state
	$(PY) hack/localcluster/cluster.py down

.PHONY: prometheus-up
prometheus-up: $(STAMP) ## start Prometheus and Alertmanager on loopback
	bash hack/localprom/install.sh
	$(PY) hack/localprom/prom.py up

.PHONY: prometheus-down
prometheus-down: ## stop Prometheus and Alertmanager
	$(PY) hack/localprom/prom.py down

.PHONY: run
run: $(STAMP) ## run the operator against the cluster in KUBECONFIG
	$(PY) -m modelrollout run

.PHONY: demo
demo: $(STAMP) tools ## the whole story on a local control plane: rollout, smoke failure, rollback, drift, experiment
	$(PY) -m pip install -q -e '.[demo]'
	PYTHONPATH=operator:.:examples/model-server $(PY) -m e2e.demo

.PHONY: bench
bench: $(STAMP) ## benchmarks; writes docs/benchmarks.md
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py --output docs/benchmarks.md

.PHONY: bench-peers
bench-peers: $(STAMP) tools ## side by side with Argo Rollouts (builds its controller once, cached; not in make test); BENCH_PEERS_ARGS=...
	$(PY) hack/peers/argo-rollouts/build.py build >/dev/null
	PYTHONPATH=operator:.:examples/model-server $(PY) bench/bench_peers.py $(BENCH_PEERS_ARGS)

.PHONY: kind-up
kind-up: ## (needs Docker) a kind cluster for the e2e suite
	bash e2e/kind/kind.sh up

.PHONY: kind-down
kind-down: ## (needs Docker) delete the kind cluster
	bash e2e/kind/kind.sh down

.PHONY: e2e-kind
e2e-kind: $(STAMP) ## (needs Docker) build images, load them into kind and run the e2e suite there
	bash e2e/kind/kind.sh test

.PHONY: clean
clean: cluster-down prometheus-down ## stop local processes and remove local state
	rm -rf .local demo-report
