{{/*
The Quiver YAML configuration (keys are the field names of common/config.py), built from the
dependency values and then overlaid with .Values.config. Credentials are not in here: they
reach the pods as QUIVER_* environment variables from Secrets.
*/}}

{{- define "quiver.baseConfig" -}}
{{- $full := include "quiver.fullname" . -}}
{{- $ns := .Release.Namespace -}}
data_dir: {{ .Values.standalone.persistence.mountPath | quote }}
log_level: {{ upper .Values.log.level | quote }}
kv:
{{- $kv := include "quiver.kvMode" . }}
{{- if eq $kv "external" }}
  backend: etcd
  etcd:
    endpoints: {{ toJson .Values.externalEtcd.endpoints }}
    root_path: {{ .Release.Name | quote }}
{{- with .Values.externalEtcd.tls }}{{ if .enabled }}
    ca_cert: /etc/quiver-tls/etcd/ca.crt
{{- if .clientAuth }}
    cert: /etc/quiver-tls/etcd/tls.crt
    key: /etc/quiver-tls/etcd/tls.key
{{- end }}
{{- end }}{{ end }}
{{- else if eq $kv "incluster" }}
  backend: etcd
  etcd:
    endpoints: [{{ printf "%s-etcd.%s.svc:%d" $full $ns (int .Values.etcd.service.port) | quote }}]
    root_path: {{ .Release.Name | quote }}
{{- else }}
  backend: local
{{- end }}
storage:
{{- $st := include "quiver.storageMode" . }}
{{- if eq $st "external" }}
  backend: s3
  root_path: {{ .Values.externalS3.rootPath | quote }}
  s3:
    endpoint: {{ ternary (printf "%s:%v" .Values.externalS3.host .Values.externalS3.port) .Values.externalS3.host (ne (toString .Values.externalS3.port) "") | quote }}
    bucket: {{ .Values.externalS3.bucketName | quote }}
    secure: {{ or .Values.externalS3.useSSL .Values.externalS3.tls.enabled }}
    region: {{ .Values.externalS3.region | quote }}
{{- with .Values.externalS3.tls }}{{ if .enabled }}
    verify: {{ .verify }}
{{- if .existingSecret }}
    ca_cert: /etc/quiver-tls/s3/ca.crt
{{- end }}
{{- if .clientAuth }}
    client_cert: /etc/quiver-tls/s3/tls.crt
    client_key: /etc/quiver-tls/s3/tls.key
{{- end }}
{{- end }}{{ end }}
{{- else if eq $st "incluster" }}
  backend: s3
  root_path: {{ .Values.minio.rootPath | quote }}
  s3:
    endpoint: {{ printf "%s-minio.%s.svc:%d" $full $ns (int .Values.minio.service.port) | quote }}
    bucket: {{ .Values.minio.bucketName | quote }}
    secure: false
{{- else }}
  backend: local
{{- end }}
stream:
  topic_prefix: {{ .Release.Name | quote }}
{{- $sm := include "quiver.streamMode" . }}
{{- if eq $sm "external" }}
  backend: pulsar
  pulsar:
    service_url: {{ printf "%s://%s:%v" (ternary "pulsar+ssl" "pulsar" .Values.externalPulsar.tls.enabled) .Values.externalPulsar.host .Values.externalPulsar.port | quote }}
    tenant: {{ .Values.externalPulsar.tenant | quote }}
    namespace: {{ .Values.externalPulsar.namespace | quote }}
{{- with .Values.externalPulsar.tls }}{{ if .enabled }}
    tls_trust_certs_file_path: /etc/quiver-tls/pulsar/ca.crt
    tls_validate_hostname: {{ .validateHostname }}
{{- if .clientAuth }}
    tls_cert_file: /etc/quiver-tls/pulsar/tls.crt
    tls_key_file: /etc/quiver-tls/pulsar/tls.key
{{- end }}
{{- end }}{{ end }}
{{- else if eq $sm "incluster" }}
{{- $p := index .Values (include "quiver.pulsarKey" .) }}
  backend: pulsar
  pulsar:
    service_url: {{ printf "pulsar://%s-pulsar.%s.svc:%d" $full $ns (int $p.service.port) | quote }}
{{- else }}
  backend: local
{{- end }}
{{- end -}}

{{/* The merged configuration as YAML text. */}}
{{- define "quiver.config" -}}
{{- $base := include "quiver.baseConfig" . | fromYaml -}}
{{- $merged := mergeOverwrite $base (deepCopy (.Values.config | default dict)) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* The external dependencies whose TLS Secret is mounted: name -> Secret. */}}
{{- define "quiver.tlsSecrets" -}}
{{- $out := dict -}}
{{- range $name, $key := dict "etcd" "externalEtcd" "s3" "externalS3" "pulsar" "externalPulsar" -}}
{{- $ext := index $.Values $key -}}
{{- if and $ext.enabled $ext.tls.enabled $ext.tls.existingSecret -}}
{{- $_ := set $out $name $ext.tls.existingSecret -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
