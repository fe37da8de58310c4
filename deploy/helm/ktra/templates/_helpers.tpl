{{/* The release's base name, at most 63 characters. */}}
{{- define "ktra.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "ktra.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "api"). */}}
{{- define "ktra.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The service account both services run as. */}}
{{- define "ktra.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ktra.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference: pass (dict "root" $ "repository" "ktra-api"). */}}
{{- define "ktra.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .repository (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding credentials given inline, when there are any. */}}
{{- define "ktra.secretName" -}}
{{- printf "%s-credentials" (include "ktra.fullname" .) -}}
{{- end -}}

{{/* Whether the chart creates its own Secret. */}}
{{- define "ktra.ownSecret" -}}
{{- $git := .Values.indexer.git -}}
{{- if or (and .Values.redis.url (not .Values.redis.existingSecret)) (and (not $git.existingSecret) (or $git.httpsPassword $git.sshPrivateKey $git.sshKnownHosts)) -}}
true
{{- end -}}
{{- end -}}

{{/* The Secret and key holding the Redis URL, or nothing when the URL is not secret. */}}
{{- define "ktra.redisSecret" -}}
{{- if .Values.redis.existingSecret -}}
{{- .Values.redis.existingSecret -}}
{{- else if .Values.redis.url -}}
{{- include "ktra.secretName" . -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding git credentials, or nothing. */}}
{{- define "ktra.gitSecret" -}}
{{- $git := .Values.indexer.git -}}
{{- if $git.existingSecret -}}
{{- $git.existingSecret -}}
{{- else if or $git.httpsPassword $git.sshPrivateKey $git.sshKnownHosts -}}
{{- include "ktra.secretName" . -}}
{{- end -}}
{{- end -}}

{{/* "true" when the git remote is reached over ssh (ssh://, git+ssh:// or user@host:path). */}}
{{- define "ktra.sshRemote" -}}
{{- if regexMatch `^((git\+)?ssh(\+git)?://|[^/:@]+@[^/:]+:)` (default "" .Values.indexer.git.remoteUrl) -}}
true
{{- end -}}
{{- end -}}

{{/*
The keys of the git Secret the indexer mounts as files, space-separated. Only these keys are
projected: the chart's own Secret also holds the Redis URL, which the indexer has no use for,
and pointing KTRA_GIT_SSH_* at a file the Secret lacks stops the indexer at start. An existing
Secret is expected to hold both ssh keys for an ssh remote and neither for any other.
*/}}
{{- define "ktra.gitFiles" -}}
{{- $git := .Values.indexer.git -}}
{{- if $git.existingSecret -}}
{{- if include "ktra.sshRemote" . }}ssh-privatekey known_hosts{{ end -}}
{{- else -}}
{{- if $git.sshPrivateKey }}ssh-privatekey {{ end -}}
{{- if $git.sshKnownHosts }}known_hosts{{ end -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap holding the CA bundle for an https git remote, or nothing. */}}
{{- define "ktra.gitCaConfigMap" -}}
{{- $git := .Values.indexer.git -}}
{{- if $git.caBundleConfigMap -}}
{{- $git.caBundleConfigMap -}}
{{- else if $git.caBundle -}}
{{- printf "%s-indexer-ca" (include "ktra.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The settings both services read. */}}
{{- define "ktra.sharedSettings" -}}
KTRA_REGISTRY_PUBLIC_URL: {{ required "publicUrl is required" .Values.publicUrl | quote }}
KTRA_REGISTRY_AUTH_REQUIRED: {{ .Values.authRequired | quote }}
KTRA_LOG_FORMAT: {{ .Values.logFormat | quote }}
RUST_LOG: {{ .Values.logLevel | quote }}
{{- with .Values.otel.endpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- with .Values.otel.resourceAttributes }}
OTEL_RESOURCE_ATTRIBUTES: {{ . | quote }}
{{- end }}
{{- end -}}
