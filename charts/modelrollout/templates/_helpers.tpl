{{/* The chart's name, overridable. */}}
{{- define "modelrollout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for namespaced objects and cluster-scoped ones
alike (so two releases in one cluster do not collide). Truncated to 63
characters, the DNS label limit.
*/}}
{{- define "modelrollout.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value: name-version. */}}
{{- define "modelrollout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "modelrollout.labels" -}}
helm.sh/chart: {{ include "modelrollout.chart" . }}
{{ include "modelrollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelrollout
{{- end }}

{{/* Selector labels: fixed for the release's lifetime (Deployment selectors are immutable). */}}
{{- define "modelrollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelrollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "modelrollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelrollout.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: a digest wins over a tag; the tag defaults to appVersion. */}}
{{- define "modelrollout.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The operator's ServiceAccount as an RBAC subject. */}}
{{- define "modelrollout.subjects" -}}
- kind: ServiceAccount
  name: {{ include "modelrollout.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
Rules for namespaced objects: a ClusterRole's when watching every namespace, a
Role's in each watched namespace otherwise. Same as manifests/base/clusterrole.yaml.
*/}}
{{- define "modelrollout.namespacedRules" -}}
# Its own kinds: kopf lists and watches them and patches finalizers and progress
# annotations; the controllers read them fresh and consume action annotations.
- apiGroups: [modelrollout.dev]
  resources: [modeldeployments, driftmonitors, experiments]
  verbs: [get, list, watch, patch]
- apiGroups: [modelrollout.dev]
  resources: [modeldeployments/status, driftmonitors/status, experiments/status]
  verbs: [patch]
# One Deployment per revision (stable and canary).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
# Revision history for history and undo.
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get, list, watch, create, update, delete]
# The root, stable and canary Services.
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch]
# Smoke-test Jobs, and their pods' termination messages.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Events on the custom resources; a smoke Job's FailedCreate Events say why it has no pod.
- apiGroups: [""]
  resources: [events]
  verbs: [list, create]
# Golden inputs and drift references, read by name.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# Traffic routers: backend weights of the routes users own.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, patch]
{{- end }}

{{/* Cluster-scoped needs: kopf's peering object (created at start-up when missing), CRD discovery, and,
when restricted to namespaces, following them as they come and go. */}}
{{- define "modelrollout.clusterRules" -}}
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [list, watch, create, patch]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end }}

{{/* Sharding (values shards): a member Lease per replica and one per shard, listed every few seconds, written
with their resourceVersion (update), deleted when a replica leaves or is gone. No get, no watch. */}}
{{- define "modelrollout.shardingRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [list, create, update, delete]
{{- end }}

{{/* Drift webhook URLs, read by name only. */}}
{{- define "modelrollout.secretRules" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}

{{/*
Fail with a clear message when a monitoring.coreos.com object is enabled on a
cluster that does not serve its kind (Helm's own error is "no matches for kind").
Arguments: a list of (root context, value name, kind).
*/}}
{{- define "modelrollout.requireMonitoringKind" -}}
{{- $root := index . 0 }}{{- $value := index . 1 }}{{- $kind := index . 2 }}
{{- if not ($root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" $kind)) }}
{{- fail (printf "%s=true needs the Prometheus Operator's %s CRD (monitoring.coreos.com/v1), which this cluster does not serve. Install the Prometheus Operator first (for example kube-prometheus-stack), or set %s=false and scrape with a plain Prometheus configuration (files/model-servers-scrape.yaml, docs/install.md). With `helm template`, pass --api-versions monitoring.coreos.com/v1/%s." $value $kind $value $kind) }}
{{- end }}
{{- end }}

{{/*
Prometheus connection settings (values prometheus.*) as the operator's
MODELROLLOUT_PROMETHEUS_* variables. Secrets are mounted as files (a rotated
token or certificate is read again) or referenced with secretKeyRef; no secret
value ever sits in the chart's values.
*/}}
{{- define "modelrollout.prometheusDir" -}}/etc/modelrollout/prometheus{{- end }}
{{- define "modelrollout.prometheusEnv" -}}
{{- $p := .Values.prometheus }}
{{- $dir := include "modelrollout.prometheusDir" . }}
{{- if $p.timeoutSeconds }}
- name: MODELROLLOUT_PROMETHEUS_TIMEOUT
  value: {{ $p.timeoutSeconds | quote }}
{{- end }}
{{- if $p.headers }}
- name: MODELROLLOUT_PROMETHEUS_HEADERS
  value: {{ $p.headers | toJson | quote }}
{{- end }}
{{- if $p.bearerToken.secretName }}
- name: MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_FILE
  value: {{ printf "%s/token/%s" $dir $p.bearerToken.secretKey | quote }}
{{- else if $p.bearerToken.file }}
- name: MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_FILE
  value: {{ $p.bearerToken.file | quote }}
{{- end }}
{{- if $p.basicAuth.username }}
{{- if not $p.basicAuth.passwordSecretName }}
{{- fail "prometheus.basicAuth.username needs prometheus.basicAuth.passwordSecretName (a Secret holding the password)" }}
{{- end }}
- name: MODELROLLOUT_PROMETHEUS_USERNAME
  value: {{ $p.basicAuth.username | quote }}
- name: MODELROLLOUT_PROMETHEUS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $p.basicAuth.passwordSecretName }}
      key: {{ $p.basicAuth.passwordSecretKey }}
{{- end }}
{{- if $p.tls.caSecretName }}
- name: MODELROLLOUT_PROMETHEUS_CA_FILE
  value: {{ printf "%s/ca/%s" $dir $p.tls.caKey | quote }}
{{- end }}
{{- if $p.tls.clientCertSecretName }}
- name: MODELROLLOUT_PROMETHEUS_CERT_FILE
  value: {{ printf "%s/client/tls.crt" $dir | quote }}
- name: MODELROLLOUT_PROMETHEUS_KEY_FILE
  value: {{ printf "%s/client/tls.key" $dir | quote }}
{{- end }}
{{- if $p.tls.insecureSkipVerify }}
- name: MODELROLLOUT_PROMETHEUS_INSECURE_SKIP_VERIFY
  value: "true"
{{- end }}
{{- end }}

{{- define "modelrollout.prometheusMounts" -}}
{{- $p := .Values.prometheus }}
{{- $dir := include "modelrollout.prometheusDir" . }}
{{- if $p.bearerToken.secretName }}
- name: prometheus-token
  mountPath: {{ $dir }}/token
  readOnly: true
{{- end }}
{{- if $p.tls.caSecretName }}
- name: prometheus-ca
  mountPath: {{ $dir }}/ca
  readOnly: true
{{- end }}
{{- if $p.tls.clientCertSecretName }}
- name: prometheus-client
  mountPath: {{ $dir }}/client
  readOnly: true
{{- end }}
{{- end }}

{{- define "modelrollout.prometheusVolumes" -}}
{{- $p := .Values.prometheus }}
{{- if $p.bearerToken.secretName }}
- name: prometheus-token
  secret:
    secretName: {{ $p.bearerToken.secretName }}
{{- end }}
{{- if $p.tls.caSecretName }}
- name: prometheus-ca
  secret:
    secretName: {{ $p.tls.caSecretName }}
{{- end }}
{{- if $p.tls.clientCertSecretName }}
- name: prometheus-client
  secret:
    secretName: {{ $p.tls.clientCertSecretName }}
{{- end }}
{{- end }}
