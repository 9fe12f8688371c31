{{/*
The ControlPlane's name, prefix of every object. The schema checks its
shape; this only makes a missing name fail with a message that says so.
*/}}
{{- define "cp.name" -}}
{{- required "name is required: the ControlPlane's name, prefix of every object" .Values.name }}
{{- end }}

{{/* The data center, required. */}}
{{- define "cp.dataCenter" -}}
{{- required "dataCenter is required: the ControlPlane's spec.dataCenter, a DNS label such as fra1" .Values.dataCenter }}
{{- end }}

{{/* Cluster DNS suffix of a Service in the release namespace: <ns>.svc.<domain>. */}}
{{- define "cp.svcDomain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/*
Labels of one part of the control plane: the values' labels plus Marina's
standard app.kubernetes.io ones, which win (pods must keep the labels their
selector names). Built as a dict so a key given twice appears once. Takes (dict "root" $ "component"
"apiserver" "app" "kube-apiserver").
*/}}
{{- define "cp.labels" -}}
{{- $root := .root }}
{{- $l := dict
  "app.kubernetes.io/name" .app
  "app.kubernetes.io/instance" (include "cp.name" $root)
  "app.kubernetes.io/component" .component
  "app.kubernetes.io/part-of" "marina"
  "app.kubernetes.io/managed-by" "marina-controlplane"
  "app.kubernetes.io/version" ($root.Values.version | trunc 63 | trimSuffix "-" | trimSuffix ".")
}}
{{- toYaml (merge $l (deepCopy ($root.Values.labels | default dict))) }}
{{- end }}

{{/*
Labels that select one component's pods; never changes for a component, as
a Deployment's selector is immutable. Takes (dict "root" $ "component" "apiserver").
*/}}
{{- define "cp.selectorLabels" -}}
app.kubernetes.io/instance: {{ include "cp.name" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Image of a component: image.reference when set, otherwise
<imageRegistry or image.registry>/<image.repository>:<image.tag or the
default tag>. Takes (dict "root" $ "image" $cfg.image "tag" "v1.34.1").
*/}}
{{- define "cp.image" -}}
{{- if .image.reference }}
{{- .image.reference }}
{{- else }}
{{- $registry := .root.Values.imageRegistry | default .image.registry | trimSuffix "/" }}
{{- printf "%s/%s:%s" $registry .image.repository (.image.tag | default .tag) }}
{{- end }}
{{- end }}

{{/* Pull policy of a component. Takes (dict "root" $ "cfg" $cfg). */}}
{{- define "cp.pullPolicy" -}}
{{- .cfg.imagePullPolicy | default .root.Values.imagePullPolicy }}
{{- end }}

{{/*
Command-line flags as YAML list items: the chart's own (.flags, a dict of
name → value) in name order, except those that .extra sets too, then
.extra (the component's extraArgs) in name order. extraArgs win because a
flag given twice is appended to, not replaced, when it is a list flag such
as --enable-admission-plugins. Takes (dict "flags" $flags "extra" $cfg.extraArgs).
*/}}
{{- define "cp.args" -}}
{{- $flags := .flags }}
{{- $extra := .extra | default dict }}
{{- range $k := keys $flags | sortAlpha }}
{{- if not (hasKey $extra $k) }}
- {{ printf "--%s=%v" $k (get $flags $k) | quote }}
{{- end }}
{{- end }}
{{- range $k := keys $extra | sortAlpha }}
- {{ printf "--%s=%v" $k (get $extra $k) | quote }}
{{- end }}
{{- end }}

{{/*
Pod annotations: checksum.marina.dev/<key> for every checksum, the
component's own winning over the control plane's. A changed value changes
the pod template, which rolls the pods. Takes (dict "root" $ "cfg" $cfg "container" "kube-apiserver").
*/}}
{{- define "cp.podAnnotations" -}}
kubectl.kubernetes.io/default-container: {{ .container }}
{{- $sums := merge (deepCopy (.cfg.checksums | default dict)) (.root.Values.checksums | default dict) }}
{{- range $k := keys $sums | sortAlpha }}
checksum.marina.dev/{{ $k }}: {{ get $sums $k | quote }}
{{- end }}
{{- end }}

