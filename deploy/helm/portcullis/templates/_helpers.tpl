{{/* Names and labels. */}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.fullname" -}}
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

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (web or worker): pass (list $ "web"). */}}
{{- define "portcullis.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "portcullis.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portcullis.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Secrets: the chart's or the operator's. */}}
{{- define "portcullis.secretName" -}}
{{- default (include "portcullis.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "portcullis.databaseSecretName" -}}
{{- default (printf "%s-database" (include "portcullis.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{- define "portcullis.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else }}
{{- "PORTCULLIS_DATABASE_URL" }}
{{- end }}
{{- end }}

{{/* "true" when the database is SQLite (only visible when the chart holds the URL). */}}
{{- define "portcullis.sqlite" -}}
{{- if and (not .Values.database.existingSecret) (hasPrefix "sqlite:" .Values.database.url) }}true{{ end }}
{{- end }}

{{/* Scheme, Service URL, external URL, issuer. */}}
{{- define "portcullis.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{- define "portcullis.serviceUrl" -}}
{{- printf "%s://%s.%s.svc:%v" (include "portcullis.scheme" .) (include "portcullis.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{- define "portcullis.externalUrl" -}}
{{- if .Values.externalUrl }}
{{- .Values.externalUrl | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) $host }}
{{- else }}
{{- include "portcullis.serviceUrl" . }}
{{- end }}
{{- end }}

{{- define "portcullis.machineFqdn" -}}
{{- default (urlParse (include "portcullis.externalUrl" .)).hostname .Values.machineFqdn }}
{{- end }}

{{- define "portcullis.notificationUrl" -}}
{{- default (printf "%s/v2/webhooks/events" (include "portcullis.serviceUrl" .)) .Values.registryConfig.notificationUrl }}
{{- end }}

{{/* Refusals: settings that cannot work together. */}}
{{- define "portcullis.validate" -}}
{{- if include "portcullis.sqlite" . }}
{{- if gt (int .Values.web.replicas) 1 }}
{{- fail (printf "web.replicas=%v needs PostgreSQL: database.url %q is SQLite, a file one pod owns. Set database.url to postgres://… (or database.existingSecret), or web.replicas=1." .Values.web.replicas .Values.database.url) }}
{{- end }}
{{- if .Values.worker.enabled }}
{{- fail (printf "worker.enabled needs PostgreSQL: database.url %q is SQLite, a file of the web pod that a worker pod cannot share. Set database.url to postgres://… (or database.existingSecret), or worker.enabled=false (the web pod then runs the worker)." .Values.database.url) }}
{{- end }}
{{- end }}
{{- if and (not .Values.database.existingSecret) (not .Values.database.url) }}
{{- fail "database.url is empty: set sqlite:PATH, postgres://… or database.existingSecret" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts" }}
{{- end }}
{{- if ne (empty .Values.secrets.tokenKey) (empty .Values.secrets.tokenCert) }}
{{- fail "secrets.tokenKey and secrets.tokenCert go together: set both, or neither to have them generated" }}
{{- end }}
{{- end }}

{{/* Environment shared by the web and worker containers. */}}
{{- define "portcullis.env" -}}
- name: PORTCULLIS_CONFIG
  value: /etc/portcullis/config.yml
- name: PORTCULLIS_SECRETS_DIR
  value: /secrets
- name: PORTCULLIS_DATA_DIR
  value: /data
- name: PORTCULLIS_SERVER_EXTERNAL_URL
  value: {{ include "portcullis.externalUrl" . | quote }}
- name: PORTCULLIS_MACHINE_FQDN_VALUE
  value: {{ include "portcullis.machineFqdn" . | quote }}
- name: PORTCULLIS_DATABASE_WAIT_SECONDS
  value: {{ .Values.database.waitSeconds | quote }}
- name: PORTCULLIS_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- if .Values.registryCertificates.configMap }}
- name: PORTCULLIS_REGISTRY_CERTIFICATES_DIR
  value: /certificates
{{- end }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes shared by the web and worker pods (without /data). */}}
{{- define "portcullis.volumes" -}}
- name: config
  configMap:
    name: {{ include "portcullis.fullname" . }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "portcullis.databaseSecretName" . }}
          items:
            - key: {{ include "portcullis.databaseSecretKey" . }}
              path: PORTCULLIS_DATABASE_URL
      - secret:
          name: {{ include "portcullis.secretName" . }}
          items:
            - key: PORTCULLIS_NOTIFICATIONS_SECRET
              path: PORTCULLIS_NOTIFICATIONS_SECRET
            - key: token.key
              path: token.key
            - key: token.crt
              path: token.crt
            - key: webhooks.key
              path: webhooks.key
- name: tmp
  emptyDir: {}
{{- if .Values.registryCertificates.configMap }}
- name: registry-certificates
  configMap:
    name: {{ .Values.registryCertificates.configMap }}
{{- end }}
{{- end }}

{{- define "portcullis.volumeMounts" -}}
- name: config
  mountPath: /etc/portcullis
  readOnly: true
- name: secrets
  mountPath: /secrets
  readOnly: true
- name: data
  mountPath: /data
# webhooks.key must be the same in every pod: it opens the webhook secrets stored in
# the database.
- name: secrets
  mountPath: /data/webhooks.key
  subPath: webhooks.key
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.registryCertificates.configMap }}
- name: registry-certificates
  mountPath: /certificates
  readOnly: true
{{- end }}
{{- end }}

{{/* Checksums that roll the pods when what they read changes. */}}
{{- define "portcullis.podChecksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secrets: {{ list .Values.secrets .Values.database | toJson | sha256sum }}
{{- end }}
