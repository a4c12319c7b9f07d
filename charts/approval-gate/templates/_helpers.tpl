{{/*
The chart name, or nameOverride.
*/}}
{{- define "approval-gate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release
name when it contains the chart name, else "<release>-<chart>". At most 63
characters (a Service name is a DNS label).
*/}}
{{- define "approval-gate.fullname" -}}
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
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "approval-gate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "approval-gate.labels" -}}
helm.sh/chart: {{ include "approval-gate.chart" . }}
{{ include "approval-gate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: approval-gate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the pods.
*/}}
{{- define "approval-gate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "approval-gate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "approval-gate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "approval-gate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding the webhook's serving certificate (tls.crt, tls.key, ca.crt).
*/}}
{{- define "approval-gate.tlsSecretName" -}}
{{- printf "%s-tls" (include "approval-gate.fullname" .) }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "approval-gate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Selector labels of the console's pods: a name of their own, so that neither
the webhook's Service nor its Deployment ever selects them.
*/}}
{{- define "approval-gate.consoleSelectorLabels" -}}
app.kubernetes.io/name: {{ include "approval-gate.name" . }}-console
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
