{{/* Chart name. */}}
{{- define "remediator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "remediator.fullname" -}}
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

{{- define "remediator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "remediator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "remediator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "remediator.labels" -}}
helm.sh/chart: {{ include "remediator.chart" . }}
{{ include "remediator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "remediator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "remediator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the Secret the chart creates (webhook token and every secret given as a value). */}}
{{- define "remediator.secretName" -}}
{{- include "remediator.fullname" . }}
{{- end }}

{{/* Cluster-scoped names carry the release namespace: two releases of the same name must not clash. */}}
{{- define "remediator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "remediator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "remediator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Checks that refuse unsafe values with a clear message. Included by the Deployment (always rendered).
*/}}
{{- define "remediator.validate" -}}
{{- range .Values.watchNamespaces }}
{{- if eq (toString .) "kube-system" }}
{{- fail "watchNamespaces must not contain kube-system: remediator never acts there" }}
{{- end }}
{{- end }}
{{- if gt (int .Values.replicas) 1 }}
{{- if not (or .Values.postgresql.url .Values.postgresql.existingSecret) }}
{{- fail (printf "replicas=%d needs PostgreSQL: set postgresql.url or postgresql.existingSecret (SQLite only works for one replica: one file, one writer)" (int .Values.replicas)) }}
{{- end }}
{{- if not (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail (printf "replicas=%d needs Redis: set redis.url or redis.existingSecret (in-process coordination only works for one replica)" (int .Values.replicas)) }}
{{- end }}
{{- end }}
{{- $managed := list "listen" "rules_dir" "store_url" "redis_url" "namespaces" "dry_run" "prometheus_url" "public_url" "kubeconfig" "monitor_hosts" "monitor_postgres_password_file" "monitor_redis_password_file" }}
{{- $secret := list "webhook_token" "approver_tokens" "pagerduty_routing_key" "slack_webhook_url" "notify_webhook_url" "notify_webhook_token" "notify_webhook_secret" "monitor_postgres_dsn" "monitor_redis_url" }}
{{- range $key, $_ := .Values.settings }}
{{- if has (lower $key) $secret }}
{{- fail (printf "settings.%s is a secret: set it under secrets/monitor (it reaches the pod from a Secret)" $key) }}
{{- end }}
{{- if has (lower $key) $managed }}
{{- fail (printf "settings.%s is managed by the chart: use its own value (see values.yaml)" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Secret-backed settings: list of [ENV suffix, Secret key, value]. With secrets.existingSecret every entry
refers to that Secret (optional except the webhook token); otherwise only the non-empty ones are rendered.
*/}}
{{- define "remediator.secretSettings" -}}
{{- $s := .Values.secrets }}
- [APPROVER_TOKENS, approver-tokens, {{ $s.approverTokens | quote }}]
- [PAGERDUTY_ROUTING_KEY, pagerduty-routing-key, {{ $s.pagerdutyRoutingKey | quote }}]
- [SLACK_WEBHOOK_URL, slack-webhook-url, {{ $s.slackWebhookUrl | quote }}]
- [NOTIFY_WEBHOOK_URL, notify-webhook-url, {{ $s.notifyWebhookUrl | quote }}]
- [NOTIFY_WEBHOOK_TOKEN, notify-webhook-token, {{ $s.notifyWebhookToken | quote }}]
- [NOTIFY_WEBHOOK_SECRET, notify-webhook-secret, {{ $s.notifyWebhookSecret | quote }}]
- [PAGERDUTY_ROUTING_KEYS, pagerduty-routing-keys, {{ $s.pagerdutyRoutingKeys | quote }}]
- [SLACK_BOT_TOKEN, slack-bot-token, {{ $s.slackBotToken | quote }}]
- [SLACK_SIGNING_SECRET, slack-signing-secret, {{ $s.slackSigningSecret | quote }}]
{{- end }}

{{/* true when the chart creates its Secret. */}}
{{- define "remediator.createSecret" -}}
{{- if or (not .Values.secrets.existingSecret) .Values.postgresql.url .Values.redis.url .Values.monitor.postgresDsn .Values.monitor.redisUrl -}}
true
{{- end }}
{{- end }}

{{/* true when the store is PostgreSQL (else SQLite on /var/lib/remediator). */}}
{{- define "remediator.postgres" -}}
{{- if or .Values.postgresql.url .Values.postgresql.existingSecret -}}
true
{{- end }}
{{- end }}

{{/* The SQLite store's PersistentVolumeClaim: the existing one, or the one the chart creates. */}}
{{- define "remediator.claimName" -}}
{{- default (printf "%s-data" (include "remediator.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Labels of the `helm test` pod: not the selector labels, so the Service never routes to it. */}}
{{- define "remediator.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "remediator.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}
