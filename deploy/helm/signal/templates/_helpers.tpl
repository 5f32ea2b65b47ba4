{{- define "signal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "signal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "signal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "signal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "signal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "signal.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "signal.secretName" -}}
{{- .Values.existingSecret | default (include "signal.fullname" .) -}}
{{- end -}}

{{/* GOMEMLIMIT: goMemLimitPercent of resources.limits.memory, in MiB; empty without a limit. */}}
{{- define "signal.goMemLimit" -}}
{{- $m := toString ((.Values.resources.limits | default dict).memory | default "") -}}
{{- if $m -}}
{{- $mib := 0 -}}
{{- if hasSuffix "Gi" $m -}}{{- $mib = mul (trimSuffix "Gi" $m | atoi) 1024 -}}
{{- else if hasSuffix "Mi" $m -}}{{- $mib = trimSuffix "Mi" $m | atoi -}}
{{- else if hasSuffix "G" $m -}}{{- $mib = div (mul (trimSuffix "G" $m | atoi) 1000000000) 1048576 -}}
{{- else if hasSuffix "M" $m -}}{{- $mib = div (mul (trimSuffix "M" $m | atoi) 1000000) 1048576 -}}
{{- end -}}
{{- if not $mib -}}{{- fail (printf "resources.limits.memory %q: write it as a whole number of Mi, Gi, M or G" $m) -}}{{- end -}}
{{- printf "%dMiB" (div (mul $mib .Values.goMemLimitPercent) 100) -}}
{{- end -}}
{{- end -}}

{{- define "signal.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}
