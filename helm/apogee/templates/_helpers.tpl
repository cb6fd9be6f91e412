{{/* Resource name prefix: the release name, with "-apogee" unless it already says apogee. */}}
{{- define "apogee.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "apogee.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: apogee
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector of one role's pods; call with (dict "root" $ "role" "gateway"). */}}
{{- define "apogee.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "apogee.roleLabels" -}}
{{ include "apogee.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "apogee.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "apogee.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "apogee.fullname" .)) -}}
{{- end -}}

{{/* Whether auth and messaging use MongoDB; without it they keep SQLite on a volume. */}}
{{- define "apogee.mongodb" -}}
{{- if or .Values.externalMongodbUrl .Values.existingMongodbSecret -}}true{{- end -}}
{{- end -}}

{{- define "apogee.mongodbSecretName" -}}
{{- .Values.existingMongodbSecret | default (printf "%s-mongodb" (include "apogee.fullname" .)) -}}
{{- end -}}

{{/* Ports per role: gRPC (0 for none) and the HTTP port the probes use. */}}
{{- define "apogee.roles" -}}
gateway: {grpc: 0, http: 3000, portName: http}
auth: {grpc: 50051, http: 9101, portName: health}
messaging: {grpc: 50052, http: 9102, portName: health}
presence: {grpc: 0, http: 9103, portName: health}
files: {grpc: 50053, http: 9104, portName: health}
{{- end -}}