{{/*
Pod anti-affinity of a component with more than one replica: Preferred
spreads over nodes when the scheduler can, Required never puts two replicas
on one node, None places them anywhere. Takes (dict "root" $ "cfg" $cfg
"component" "apiserver" "replicas" 3).
*/}}
{{- define "cp.affinity" -}}
{{- $mode := .cfg.antiAffinity | default "Preferred" }}
{{- if and (gt (int .replicas) 1) (ne $mode "None") }}
affinity:
  podAntiAffinity:
    {{- if eq $mode "Required" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "cp.selectorLabels" . | nindent 12 }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "cp.selectorLabels" . | nindent 14 }}
    {{- end }}
{{- end }}
{{- end }}

{{/*
Rolling update of a Deployment: a new pod comes up before an old one goes
(no downtime even with one replica), except when Required anti-affinity
leaves no node for the extra pod; then one old pod goes first. Takes
(dict "cfg" $cfg "replicas" 3).
*/}}
{{- define "cp.strategy" -}}
type: RollingUpdate
rollingUpdate:
{{- if and (gt (int .replicas) 1) (eq .cfg.antiAffinity "Required") }}
  maxSurge: 0
  maxUnavailable: 1
{{- else }}
  maxSurge: 1
  maxUnavailable: 0
{{- end }}
{{- end }}

{{/*
Pod-level settings every component shares: priority, pull secrets,
security context, placement, and no service-account token (the components
talk to the federation API server with their own certificates, never to
the management cluster). Takes (dict "root" $ "cfg" $cfg "component" "apiserver" "replicas" 1).
*/}}
{{- define "cp.podSpec" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with (.cfg.priorityClassName | default .root.Values.priorityClassName) }}
priorityClassName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .cfg.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .cfg.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- include "cp.affinity" . }}
{{- end }}

{{/* Container security context every container shares. */}}
{{- define "cp.containerSecurityContext" -}}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
A PodDisruptionBudget for a component with more than one replica: at most
one pod down at a time, voluntarily. Takes (dict "root" $ "cfg" $cfg
"component" "apiserver" "app" "kube-apiserver" "replicas" 3).
*/}}
{{- define "cp.pdb" -}}
{{- if gt (int .replicas) 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "cp.name" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "cp.labels" . | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "cp.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
Whether local etcd runs: external etcd is chosen by listing its endpoints.
Returns "true" or "".
*/}}
{{- define "cp.localEtcd" -}}
{{- if not .Values.etcd.external.endpoints }}true{{ end }}
{{- end }}

{{/*
The flags both API servers (kube-apiserver and the aggregated API server)
use to reach etcd, with the client certificate mounted at
/etc/marina/pki/etcd-client: the local members by their stable names, or
the external endpoints under the control plane's key prefix.
*/}}
{{- define "cp.etcdFlags" -}}
{{- $flags := dict
  "etcd-cafile" "/etc/marina/pki/etcd-client/ca.crt"
  "etcd-certfile" "/etc/marina/pki/etcd-client/tls.crt"
  "etcd-keyfile" "/etc/marina/pki/etcd-client/tls.key"
}}
{{- if include "cp.localEtcd" . }}
{{- $name := include "cp.name" . }}
{{- $members := list }}
{{- range $i := until (int .Values.etcd.local.replicas) }}
{{- $members = append $members (printf "https://%s-etcd-%d.%s-etcd.%s:2379" $name $i $name (include "cp.svcDomain" $)) }}
{{- end }}
{{- $_ := set $flags "etcd-servers" (join "," $members) }}
{{- else }}
{{- $_ := set $flags "etcd-servers" (join "," .Values.etcd.external.endpoints) }}
{{- $_ := set $flags "etcd-prefix" .Values.etcd.external.keyPrefix }}
{{- if .Values.etcd.external.shared }}
{{- /* Its etcd user may touch only its prefix; compaction is etcd's own. */}}
{{- $_ := set $flags "etcd-compaction-interval" "0" }}
{{- end }}
{{- end }}
{{- toYaml $flags }}
{{- end }}

