{{/* Pieces shared by the in-cluster dependency StatefulSets (etcd, MinIO, Pulsar). */}}

{{/* The data volume: a claim template when persistence is on, else an emptyDir volume.
Call with (dict "persistence" .Values.etcd.persistence "part" "claims"|"volumes"). */}}
{{- define "quiver.depStorage" -}}
{{- $p := .persistence -}}
{{- if eq .part "claims" -}}
{{- if $p.enabled }}
volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes:
        - {{ $p.accessMode }}
      resources:
        requests:
          storage: {{ $p.size }}
      {{- with $p.storageClass }}
      storageClassName: {{ ternary "" . (eq . "-") | quote }}
      {{- end }}
{{- end }}
{{- else if not $p.enabled }}
volumes:
  - name: data
    emptyDir: {}
{{- end }}
{{- end -}}

{{/* A headless Service (stable pod DNS) and a client Service for one dependency.
Call with (dict "root" $ "component" "etcd" "type" "ClusterIP" "ports" (list (dict "name" .. "port" ..))). */}}
{{- define "quiver.depServices" -}}
{{- $full := include "quiver.fullname" .root -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $full }}-{{ .component }}-headless
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "quiver.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
  selector:
    {{- include "quiver.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $full }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "quiver.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  type: {{ .type }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
  selector:
    {{- include "quiver.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
{{- end -}}
