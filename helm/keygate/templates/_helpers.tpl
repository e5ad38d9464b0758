{{- define "keygate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keygate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (default .Chart.Name .Values.nameOverride) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (default .Chart.Name .Values.nameOverride) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "keygate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keygate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "keygate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "keygate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keygate.secretName" -}}
{{- default (include "keygate.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "keygate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keygate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The embedded store is one process's files on one volume: it cannot be shared by replicas.
Refuse to render what would run several (or none with a volume) rather than lose writes.
*/}}
{{- define "keygate.checkStore" -}}
{{- if eq .Values.config.store.driver "embedded" }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount > 1 needs config.store.driver: redis: the embedded store is one process's files on one volume and cannot be shared by replicas" }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail "autoscaling.enabled needs config.store.driver: redis: the embedded store cannot be shared by replicas" }}
{{- end }}
{{- if not .Values.persistence.enabled }}
{{- fail "the embedded store needs persistence.enabled: true (a PersistentVolumeClaim): without it every key is lost when the pod goes" }}
{{- end }}
{{- end }}
{{- end }}
