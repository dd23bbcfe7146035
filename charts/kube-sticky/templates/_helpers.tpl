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
{{- $redis := .Values.sharedTable.redis }}
{{- $bundled := .Values.sharedTable.bundledRedis.enabled }}
{{- if and $redis.address $redis.sentinels }}
{{- fail "sharedTable.redis.address and sharedTable.redis.sentinels are both set: set address for one Redis, or sentinels (with masterName) to find the primary through Sentinel, not both." }}
{{- end }}
{{- if and $redis.sentinels (not $redis.masterName) }}
{{- fail "sharedTable.redis.sentinels is set without sharedTable.redis.masterName: set it to the name the Sentinels monitor the primary as (such as mymaster)." }}
{{- end }}
{{- if and $redis.masterName (not $redis.sentinels) }}
{{- fail "sharedTable.redis.masterName is set without sharedTable.redis.sentinels: it names the primary only to Sentinels; set sentinels, or clear masterName." }}
{{- end }}
{{- if and $bundled (or $redis.address $redis.sentinels) }}
{{- fail "sharedTable.bundledRedis.enabled points the proxies at the chart's own Redis, so sharedTable.redis.address and sentinels must be empty: use one or the other." }}
{{- end }}
{{- if and $bundled (or $redis.existingSecret $redis.username) }}
{{- fail "sharedTable.bundledRedis.enabled uses the chart's generated password for the default user, so sharedTable.redis.existingSecret and username must be empty." }}
{{- end }}
{{- if and (or $redis.existingSecret $redis.username) (not (include "kube-sticky.sharedTable" .)) }}
{{- fail "sharedTable.redis.existingSecret or username is set but no Redis is: set sharedTable.redis.address or sentinels, or sharedTable.bundledRedis.enabled." }}
{{- end }}
{{- $tls := $redis.tls }}
{{- if and (not $tls.enabled) (or $tls.existingSecret $tls.certKey $tls.keyKey $tls.serverName $tls.insecureSkipVerify) }}
{{- fail "sharedTable.redis.tls.existingSecret, certKey, keyKey, serverName or insecureSkipVerify is set but sharedTable.redis.tls.enabled is false: set enabled to true for TLS to Redis, or clear them." }}
{{- end }}
{{- if and $tls.enabled $bundled }}
{{- fail "sharedTable.redis.tls.enabled is set with sharedTable.bundledRedis.enabled, but the bundled Redis serves plain TCP only: point sharedTable.redis at a Redis with TLS, or turn tls off." }}
{{- end }}
{{- if and $tls.enabled (not (include "kube-sticky.sharedTable" .)) }}
{{- fail "sharedTable.redis.tls.enabled is set but no Redis is: set sharedTable.redis.address or sentinels." }}
{{- end }}
{{- if and $tls.certKey (not $tls.keyKey) }}
{{- fail "sharedTable.redis.tls.certKey is set without keyKey: a client certificate needs its private key; set keyKey to the key of the private key in existingSecret (tls.key in a kubernetes.io/tls Secret)." }}
{{- end }}
{{- if and $tls.keyKey (not $tls.certKey) }}
{{- fail "sharedTable.redis.tls.keyKey is set without certKey: set certKey to the key of the client certificate in existingSecret (tls.crt in a kubernetes.io/tls Secret), or clear keyKey." }}
{{- end }}
{{- if and $tls.certKey (not $tls.existingSecret) }}
{{- fail "sharedTable.redis.tls.certKey and keyKey name keys of sharedTable.redis.tls.existingSecret, which is empty: set it to the Secret with the client certificate." }}
{{- end }}
{{- if and $tls.existingSecret (not $tls.caKey) (not $tls.certKey) }}
{{- fail "sharedTable.redis.tls.existingSecret is set but caKey and certKey are empty, so nothing of it would be used: set caKey (the CA bundle) and/or certKey and keyKey (a client certificate)." }}
{{- end }}
{{- if and $tls.insecureSkipVerify $tls.existingSecret $tls.caKey }}
{{- fail "sharedTable.redis.tls.insecureSkipVerify accepts any server certificate, so the CA in sharedTable.redis.tls.caKey would be ignored: verify against the CA (insecureSkipVerify false), or set caKey to \"\"." }}
{{- end }}
{{- if and .Values.service.externalTrafficPolicy (eq .Values.service.type "ClusterIP") }}
{{- fail "service.externalTrafficPolicy is set but service.type is ClusterIP: it applies to NodePort and LoadBalancer Services only; set service.type, or clear externalTrafficPolicy." }}
{{- end }}
{{- if and .Values.service.loadBalancerSourceRanges (ne .Values.service.type "LoadBalancer") }}
{{- fail (printf "service.loadBalancerSourceRanges is set but service.type is %s: it applies to LoadBalancer Services only; set service.type to LoadBalancer, or clear loadBalancerSourceRanges." .Values.service.type) }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.maxUnavailable)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%v) and maxUnavailable (%v) are both set, but a PodDisruptionBudget takes one of them: set the other to null." $pdb.minAvailable $pdb.maxUnavailable) }}
{{- end }}
{{- if and (eq (.Values.strategy.type | default "") "Recreate") .Values.strategy.rollingUpdate }}
{{- fail "strategy.rollingUpdate is set but strategy.type is Recreate: remove rollingUpdate, or set type to RollingUpdate." }}
{{- end }}
{{- $volumes := list }}
{{- range .Values.extraVolumes }}
{{- if has .name (list "admin-socket" "redis-password" "redis-tls") }}
{{- fail (printf "extraVolumes has a volume named %q, a name the chart uses for its own volumes: rename it." .name) }}
{{- end }}
{{- if has .name $volumes }}
{{- fail (printf "extraVolumes has two volumes named %q: names must be unique." .name) }}
{{- end }}
{{- $volumes = append $volumes .name }}
{{- end }}
{{- range $container := list "proxy" "operator" }}
{{- range (index $.Values $container).extraVolumeMounts }}
{{- if not (has .name $volumes) }}
{{- fail (printf "%s.extraVolumeMounts mounts the volume %q, which extraVolumes does not define: add it there." $container .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $container := list "proxy" "operator" }}
{{- range (index $.Values $container).extraEnv }}
{{- if and (hasKey . "value") (hasKey . "valueFrom") }}
{{- fail (printf "%s.extraEnv sets %s with both value and valueFrom: keep one." $container .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- range .Values.operator.extraEnv }}
{{- if has .name (list "POD_NAME" "POD_NAMESPACE") }}
{{- fail (printf "operator.extraEnv sets %s, which the chart sets from the pod (--identity, --lease-namespace): remove it." .name) }}
{{- end }}
{{- end }}
{{- $metrics := .Values.metrics }}
{{- if and $metrics.serviceMonitor.enabled $metrics.podMonitor.enabled }}
{{- fail "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: Prometheus would scrape every pod twice; enable one of them." }}
{{- end }}
{{- if and (or $metrics.serviceMonitor.enabled $metrics.podMonitor.enabled) (not (or .Values.proxy.metrics.enabled .Values.operator.metrics.enabled)) }}
{{- fail "metrics.serviceMonitor or metrics.podMonitor is enabled but neither proxy.metrics.enabled nor operator.metrics.enabled is: there is nothing to scrape." }}
{{- end }}
{{- if and $metrics.prometheusRule.enabled (not (and .Values.proxy.metrics.enabled .Values.operator.metrics.enabled)) }}
{{- fail "metrics.prometheusRule.enabled needs proxy.metrics.enabled and operator.metrics.enabled: its alerts are on both containers' metrics." }}
{{- end }}
{{- $delayMs := include "kube-sticky.durationMillis" .Values.proxy.shutdownDelay | float64 }}
{{- $neededMs := addf $delayMs 30000.0 }}
{{- if le (mulf (float64 .Values.terminationGracePeriodSeconds) 1000.0) $neededMs }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed proxy.shutdownDelay (%s) plus the proxy's 30s drain timeout, or the kubelet kills the pod mid-drain: set it to at least %d." (int .Values.terminationGracePeriodSeconds) .Values.proxy.shutdownDelay (add1 (int (ceil (divf $neededMs 1000.0))))) }}
{{- end }}
{{- end }}

{{/*
A Go-style duration ("5s", "1m30s", "250ms", "0"; the schema checks the form) as milliseconds.
*/}}
{{- define "kube-sticky.durationMillis" -}}
{{- $total := 0.0 }}
{{- $scale := dict "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" . -1 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $total = addf $total (mulf (float64 (trimSuffix $unit .)) (get $scale $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/* "true" when the proxies share a stick table in Redis, empty otherwise. */}}
{{- define "kube-sticky.sharedTable" -}}
{{- $redis := .Values.sharedTable.redis }}
{{- if or $redis.address $redis.sentinels .Values.sharedTable.bundledRedis.enabled }}true{{ end }}
{{- end }}

{{/* Name of the bundled Redis's Deployment, Service, Secret and NetworkPolicy. */}}
{{- define "kube-sticky.redisName" -}}
{{- printf "%s-redis" (include "kube-sticky.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
Labels that select the bundled Redis pod. Its app.kubernetes.io/name differs from the proxy
pods', so that the proxy Deployment, Service and PodDisruptionBudget never select it.
*/}}
{{- define "kube-sticky.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-redis" (include "kube-sticky.name" . | trunc 57 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{/* Labels on every resource of the bundled Redis. */}}
{{- define "kube-sticky.redisLabels" -}}
helm.sh/chart: {{ include "kube-sticky.chart" . }}
{{ include "kube-sticky.redisSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.sharedTable.bundledRedis.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-sticky
{{- end }}

{{/*
The bundled Redis's password: the one in the release's Secret when it exists (so upgrades keep
it), a new random one otherwise (install, and `helm template`, which sees no cluster). Chosen
once per render and remembered in the root context, which every template of the chart shares,
so that the Secret and the pods' checksum annotations agree. Call it with the root context.
*/}}
{{- define "kube-sticky.redisPassword" -}}
{{- if not (hasKey . "kubeStickyRedisPassword") }}
{{- $password := randAlphaNum 32 }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "kube-sticky.redisName" .) }}
{{- if and $secret $secret.data (hasKey $secret.data "password") }}
{{- $password = index $secret.data "password" | b64dec }}
{{- end }}
{{- $_ := set . "kubeStickyRedisPassword" $password }}
{{- end }}
{{- index . "kubeStickyRedisPassword" }}
{{- end }}

{{/* Directory where the proxy container finds the Redis TLS files (a Secret volume). */}}
{{- define "kube-sticky.redisTlsDir" -}}
/etc/kube-sticky/redis-tls
{{- end }}

{{/* Directory where the proxy container finds the Redis password (a Secret volume). */}}
{{- define "kube-sticky.redisPasswordDir" -}}
/etc/kube-sticky/redis
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

{{/*
The pods' topologySpreadConstraints as YAML: those of the values, each without a labelSelector
given the pods' selector labels (a constraint selecting no pods would spread nothing).
*/}}
{{- define "kube-sticky.topologySpreadConstraints" -}}
{{- $constraints := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}
{{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "kube-sticky.selectorLabels" $ | fromYaml)) }}
{{- end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
{{- if $constraints }}
{{- toYaml $constraints }}
{{- end }}
{{- end }}

{{/*
Selects the proxy pods for the NetworkPolicy: the Deployment's selector labels, but not the
`helm test` Pod, which carries them too.
*/}}
{{- define "kube-sticky.proxyPodSelector" -}}
matchLabels:
  {{- include "kube-sticky.selectorLabels" . | nindent 2 }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: NotIn
    values: [test]
{{- end }}

{{/* The `helm test` Pod as a NetworkPolicyPeer (same namespace). */}}
{{- define "kube-sticky.testPodPeer" -}}
podSelector:
  matchLabels:
    {{- include "kube-sticky.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: test
{{- end }}

{{/*
Name of the metrics Service. The chart's ServiceMonitor and PodMonitor both scrape with it as the
job label, and the PrometheusRule and the dashboard select the job by it.
*/}}
{{- define "kube-sticky.metricsName" -}}
{{- printf "%s-metrics" (include "kube-sticky.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* Labels of the metrics Service, which the ServiceMonitor selects it by. */}}
{{- define "kube-sticky.metricsSelectorLabels" -}}
{{ include "kube-sticky.selectorLabels" . }}
app.kubernetes.io/component: metrics
{{- end }}

{{/*
The scrape settings a ServiceMonitor endpoint and a PodMonitor podMetricsEndpoint share, for one
metrics port. Call with (dict "root" $ "monitor" <serviceMonitor or podMonitor values> "port" NAME
"honorLabels" BOOL). honorLabels keeps the proxy's own `namespace` and `pod` labels (the
StickyRoute's namespace and the backend pod) instead of renaming them exported_namespace and
exported_pod; the series that lack them get the scraped pod's.
*/}}
{{- define "kube-sticky.scrapeEndpoint" -}}
- port: {{ .port }}
  path: /metrics
  scheme: http
  {{- with .monitor.interval }}
  interval: {{ . }}
  {{- end }}
  {{- with .monitor.scrapeTimeout }}
  scrapeTimeout: {{ . }}
  {{- end }}
  honorLabels: {{ .honorLabels }}
  relabelings:
    # One job for both monitors, which the PrometheusRule and the dashboard select.
    - targetLabel: job
      replacement: {{ include "kube-sticky.metricsName" .root }}
    {{- with .monitor.relabelings }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .monitor.metricRelabelings }}
  metricRelabelings:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* metadata.namespace of a monitoring object: its `namespace` value, or the release's. */}}
{{- define "kube-sticky.monitoringNamespace" -}}
{{- default .root.Release.Namespace .monitor.namespace }}
{{- end }}
