{{/*
The operators this chart installs, in a stable order. Each has a block under
.Values.operators and generated RBAC under files/rbac/<name>/role.yaml.
*/}}
{{- define "marina.operators" -}}
controlplane register sync
{{- end }}

{{/*
Prefix of every object name: the release name when it already says
"marina" (the usual `helm install marina`), otherwise <release>-marina.
*/}}
{{- define "marina.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains "marina" .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-marina" .Release.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of one operator's objects, e.g. marina-controlplane. Takes (dict "root" $ "op" "controlplane"). */}}
{{- define "marina.operatorName" -}}
{{- printf "%s-%s" (include "marina.fullname" .root) .op }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "marina.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: marina
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels that select one operator's pods. app.kubernetes.io/name is the
operator's own name (marina-sync …), the label its leader election Lease
carries too. Takes (dict "root" $ "op" "sync").
*/}}
{{- define "marina.selectorLabels" -}}
app.kubernetes.io/name: marina-{{ .op }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .op }}-operator
{{- end }}

{{/*
All labels of one operator's objects: the common ones plus the selector's
(whose instance label the common ones already carry). Takes (dict "root" $
"op" "sync").
*/}}
{{- define "marina.operatorLabels" -}}
{{ include "marina.labels" .root }}
app.kubernetes.io/name: marina-{{ .op }}
app.kubernetes.io/component: {{ .op }}-operator
{{- end }}

{{/* The data center, required; the schema checks its shape. */}}
{{- define "marina.dataCenter" -}}
{{- required "dataCenter is required: set it to the data center this management cluster serves, a DNS label such as fra1 (--set dataCenter=fra1)" .Values.dataCenter }}
{{- end }}

{{/*
One operator's image: <registry>/<repository>:<tag>, the tag defaulting to
the chart's appVersion; a digest, when set, pins it instead of the tag.
Takes (dict "root" $ "op" "sync").
*/}}
{{/*
The KMS plugin's image: registry/kms-vault with the operators' tag.
*/}}
{{- define "marina.kmsPluginImage" -}}
{{- $img := .Values.operators.controlplane.kmsPlugin.image }}
{{- if $img.reference }}
{{- $img.reference }}
{{- else }}
{{- printf "%s/%s:%s" (trimSuffix "/" .Values.image.registry) $img.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "marina.image" -}}
{{- $image := .root.Values.image }}
{{- $op := index .root.Values.operators .op }}
{{- $ref := printf "%s/%s" (trimSuffix "/" $image.registry) $op.image.repository }}
{{- if $image.digest }}
{{- printf "%s@%s" $ref $image.digest }}
{{- else }}
{{- printf "%s:%s" $ref ($image.tag | default .root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The rules controller-gen generated from an operator's RBAC markers
(operators/<op>/rbac.go → files/rbac/<op>/role.yaml), as YAML. kind is
ClusterRole (the cluster-wide permissions) or Role (leader election in the
operator's namespace). Failing here, rather than rendering an empty rule
list, keeps an operator from being installed without its permissions.
Takes (dict "root" $ "op" "sync" "kind" "ClusterRole").
*/}}
{{- define "marina.generatedRules" -}}
{{- $path := printf "files/rbac/%s/role.yaml" .op }}
{{- $file := .root.Files.Get $path }}
{{- if not $file }}
{{- fail (printf "%s is missing from the chart: run `make generate`" $path) }}
{{- end }}
{{- $rules := list }}
{{- $found := false }}
{{- range $doc := regexSplit "(?m)^---\\s*$" $file -1 }}
{{- $obj := fromYaml $doc }}
{{- if eq (get $obj "kind") $.kind }}
{{- $rules = concat $rules $obj.rules }}
{{- $found = true }}
{{- end }}
{{- end }}
{{- if not $found }}
{{- fail (printf "%s has no %s: run `make generate`" $path .kind) }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