{{/* The Secret with the API servers' etcd client certificate. */}}
{{- define "cp.etcdClientSecret" -}}
{{- if include "cp.localEtcd" . }}
{{- include "cp.name" . }}-etcd-client-tls
{{- else }}
{{- required "etcd.external.tlsSecretName is required with external etcd" .Values.etcd.external.tlsSecretName }}
{{- end }}
{{- end }}

{{/*
URL of the federation API server inside the management cluster; what the
operator's kubeconfig Secrets point at.
*/}}
{{- define "cp.apiServerURL" -}}
{{- printf "https://%s-apiserver.%s.svc:%d" (include "cp.name" .) .Release.Namespace (int .Values.components.apiServer.securePort) }}
{{- end }}

{{/*
Volumes of a component that talks to the federation API server: the
kubeconfig Secret the operator writes (<name>-<component>-kubeconfig, key
kubeconfig) and the component's client certificate, which that kubeconfig
names by path (README.md, "Kubeconfig Secrets"). Takes (dict "root" $ "component" "scheduler").
*/}}
{{- define "cp.kubeconfigVolumes" -}}
- name: kubeconfig
  secret:
    secretName: {{ include "cp.name" .root }}-{{ .component }}-kubeconfig
    defaultMode: 288 # 0440
- name: client-cert
  secret:
    secretName: {{ include "cp.name" .root }}-{{ .component }}-client-tls
    defaultMode: 288 # 0440
{{- end }}

{{/* Mounts of cp.kubeconfigVolumes; the kubeconfig is /etc/marina/kubeconfig/kubeconfig. */}}
{{- define "cp.kubeconfigMounts" -}}
- name: kubeconfig
  mountPath: /etc/marina/kubeconfig
  readOnly: true
- name: client-cert
  mountPath: /etc/marina/pki/client
  readOnly: true
{{- end }}

{{/*
Splits host names and IP addresses (of extraSANs and endpointHost) for a
certificate. Returns YAML {dns: [...], ip: [...]}. Takes a list.
*/}}
{{- define "cp.splitSANs" -}}
{{- $dns := list }}
{{- $ip := list }}
{{- range . }}
{{- if or (regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" .) (contains ":" .) }}
{{- $ip = append $ip . }}
{{- else }}
{{- $dns = append $dns . }}
{{- end }}
{{- end }}
{{- toYaml (dict "dns" $dns "ip" $ip) }}
{{- end }}

{{/*
One cert-manager Certificate, <name>-<purpose>, whose Secret is
<name>-<purpose>-tls (tls.crt, tls.key, ca.crt). Takes (dict "root" $
"purpose" "apiserver" "component" "apiserver" "app" "kube-apiserver"
"commonName" "…" and optionally "organizations" "dnsNames" "ipAddresses"
"usages" (lists), "privateKey" and "issuer" (dicts; the issuer defaults to
certificates.issuerRef), "isCA" and "duration").
*/}}
{{- define "cp.certificate" -}}
{{- $root := .root }}
{{- $name := include "cp.name" $root }}
{{- $certs := $root.Values.certificates }}
{{- $issuer := .issuer | default $certs.issuerRef }}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ $name }}-{{ .purpose }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "cp.labels" . | nindent 4 }}
spec:
  secretName: {{ $name }}-{{ .purpose }}-tls
  secretTemplate:
    labels:
      {{- include "cp.labels" . | nindent 6 }}
  issuerRef:
    name: {{ required "certificates.issuerRef.name is required: the cert-manager issuer that signs the control plane's certificates" $issuer.name }}
    kind: {{ $issuer.kind | default "Issuer" }}
    group: {{ $issuer.group | default "cert-manager.io" }}
  duration: {{ .duration | default $certs.duration }}
  {{- with $certs.renewBefore }}
  renewBefore: {{ . }}
  {{- end }}
  {{- if .isCA }}
  isCA: true
  {{- end }}
  revisionHistoryLimit: 1
  commonName: {{ .commonName | quote }}
  {{- with .organizations }}
  subject:
    organizations:
      {{- toYaml . | nindent 6 }}
  {{- end }}
  {{- with .dnsNames }}
  dnsNames:
    {{- toYaml (uniq .) | nindent 4 }}
  {{- end }}
  {{- with .ipAddresses }}
  ipAddresses:
    {{- toYaml (uniq .) | nindent 4 }}
  {{- end }}
  usages:
    {{- toYaml .usages | nindent 4 }}
  privateKey:
    {{- toYaml (.privateKey | default (merge (dict "rotationPolicy" "Always") $certs.privateKey)) | nindent 4 }}
{{- end }}

