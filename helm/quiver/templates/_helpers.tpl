{{/* Names, labels, the image and the cross-field checks shared by every template. */}}

{{- define "quiver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quiver.fullname" -}}
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

{{- define "quiver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with the root context. */}}
{{- define "quiver.labels" -}}
helm.sh/chart: {{ include "quiver.chart" . }}
app.kubernetes.io/name: {{ include "quiver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "proxy"). */}}
{{- define "quiver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quiver.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "quiver.componentLabels" -}}
{{ include "quiver.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "quiver.image" -}}
{{- $tag := .Values.image.all.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" .Values.image.all.repository (toString $tag) -}}
{{- end -}}

{{- define "quiver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "quiver.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The active in-cluster Pulsar values block ("pulsarv3", "pulsar") or "" for none. */}}
{{- define "quiver.pulsarKey" -}}
{{- if .Values.pulsarv3.enabled -}}pulsarv3{{- else if .Values.pulsar.enabled -}}pulsar{{- end -}}
{{- end -}}

{{/* Which backend each interface uses: "external", "incluster" or "local". */}}
{{- define "quiver.kvMode" -}}
{{- if .Values.externalEtcd.enabled -}}external{{- else if .Values.etcd.enabled -}}incluster{{- else -}}local{{- end -}}
{{- end -}}
{{- define "quiver.storageMode" -}}
{{- if .Values.externalS3.enabled -}}external{{- else if .Values.minio.enabled -}}incluster{{- else -}}local{{- end -}}
{{- end -}}
{{- define "quiver.streamMode" -}}
{{- if .Values.externalPulsar.enabled -}}external{{- else if include "quiver.pulsarKey" . -}}incluster{{- else -}}local{{- end -}}
{{- end -}}

{{/* The Secret holding the S3 keys, and the names of its two keys, as a YAML dict. */}}
{{- define "quiver.s3Secret" -}}
{{- $full := include "quiver.fullname" . -}}
{{- if eq (include "quiver.storageMode" .) "external" -}}
name: {{ .Values.externalS3.existingSecret | default (printf "%s-external-s3" $full) }}
accessKey: {{ ternary .Values.externalS3.existingSecretKeys.accessKey "accesskey" (ne .Values.externalS3.existingSecret "") }}
secretKey: {{ ternary .Values.externalS3.existingSecretKeys.secretKey "secretkey" (ne .Values.externalS3.existingSecret "") }}
{{- else -}}
name: {{ .Values.minio.existingSecret | default (printf "%s-minio" $full) }}
accessKey: accesskey
secretKey: secretkey
{{- end -}}
{{- end -}}

{{/*
Checks that need more than one value (values.schema.json covers types, ranges and the
per-block required fields). Rendered by every workload template so `helm lint` sees them.
*/}}
{{- define "quiver.validate" -}}
{{- if and .Values.pulsar.enabled .Values.pulsarv3.enabled -}}
{{- fail "pulsar.enabled and pulsarv3.enabled are both true: enable only one in-cluster Pulsar (pulsarv3 is the default)" -}}
{{- end -}}
{{- if .Values.cluster.enabled -}}
{{- if eq (include "quiver.kvMode" .) "local" -}}
{{- fail "cluster mode needs etcd: set etcd.enabled=true, or externalEtcd.enabled=true with externalEtcd.endpoints" -}}
{{- end -}}
{{- if eq (include "quiver.storageMode" .) "local" -}}
{{- fail "cluster mode needs object storage: set minio.enabled=true, or externalS3.enabled=true with externalS3.host and externalS3.bucketName" -}}
{{- end -}}
{{- if eq (include "quiver.streamMode" .) "local" -}}
{{- fail "cluster mode needs Pulsar: set pulsarv3.enabled=true, or externalPulsar.enabled=true with externalPulsar.host" -}}
{{- end -}}
{{- if and (gt (int .Values.mixCoordinator.replicas) 1) (not .Values.mixCoordinator.activeStandby.enabled) -}}
{{- fail "mixCoordinator.replicas > 1 needs mixCoordinator.activeStandby.enabled=true (one active coordinator, the others standby)" -}}
{{- end -}}
{{- range $key := list "proxy" "queryNode" -}}
{{- $hpa := (index $.Values $key).hpa -}}
{{- if and $hpa.enabled (gt (int $hpa.minReplicas) (int $hpa.maxReplicas)) -}}
{{- fail (printf "%s.hpa.minReplicas (%d) is greater than %s.hpa.maxReplicas (%d)" $key (int $hpa.minReplicas) $key (int $hpa.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.externalS3.enabled (not .Values.externalS3.existingSecret) (or (not .Values.externalS3.accessKey) (not .Values.externalS3.secretKey)) -}}
{{- fail "externalS3 needs credentials: set externalS3.existingSecret, or both externalS3.accessKey and externalS3.secretKey" -}}
{{- end -}}
{{- end -}}
