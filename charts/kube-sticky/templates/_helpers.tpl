{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "kube-sticky.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name: fullnameOverride, or "<release>-<chart name>" (just the release
name when it already contains the chart name).
*/}}
{{- define "kube-sticky.fullname" -}}
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

{{/* "chart-version" for the helm.sh/chart label. */}}
{{- define "kube-sticky.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them after the first release. */}}
{{- define "kube-sticky.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-sticky.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "kube-sticky.labels" -}}
helm.sh/chart: {{ include "kube-sticky.chart" . }}
{{ include "kube-sticky.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-sticky
{{- end }}

{{/* Name of the ServiceAccount the pods run as. */}}
{{- define "kube-sticky.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-sticky.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image both containers run: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "kube-sticky.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the leader-election Lease. */}}
{{- define "kube-sticky.leaseName" -}}
{{- default (printf "%s-operator" (include "kube-sticky.fullname" .)) .Values.operator.leaseName }}
{{- end }}

{{/* The operator's --namespaces argument: "all", or the listed namespaces joined by commas. */}}
{{- define "kube-sticky.watchNamespaces" -}}
{{- if .Values.operator.namespaces }}
{{- .Values.operator.namespaces | uniq | join "," }}
{{- else }}
{{- "all" }}
{{- end }}
{{- end }}

{{/* Directory of the admin Unix socket, an emptyDir both containers mount. */}}
{{- define "kube-sticky.socketDir" -}}
/var/run/kube-sticky
{{- end }}

{{/*
The permissions the operator needs in each namespace it watches: read StickyRoutes and pods,
write StickyRoute status, record Events.
*/}}
{{- define "kube-sticky.watchRules" -}}
- apiGroups: ["kubesticky.io"]
  resources: ["stickyroutes"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["kubesticky.io"]
  resources: ["stickyroutes/status"]
  verbs: ["update", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Checks across values that the schema cannot express; fails the render with one sentence. */}}
{{- define "kube-sticky.validate" -}}
{{- if and .Values.proxy.metrics.enabled (eq (int .Values.proxy.port) (int .Values.proxy.metrics.port)) }}
{{- fail (printf "proxy.metrics.port (%d) must differ from proxy.port: both are listeners of the proxy container." (int .Values.proxy.port)) }}
{{- end }}
{{- if and (eq .Values.service.type "ClusterIP") (gt (int .Values.service.nodePort) 0) }}
{{- fail "service.nodePort is set but service.type is ClusterIP: set service.type to NodePort or LoadBalancer, or nodePort to 0." }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create is false, so serviceAccount.name must name an existing ServiceAccount." }}
{{- end }}
{{- end }}

{{/*
Labels the chart adds to the CRD, whose source (crds/) already carries the name and component
labels.
*/}}
{{- define "kube-sticky.crdLabels" -}}
helm.sh/chart: {{ include "kube-sticky.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
