{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "secrets-injector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "secrets-injector.fullname" -}}
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

{{- define "secrets-injector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "secrets-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secrets-injector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "secrets-injector.labels" -}}
helm.sh/chart: {{ include "secrets-injector.chart" . }}
{{ include "secrets-injector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: secrets-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "secrets-injector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "secrets-injector.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. Call with (dict "image" .Values.image "root" .) */}}
{{- define "secrets-injector.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt and tls.key for the webhook's HTTPS listener. */}}
{{- define "secrets-injector.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existing-secret" }}
{{- required "certificates.existingSecret.name is required when certificates.mode=existing-secret: name a kubernetes.io/tls Secret (tls.crt, tls.key) in the release namespace" .Values.certificates.existingSecret.name }}
{{- else }}
{{- printf "%s-tls" (include "secrets-injector.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names the API server uses to reach the Service. */}}
{{- define "secrets-injector.serviceDnsNames" -}}
{{- $svc := include "secrets-injector.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/* Namespaces never sent to the webhook: the system ones, the release's own, and the user's list. */}}
{{- define "secrets-injector.excludedNamespaces" -}}
{{- list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace | concat .Values.webhook.excludeNamespaces | uniq | toJson }}
{{- end }}

{{/* ConfigMap and key holding the agent's private CA bundle, as JSON; empty when none. */}}
{{- define "secrets-injector.agentCaRef" -}}
{{- if .Values.agent.caBundle.pem }}
{{- dict "name" (printf "%s-agent-ca" (include "secrets-injector.fullname" .)) "key" "ca.crt" | toJson }}
{{- else if .Values.agent.caBundle.configMapRef.name }}
{{- dict "name" .Values.agent.caBundle.configMapRef.name "key" (default "ca.crt" .Values.agent.caBundle.configMapRef.key) | toJson }}
{{- end }}
{{- end }}

{{/*
Env for every injected agent, KEY=VALUE in a stable order. The webhook splits
--agent-env on commas, so a value with a comma is refused here rather than
silently cut in two.
*/}}
{{- define "secrets-injector.agentEnv" -}}
{{- $env := list }}
{{- if .Values.agent.fips }}
{{- $env = append $env "AWS_USE_FIPS_ENDPOINT=true" }}
{{- end }}
{{- with .Values.agent.endpoints.secretsManager }}
{{- $env = append $env (printf "AWS_ENDPOINT_URL_SECRETS_MANAGER=%s" .) }}
{{- end }}
{{- with .Values.agent.endpoints.ssm }}
{{- $env = append $env (printf "AWS_ENDPOINT_URL_SSM=%s" .) }}
{{- end }}
{{- with .Values.agent.endpoints.sts }}
{{- $env = append $env (printf "AWS_ENDPOINT_URL_STS=%s" .) }}
{{- end }}
{{- with .Values.agent.proxy.httpsProxy }}
{{- $env = append $env (printf "HTTPS_PROXY=%s" .) }}
{{- end }}
{{- with .Values.agent.proxy.httpProxy }}
{{- $env = append $env (printf "HTTP_PROXY=%s" .) }}
{{- end }}
{{- range $k, $v := .Values.agent.extraEnv }}
{{- if contains "," (toString $v) }}
{{- fail (printf "agent.extraEnv.%s contains a comma, which the webhook's --agent-env list cannot carry" $k) }}
{{- end }}
{{- $env = append $env (printf "%s=%v" $k $v) }}
{{- end }}
{{- toJson $env }}
{{- end }}