{{/*
The components of the engine this chart can run, keyed by values key:
object-name suffix, container (and binary) name, health-probe port.
*/}}
{{- define "cp.engineComponents" -}}
aggregatedAPIServer:
  component: aggregated-apiserver
  app: karmada-aggregated-apiserver
controllerManager:
  component: controller-manager
  app: karmada-controller-manager
  healthPort: 10357
scheduler:
  component: scheduler
  app: karmada-scheduler
  healthPort: 10351
webhook:
  component: webhook
  app: karmada-webhook
descheduler:
  component: descheduler
  app: karmada-descheduler
  healthPort: 10358
metricsAdapter:
  component: metrics-adapter
  app: karmada-metrics-adapter
search:
  component: search
  app: karmada-search
{{- end }}

{{/*
The engine's extension API servers, which the federation API server's
aggregator proxies to through an APIService and an ExternalName Service of
the same name in engineNamespace (the operator makes both): keyed by
values key, that Service's name (their serving certificates must name it),
whether the server keeps objects in etcd, and whether its Service must
reach it before it is ready.
*/}}
{{- define "cp.extensionAPIServers" -}}
aggregatedAPIServer:
  service: karmada-aggregated-apiserver
  etcd: true
metricsAdapter:
  service: karmada-metrics-adapter
  etcd: false
search:
  service: karmada-search
  etcd: true
  # It reads its own ResourceRegistries through the federation API server,
  # hence through its own Service, before it is ready.
  publishNotReadyAddresses: true
{{- end }}

{{/*
One of the control plane's own CAs, <name>-<purpose> (front-proxy-ca,
etcd-ca, signer-ca): a self-signed CA Certificate and the CA Issuer of the
same name that signs with it. They keep what the user's issuer signs apart
from what only the control plane itself may sign. Ten years, and the key
never changes on renewal, so that every certificate signed so far still
verifies against a renewed CA. Takes (dict "root" $ "purpose" "etcd-ca"
"component" "etcd" "app" "etcd").
*/}}
{{- define "cp.ca" -}}
{{- $name := include "cp.name" .root }}
{{- $certs := .root.Values.certificates }}
{{- include "cp.certificate" (dict "root" .root "purpose" .purpose "component" .component "app" .app
  "commonName" (printf "%s-%s" $name .purpose)
  "issuer" (dict "name" (printf "%s-selfsigned" $name) "kind" "Issuer" "group" "cert-manager.io")
  "isCA" true
  "duration" "87600h"
  "usages" (list "digital signature" "cert sign" "crl sign")
  "privateKey" (merge (dict "rotationPolicy" "Never") $certs.privateKey)) }}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: {{ $name }}-{{ .purpose }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "cp.labels" . | nindent 4 }}
spec:
  ca:
    secretName: {{ $name }}-{{ .purpose }}-tls
{{- end }}

{{/* The issuerRef of one of the control plane's own CAs (cp.ca). Takes (dict "root" $ "purpose" "etcd-ca"). */}}
{{- define "cp.caIssuer" -}}
{{- toYaml (dict "name" (printf "%s-%s" (include "cp.name" .root) .purpose) "kind" "Issuer" "group" "cert-manager.io") }}
{{- end }}
