{{/* The resources' name: the release's, or release-mamori. */}}
{{- define "mamori.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mamori.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mamori.labels" -}}
{{ include "mamori.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mamori.rulesConfigMap" -}}
{{- .Values.rules.existingConfigMap | default (printf "%s-rules" (include "mamori.fullname" .)) -}}
{{- end -}}

{{/* mamori.yaml, the agent's configuration. */}}
{{- define "mamori.config" -}}
rules:
{{- if .Values.rules.default }}
  - /etc/mamori/rules/mamori_rules.yaml   # the default rules, in the image
{{- end }}
  - /etc/mamori/rules.d                   # the rules ConfigMap
{{- if .Values.rules.watchConfigMap }}
# Edits of the rules ConfigMap, read through the API as soon as made.
rules_configmap:
  name: {{ include "mamori.rulesConfigMap" . }}
  namespace: {{ .Release.Namespace }}
  directory: /etc/mamori/rules.d
{{- end }}
health_addr: 0.0.0.0:{{ .Values.port }}
log_level: {{ .Values.logLevel }}
outputs:
  stdout: {enabled: {{ .Values.outputs.stdout }}, format: json}
{{- with .Values.elasticsearch }}
{{- if .enabled }}
  elasticsearch:
    url: {{ .url }}
    namespace: {{ .namespace }}
{{- if .username }}
    username: {{ .username }}
{{- end }}
{{- if .existingSecret }}
    password_env: MAMORI_ES_PASSWORD
{{- if .caKey }}
    ca_file: /etc/mamori/es/ca.pem
{{- end }}
{{- end }}
    spool_dir: /var/lib/mamori/spool
    spool_max_mib: {{ .spoolMaxMiB }}
{{- end }}
{{- end }}
{{- with .Values.outputs.alertmanager }}
{{- if .url }}
  alertmanager:
    url: {{ .url }}
    min_priority: {{ .minPriority }}
{{- with .labels }}
    labels: {{ toJson . }}
{{- end }}
{{- with .kibanaUrl }}
    kibana_url: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.outputs.http }}
{{- if .url }}
  http:
    url: {{ .url }}
    min_priority: {{ .minPriority }}
{{- end }}
{{- end }}
{{- with .Values.alertContext }}
append_output:
  - extra_fields: {{ toJson . }}
{{- end }}
{{- with .Values.extraConfig }}
{{ toYaml . }}
{{- end }}
{{- end -}}
