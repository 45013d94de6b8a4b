{{/*
The chart name, or nameOverride.
*/}}
{{- define "trailboss.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name: "<release>-<chart>", or just the release name
when it already contains the chart name. 63 characters because some fields
(label values, DNS names) are limited to that.
*/}}
{{- define "trailboss.fullname" -}}
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

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "trailboss.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "trailboss.labels" -}}
helm.sh/chart: {{ include "trailboss.chart" . }}
{{ include "trailboss.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trailboss
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels that select the operator pods; never change them in an upgrade, a
Deployment's selector is immutable.
*/}}
{{- define "trailboss.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trailboss.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "trailboss.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trailboss.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image, tag defaulting to the chart's appVersion. A tag that is a
digest ("sha256:...") is joined with "@".
*/}}
{{- define "trailboss.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
True (non-empty) when the replicas must elect an active operator.
*/}}
{{- define "trailboss.peering" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{/*
Arguments of `trailboss run`.
*/}}
{{- define "trailboss.args" -}}
- run
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
- --metrics-port
- {{ .Values.metrics.port | quote }}
- --liveness-port
- {{ .Values.liveness.port | quote }}
{{- if include "trailboss.peering" . }}
- --peering
- {{ .Values.peering.name | quote }}
{{- end }}
- --log-format
- {{ .Values.logFormat | quote }}
{{- if .Values.verbose }}
- --verbose
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Pull secrets of every pod: global.imagePullSecrets, then imagePullSecrets,
each name once.
*/}}
{{- define "trailboss.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) }}
{{- $names = append $names .name }}
{{- end }}
{{- range uniq $names }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/*
RBAC rules the operator needs in every namespace it manages. Server-side
apply of a child that does not exist yet needs "create" as well as "patch".
*/}}
{{- define "trailboss.namespacedRules" -}}
# The three kinds: kopf watches them and patches finalizers and annotations.
- apiGroups: ["trailboss.dev"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch", "update"]
# ModelVersions are created when a TrainingRun succeeds, TrainingRuns when a
# Deployment retrains.
- apiGroups: ["trailboss.dev"]
  resources: ["trainingruns", "modelversions"]
  verbs: ["get", "list", "watch", "patch", "update", "create"]
- apiGroups: ["trailboss.dev"]
  resources: ["trainingruns/status", "modelversions/status", "deployments/status"]
  verbs: ["get", "patch", "update"]
# Training Jobs.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Headless Services of distributed training; Services of served models.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Training and serving pods are read, never written.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# Events: posted on the operator's objects; a Job's are read to tell why its
# pods are refused at admission.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "list"]
# Model servers, one per served version; the old version's goes after a rollout.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Canary weights through the Gateway API, where the cluster has it.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}

{{/*
Seconds in a duration such as "1h" or "1h30m" (units w, d, h, m, s), for
comparisons with timestamps in PromQL, where a duration is no number.
*/}}
{{- define "trailboss.seconds" -}}
{{- $unit := dict "w" 604800 "d" 86400 "h" 3600 "m" 60 "s" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+[wdhms]" . -1 }}
{{- $total = add $total (mul (regexFind "[0-9]+" . | atoi) (get $unit (regexFind "[wdhms]$" .))) }}
{{- end }}
{{- $total }}
{{- end }}
