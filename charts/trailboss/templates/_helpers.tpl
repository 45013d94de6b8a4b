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
app.kubernetes.io/version: {{ include "trailboss.version" . | quote }}
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
The version label: the operator image's tag, or the chart's appVersion when
the image is pinned by digest alone. A label value is at most 63 characters of
[A-Za-z0-9._-], alphanumeric at both ends, so a tag such as "1.2+build" or
"1.2@sha256:..." is cut at "@" and every other character becomes "_".
*/}}
{{- define "trailboss.version" -}}
{{- $tag := regexReplaceAll "@.*$" (.Values.image.tag | default "" | toString) "" }}
{{- if or (not $tag) (hasPrefix "sha256:" $tag) }}
{{- $tag = .Chart.AppVersion | toString }}
{{- end }}
{{- regexReplaceAll "[^A-Za-z0-9._-]" $tag "_" | trunc 63 | trimAll "-_." }}
{{- end }}

{{/*
An image reference "[registry/]repository(:tag|@digest)" from a dict with
"image" (registry, repository, tag, digest), "global" (.Values.global) and
"appVersion". The digest wins over the tag, as in cert-manager's chart; a tag
that is itself a digest ("sha256:...", or "1.2@sha256:...") pins it too.
The registry is global.imageRegistry, else a registry named in the repository
("quay.io/x/y": a first part with "." or ":", or "localhost", as Docker reads
it), else image.registry.
*/}}
{{- define "trailboss.imageRef" -}}
{{- $image := .image }}
{{- $repository := $image.repository }}
{{- $registry := $image.registry | default "" }}
{{- $first := regexFind "^[^/]+/" $repository | trimSuffix "/" }}
{{- if and $first (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
{{- $registry = $first }}
{{- $repository = trimPrefix (printf "%s/" $first) $repository }}
{{- end }}
{{- with (.global | default dict).imageRegistry }}
{{- $registry = . }}
{{- end }}
{{- $name := $repository }}
{{- with $registry }}
{{- $name = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- $tag := $image.tag | default .appVersion | toString }}
{{- $digest := $image.digest | default "" }}
{{- if and (not $digest) (hasPrefix "sha256:" $tag) }}
{{- $digest = $tag }}
{{- else if and (not $digest) (contains "@" $tag) }}
{{- $digest = regexReplaceAll "^[^@]*@" $tag "" }}
{{- end }}
{{- if $digest }}
{{- printf "%s@%s" $name $digest }}
{{- else }}
{{- printf "%s:%s" $name $tag }}
{{- end }}
{{- end }}

{{/*
The operator image, tag defaulting to the chart's appVersion.
*/}}
{{- define "trailboss.image" -}}
{{- include "trailboss.imageRef" (dict "image" .Values.image "global" .Values.global "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/*
The model server image (`trailboss serve`) of the pods the operator creates.
*/}}
{{- define "trailboss.serverImage" -}}
{{- include "trailboss.imageRef" (dict "image" .Values.serverImage "global" .Values.global "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/*
The image of the reference profile and drift check Jobs the operator creates.
*/}}
{{- define "trailboss.driftImage" -}}
{{- include "trailboss.imageRef" (dict "image" .Values.driftImage "global" .Values.global "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/*
Names of the pull secrets of every pod, comma-separated: for the pods the
operator creates (TRAILBOSS_IMAGE_PULL_SECRETS).
*/}}
{{- define "trailboss.imagePullSecretNames" -}}
{{- $names := list }}
{{- range concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) }}
{{- $names = append $names .name }}
{{- end }}
{{- uniq $names | join "," }}
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
{{- range include "trailboss.imagePullSecretNames" . | splitList "," | compact }}
- name: {{ . }}
{{- end }}
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

{{/*
True (non-empty) when podDisruptionBudget is enabled and lets a drain evict at
least one of the replicaCount operator pods. A budget that allows none
(minAvailable 1 of one replica, minAvailable 100%, maxUnavailable 0) would
block every node drain, so the chart renders none and NOTES.txt says why.
Percentages round as Kubernetes rounds them: up.
*/}}
{{- define "trailboss.pdbAllowsEvictions" -}}
{{- $pdb := .Values.podDisruptionBudget }}
{{- $replicas := int .Values.replicaCount }}
{{- if and $pdb.enabled (gt $replicas 0) }}
{{- if hasKey $pdb "maxUnavailable" }}
{{- $down := toString $pdb.maxUnavailable }}
{{- if gt (trimSuffix "%" $down | atoi) 0 }}true{{ end }}
{{- else }}
{{- $up := toString ($pdb.minAvailable | default 1) }}
{{- $needed := atoi $up }}
{{- if hasSuffix "%" $up }}
{{- $needed = div (add (mul (trimSuffix "%" $up | atoi) $replicas) 99) 100 }}
{{- end }}
{{- if lt (int $needed) $replicas }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}
