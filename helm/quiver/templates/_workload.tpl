{{/*
The pod template shared by the role Deployments and the standalone Deployment.
Call with (dict "root" $ "key" "queryNode" "role" "querynode").
*/}}

{{- define "quiver.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds | default 0 }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
successThreshold: {{ .successThreshold | default 1 }}
failureThreshold: {{ .failureThreshold }}
{{- end -}}

{{/* Probes: HTTP /healthz for the proxy and standalone, TCP on the internal port otherwise. */}}
{{- define "quiver.probes" -}}
{{- $v := .root.Values -}}
{{- $http := has .role (list "proxy" "standalone") -}}
{{- $standby := and (eq .role "coord") $v.mixCoordinator.activeStandby.enabled -}}
{{- if not $standby -}}
{{- $handler := ternary (dict "httpGet" (dict "path" "/healthz" "port" "http")) (dict "tcpSocket" (dict "port" "internal")) $http -}}
{{- if $v.startupProbe.enabled }}
startupProbe:
  {{- toYaml $handler | nindent 2 }}
  periodSeconds: {{ $v.startupProbe.periodSeconds }}
  timeoutSeconds: {{ $v.startupProbe.timeoutSeconds }}
  failureThreshold: {{ $v.startupProbe.failureThreshold }}
{{- end }}
{{- if $v.livenessProbe.enabled }}
livenessProbe:
  {{- toYaml $handler | nindent 2 }}
  {{- include "quiver.probeTimings" $v.livenessProbe | nindent 2 }}
{{- end }}
{{- if $v.readinessProbe.enabled }}
readinessProbe:
  {{- toYaml $handler | nindent 2 }}
  {{- include "quiver.probeTimings" $v.readinessProbe | nindent 2 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Environment: the address to bind and advertise, credentials from Secrets, extraEnv. */}}
{{- define "quiver.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: QUIVER_HOST
{{- if has .role (list "proxy" "standalone") }}
  value: "0.0.0.0"
{{- else }}
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end }}
{{- if ne (include "quiver.storageMode" $root) "local" }}
{{- $s3 := include "quiver.s3Secret" $root | fromYaml }}
- name: QUIVER_STORAGE__S3__ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.name }}
      key: {{ $s3.accessKey }}
- name: QUIVER_STORAGE__S3__SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.name }}
      key: {{ $s3.secretKey }}
{{- end }}
{{- if and $v.externalEtcd.enabled $v.externalEtcd.existingSecret }}
- name: QUIVER_KV__ETCD__USER
  valueFrom:
    secretKeyRef:
      name: {{ $v.externalEtcd.existingSecret }}
      key: {{ $v.externalEtcd.existingSecretKeys.username }}
- name: QUIVER_KV__ETCD__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.externalEtcd.existingSecret }}
      key: {{ $v.externalEtcd.existingSecretKeys.password }}
{{- end }}
{{- if and $v.externalPulsar.enabled $v.externalPulsar.existingSecret }}
- name: QUIVER_STREAM__PULSAR__AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.externalPulsar.existingSecret }}
      key: {{ $v.externalPulsar.existingSecretKeys.token }}
{{- end }}
{{- with (index $v .key).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "quiver.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $c := index $v .key -}}
{{- $http := has .role (list "proxy" "standalone") -}}
metadata:
  labels:
    {{- include "quiver.selectorLabels" (dict "root" $root "component" .role) | nindent 4 }}
    {{- with $v.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "quiver.config" $root | sha256sum }}
    {{- with $v.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $c.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  automountServiceAccountToken: false
  {{- with include "quiver.serviceAccountName" $root }}
  serviceAccountName: {{ . }}
  {{- end }}
  {{- with $v.image.all.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with $v.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .role }}
      image: {{ include "quiver.image" $root | quote }}
      imagePullPolicy: {{ $v.image.all.pullPolicy }}
      args:
        - run
        - {{ .role }}
        - --config
        - /etc/quiver/quiver.yaml
        - --data-dir
        - {{ $v.standalone.persistence.mountPath | quote }}
        {{- if $http }}
        - --grpc-port
        - {{ $v.service.port | quote }}
        - --http-port
        - {{ $v.service.httpPort | quote }}
        {{- end }}
        {{- if ne .role "standalone" }}
        - --internal-port
        - {{ $c.internalPort | quote }}
        {{- end }}
      env:
        {{- include "quiver.env" . | nindent 8 }}
      ports:
        {{- if $http }}
        - name: milvus
          containerPort: {{ $v.service.port }}
          protocol: TCP
        - name: http
          containerPort: {{ $v.service.httpPort }}
          protocol: TCP
        {{- end }}
        {{- if ne .role "standalone" }}
        - name: internal
          containerPort: {{ $c.internalPort }}
          protocol: TCP
        {{- end }}
      {{- include "quiver.probes" . | trim | nindent 6 }}
      {{- with $c.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.containerSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: /etc/quiver
          readOnly: true
        - name: data
          mountPath: {{ $v.standalone.persistence.mountPath | quote }}
        - name: tmp
          mountPath: /tmp
        {{- range $name, $secret := (include "quiver.tlsSecrets" $root | fromJson) }}
        - name: tls-{{ $name }}
          mountPath: /etc/quiver-tls/{{ $name }}
          readOnly: true
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "quiver.fullname" $root }}-config
    - name: tmp
      emptyDir: {}
    {{- range $name, $secret := (include "quiver.tlsSecrets" $root | fromJson) }}
    - name: tls-{{ $name }}
      secret:
        secretName: {{ $secret }}
    {{- end }}
    {{- if and (eq .role "standalone") $v.standalone.persistence.enabled }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ $v.standalone.persistence.persistentVolumeClaim.existingClaim | default (printf "%s-data" (include "quiver.fullname" $root)) }}
    {{- else }}
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with ($c.nodeSelector | default $v.nodeSelector) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($c.affinity | default $v.affinity) }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($c.tolerations | default $v.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* One role's Deployment. */}}
{{- define "quiver.deployment" -}}
{{- include "quiver.validate" .root -}}
{{- $root := .root -}}
{{- $c := index $root.Values .key -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "quiver.fullname" $root }}-{{ .role }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "quiver.componentLabels" (dict "root" $root "component" .role) | nindent 4 }}
spec:
  {{- if not (and $c.hpa $c.hpa.enabled) }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- if eq .role "coord" }}
  strategy:
    {{- if $root.Values.mixCoordinator.activeStandby.enabled }}
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 0
      maxUnavailable: 1
    {{- else }}
    {{- /* A new coordinator waits for the old one's lease, so never run two at once. */}}
    type: Recreate
    {{- end }}
  {{- else if $c.strategy }}
  strategy:
    {{- toYaml $c.strategy | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "quiver.selectorLabels" (dict "root" $root "component" .role) | nindent 6 }}
  template:
    {{- include "quiver.podTemplate" . | nindent 4 }}
{{- end -}}
