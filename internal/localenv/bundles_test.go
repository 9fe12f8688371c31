package localenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/marina-platform/marina/internal/testenv"
)

// karmadaKinds are the kinds the Karmada CRD bundle must serve.
var karmadaKinds = []struct {
	group, version, kind, plural string
	namespaced, status           bool
	shortNames                   []string
}{
	{"policy.karmada.io", "v1alpha1", "PropagationPolicy", "propagationpolicies", true, false, []string{"pp"}},
	{"policy.karmada.io", "v1alpha1", "ClusterPropagationPolicy", "clusterpropagationpolicies", false, false, []string{"cpp"}},
	{"policy.karmada.io", "v1alpha1", "OverridePolicy", "overridepolicies", true, false, []string{"op"}},
	{"policy.karmada.io", "v1alpha1", "ClusterOverridePolicy", "clusteroverridepolicies", false, false, []string{"cop"}},
	{"policy.karmada.io", "v1alpha1", "FederatedResourceQuota", "federatedresourcequotas", true, true, nil},
	{"work.karmada.io", "v1alpha1", "Work", "works", true, true, []string{"wk"}},
	{"work.karmada.io", "v1alpha2", "ResourceBinding", "resourcebindings", true, true, []string{"rb"}},
	{"work.karmada.io", "v1alpha2", "ClusterResourceBinding", "clusterresourcebindings", false, true, []string{"crb"}},
	{"config.karmada.io", "v1alpha1", "ResourceInterpreterCustomization", "resourceinterpretercustomizations", false, false, []string{"ric"}},
	{"config.karmada.io", "v1alpha1", "ResourceInterpreterWebhookConfiguration", "resourceinterpreterwebhookconfigurations", false, false, nil},
	{"cluster.karmada.io", "v1alpha1", "Cluster", "clusters", false, true, nil},
}

// karmadaBundle is the published Karmada bundle: its tarball name and the
// folder it packs.
func karmadaBundle(t *testing.T) (name, dir string) {
	t.Helper()
	name = "karmada-crds-" + KarmadaCRDVersion + ".tar.gz"
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bundleSources {
		if b.name == name {
			return name, filepath.Join(root, b.dir)
		}
	}
	t.Fatalf("bundleSources publishes no %s", name)
	return "", ""
}

// untar returns the regular files of a gzipped tarball by name, and fails on
// entries outside crds/.
func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h.Name, "crds/") {
			t.Errorf("tarball entry %s is outside crds/", h.Name)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	return files
}

func TestKarmadaCRDBundleIsReproducibleAndComplete(t *testing.T) {
	name, dir := karmadaBundle(t)
	first, err := TarCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := TarCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("packing %s twice gave different bytes, so its sha256 would change", name)
	}

	packed := untar(t, first)
	onDisk := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		onDisk++
		rel, _ := filepath.Rel(dir, path)
		want, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, ok := packed["crds/"+filepath.ToSlash(rel)]
		switch {
		case !ok:
			t.Errorf("%s is not in %s (only .yaml and .yml files are packed)", rel, name)
		case !bytes.Equal(got, want):
			t.Errorf("crds/%s in %s differs from the file", rel, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(packed) != onDisk {
		t.Errorf("%s holds %d files, %s has %d", name, len(packed), dir, onDisk)
	}
	if len(packed) != len(karmadaKinds) {
		t.Errorf("%s holds %d files, want one per kind (%d)", name, len(packed), len(karmadaKinds))
	}
}

// decodeCRDs decodes every CRD of the bundle's files, strictly, so a
// misspelt schema keyword fails here rather than being dropped.
func decodeCRDs(t *testing.T, files map[string][]byte) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, n := range names {
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(files[n])))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			if j, err := yaml.YAMLToJSON(doc); err != nil {
				t.Fatalf("%s: %v", n, err)
			} else if string(bytes.TrimSpace(j)) == "null" {
				continue // only comments
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			if crd.APIVersion != "apiextensions.k8s.io/v1" || crd.Kind != "CustomResourceDefinition" {
				t.Fatalf("%s holds a %s %s, not an apiextensions.k8s.io/v1 CustomResourceDefinition", n, crd.APIVersion, crd.Kind)
			}
			crds = append(crds, crd)
		}
	}
	return crds
}

// checkCRDShapes checks names, scope, versions and subresources against
// karmadaKinds.
func checkCRDShapes(t *testing.T, crds []*apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	byName := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, c := range crds {
		if _, dup := byName[c.Name]; dup {
			t.Errorf("CRD %s defined twice", c.Name)
		}
		byName[c.Name] = c
	}
	if len(byName) != len(karmadaKinds) {
		t.Errorf("bundle defines %d CRDs, want %d", len(byName), len(karmadaKinds))
	}
	for _, k := range karmadaKinds {
		c, ok := byName[k.plural+"."+k.group]
		if !ok {
			t.Errorf("bundle has no CRD for %s.%s", k.plural, k.group)
			continue
		}
		scope := apiextensionsv1.ClusterScoped
		if k.namespaced {
			scope = apiextensionsv1.NamespaceScoped
		}
		if c.Spec.Group != k.group || c.Spec.Names.Kind != k.kind || c.Spec.Scope != scope {
			t.Errorf("%s: group %s kind %s scope %s, want %s %s %s", c.Name, c.Spec.Group, c.Spec.Names.Kind, c.Spec.Scope, k.group, k.kind, scope)
		}
		if !reflect.DeepEqual(c.Spec.Names.ShortNames, k.shortNames) {
			t.Errorf("%s: short names %v, want %v", c.Name, c.Spec.Names.ShortNames, k.shortNames)
		}
		if !reflect.DeepEqual(c.Spec.Names.Categories, []string{"karmada-io"}) {
			t.Errorf("%s: categories %v, want [karmada-io]", c.Name, c.Spec.Names.Categories)
		}
		if len(c.Spec.Versions) != 1 || c.Spec.Versions[0].Name != k.version || !c.Spec.Versions[0].Served || !c.Spec.Versions[0].Storage {
			t.Errorf("%s: want the single served storage version %s", c.Name, k.version)
			continue
		}
		v := c.Spec.Versions[0]
		if hasStatus := v.Subresources != nil && v.Subresources.Status != nil; hasStatus != k.status {
			t.Errorf("%s: status subresource %t, want %t", c.Name, hasStatus, k.status)
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			t.Errorf("%s: no schema", c.Name)
		}
	}
}

// karmadaObjects are realistic objects of every kind, as a user or Karmada's
// controllers would write them. status, when present, is written through the
// status subresource after the object is created.
var karmadaObjects = []string{`
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: nginx, namespace: default}
spec:
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: nginx}
  - apiVersion: v1
    kind: ConfigMap
    labelSelector:
      matchLabels: {app: nginx}
  propagateDeps: true
  priority: 10
  preemption: Always
  conflictResolution: Overwrite
  placement:
    clusterAffinity:
      clusterNames: [member1, member2]
      exclude: [member3]
    clusterTolerations:
    - {key: marina.dev/maintenance, operator: Exists, effect: NoSchedule}
    - {key: cluster.karmada.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
    spreadConstraints:
    - {spreadByField: cluster, minGroups: 2, maxGroups: 2}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - targetCluster: {clusterNames: [member1]}
          weight: 1
        - targetCluster: {clusterNames: [member2]}
          weight: 2
  failover:
    application:
      decisionConditions: {tolerationSeconds: 120}
      purgeMode: Gracefully
      gracePeriodSeconds: 600
      statePreservation:
        rules:
        - {aliasLabelName: marina.dev/last-revision, jsonPath: "{.observedGeneration}"}
    cluster:
      purgeMode: Directly
  suspension:
    dispatchingOnClusters:
      clusterNames: [member2]
  preserveResourcesOnDeletion: true
`, `
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: platform-crds}
spec:
  resourceSelectors:
  - apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    labelSelector:
      matchExpressions:
      - {key: marina.dev/federated, operator: In, values: ["true"]}
  placement:
    clusterAffinities:
    - affinityName: primary
      fieldSelector:
        matchExpressions:
        - {key: region, operator: In, values: [eu-central]}
    - affinityName: standby
      labelSelector:
        matchLabels: {marina.dev/role: standby}
      exclude: [member3]
    replicaScheduling: {replicaSchedulingType: Duplicated}
  dependentOverrides: [platform-registry]
  activationPreference: Lazy
  schedulePriority: {priorityClassSource: KubePriorityClass, priorityClassName: platform-critical}
  suspension: {dispatching: true}
`, `
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: nginx-registry, namespace: default}
spec:
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment, name: nginx}
  overrideRules:
  - targetCluster:
      clusterNames: [member1]
    overriders:
      imageOverrider:
      - {component: Registry, operator: replace, value: "registry.fra1.example.com:5000"}
      - predicate: {path: /spec/template/spec/containers/0/image}
        component: Tag
        operator: replace
        value: "1.27"
      commandOverrider:
      - {containerName: nginx, operator: add, value: ["-g", "daemon off;"]}
      argsOverrider:
      - {containerName: nginx, operator: remove, value: ["--debug"]}
      labelsOverrider:
      - operator: add
        value: {marina.dev/data-center: fra1}
      annotationsOverrider:
      - operator: remove
        value: {example.com/scratch: ""}
  - targetCluster:
      labelSelector:
        matchLabels: {env: prod}
    overriders:
      plaintext:
      - {path: /spec/replicas, operator: replace, value: 5}
      - path: /metadata/annotations/marina.dev~1tier
        operator: add
        value: gold
`, `
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterOverridePolicy
metadata: {name: app-config}
spec:
  resourceSelectors:
  - {apiVersion: v1, kind: ConfigMap, namespace: default, name: app-config}
  overrideRules:
  - targetCluster:
      fieldSelector:
        matchExpressions:
        - {key: provider, operator: NotIn, values: [onprem]}
    overriders:
      fieldOverrider:
      - fieldPath: /data/config.json
        json:
        - {subPath: /log/level, operator: replace, value: warn}
        - {subPath: /features, operator: add, value: {tracing: true, sampling: 0.25}}
      - fieldPath: /data/server.yaml
        yaml:
        - {subPath: /server/port, operator: replace, value: 8443}
      plaintext:
      - {path: /metadata/labels/tier, operator: remove}
`, `
apiVersion: policy.karmada.io/v1alpha1
kind: FederatedResourceQuota
metadata: {name: team-a, namespace: default}
spec:
  overall: {cpu: "20", memory: 64Gi, pods: 200}
  staticAssignments:
  - clusterName: member1
    hard: {cpu: "12", memory: 40Gi}
  - clusterName: member2
    hard: {cpu: 8, memory: 24Gi}
status:
  overall: {cpu: "20", memory: 64Gi}
  overallUsed: {cpu: 3500m, memory: 10Gi}
  aggregatedStatus:
  - clusterName: member1
    hard: {cpu: "12", memory: 40Gi}
    used: {cpu: "2", memory: 6Gi}
`, `
apiVersion: work.karmada.io/v1alpha1
kind: Work
metadata:
  name: nginx-687f7fb96f
  namespace: karmada-es-member1
spec:
  workload:
    manifests:
    - apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: nginx
        namespace: default
        labels: {app: nginx}
      spec:
        replicas: 2
        selector:
          matchLabels: {app: nginx}
        template:
          metadata:
            labels: {app: nginx}
          spec:
            containers:
            - name: nginx
              image: registry.fra1.example.com:5000/nginx:1.27
              ports:
              - {containerPort: 80, protocol: TCP}
  suspendDispatching: false
  preserveResourcesOnDeletion: true
status:
  conditions:
  - type: Applied
    status: "True"
    reason: AppliedSuccessful
    message: Manifest has been successfully applied
    lastTransitionTime: "2026-01-02T03:04:05Z"
    observedGeneration: 1
  manifestStatuses:
  - identifier: {ordinal: 0, group: apps, version: v1, kind: Deployment, resource: deployments, namespace: default, name: nginx}
    status: {replicas: 2, readyReplicas: 2, availableReplicas: 2}
    health: Healthy
`, `
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {name: nginx-deployment, namespace: default}
spec:
  resource: {apiVersion: apps/v1, kind: Deployment, namespace: default, name: nginx, uid: 9b1c4e52-5f0a-4d39-9f57-2f6c2e1b7a10, resourceVersion: "1234"}
  propagateDeps: true
  replicas: 3
  replicaRequirements:
    namespace: default
    priorityClassName: high
    resourceRequest: {cpu: 250m, memory: 256Mi}
    nodeClaim:
      nodeSelector: {kubernetes.io/os: linux}
      tolerations:
      - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}
      hardNodeAffinity:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [fra1-a, fra1-b]}
  components:
  - name: main
    replicas: 3
    replicaRequirements:
      resourceRequest: {cpu: 250m, memory: 256Mi}
  clusters:
  - {name: member1, replicas: 1}
  - {name: member2, replicas: 2}
  placement:
    clusterAffinity: {clusterNames: [member1, member2]}
    spreadConstraints:
    - {spreadByField: cluster, minGroups: 2, maxGroups: 2}
    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}
  gracefulEvictionTasks:
  - fromCluster: member3
    purgeMode: Gracefully
    replicas: 1
    reason: TaintUntolerated
    message: cluster member3 is tainted NoExecute
    producer: taint-manager
    gracePeriodSeconds: 600
    preservedLabelState: {marina.dev/checkpoint: ckpt-42}
    clustersBeforeFailover: [member3]
    creationTimestamp: "2026-01-02T03:04:05Z"
  requiredBy:
  - namespace: default
    name: frontend-deployment
    clusters:
    - {name: member1, replicas: 2}
  schedulerName: default-scheduler
  failover:
    cluster: {purgeMode: Gracefully}
  conflictResolution: Abort
  rescheduleTriggeredAt: "2026-01-02T03:04:05Z"
  suspension: {scheduling: false}
  preserveResourcesOnDeletion: false
  schedulePriority: {priority: 100}
status:
  schedulerObservedGeneration: 1
  lastScheduledTime: "2026-01-02T03:04:06Z"
  conditions:
  - {type: Scheduled, status: "True", reason: Success, message: Binding has been scheduled successfully., lastTransitionTime: "2026-01-02T03:04:06Z"}
  - {type: FullyApplied, status: "True", reason: FullyAppliedSuccess, message: All works have been successfully applied, lastTransitionTime: "2026-01-02T03:04:08Z"}
  aggregatedStatus:
  - clusterName: member1
    applied: true
    health: Healthy
    status: {replicas: 1, readyReplicas: 1}
  - clusterName: member2
    applied: false
    appliedMessage: "admission webhook denied the request"
    health: Unknown
`, `
apiVersion: work.karmada.io/v1alpha2
kind: ClusterResourceBinding
metadata: {name: workloads.example.io-customresourcedefinition}
spec:
  resource: {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, name: workloads.example.io}
  clusters:
  - {name: member1}
  - {name: member2}
  placement:
    clusterAffinities:
    - affinityName: primary
      clusterNames: [member1, member2]
  schedulerName: default-scheduler
status:
  schedulerObservedGeneration: 1
  schedulerObservingAffinityName: primary
  conditions:
  - {type: Scheduled, status: "True", reason: Success, message: Binding has been scheduled successfully., lastTransitionTime: "2026-01-02T03:04:06Z"}
  aggregatedStatus:
  - {clusterName: member1, applied: true, health: Healthy}
`, `
apiVersion: config.karmada.io/v1alpha1
kind: ResourceInterpreterCustomization
metadata: {name: workload-example}
spec:
  target: {apiVersion: workload.example.io/v1alpha1, kind: Workload}
  customizations:
    replicaResource:
      luaScript: |
        function GetReplicas(obj)
          return obj.spec.replicas, {resourceRequest = obj.spec.template.spec.containers[1].resources.limits}
        end
    replicaRevision:
      luaScript: |
        function ReviseReplica(obj, desiredReplica)
          obj.spec.replicas = desiredReplica
          return obj
        end
    retention:
      luaScript: |
        function Retain(desiredObj, observedObj)
          desiredObj.spec.paused = observedObj.spec.paused
          return desiredObj
        end
    statusReflection:
      luaScript: |
        function ReflectStatus(observedObj)
          return {readyReplicas = observedObj.status.readyReplicas}
        end
    statusAggregation:
      luaScript: |
        function AggregateStatus(desiredObj, statusItems)
          local ready = 0
          for i = 1, #statusItems do
            ready = ready + (statusItems[i].status.readyReplicas or 0)
          end
          desiredObj.status = {readyReplicas = ready}
          return desiredObj
        end
    healthInterpretation:
      luaScript: |
        function InterpretHealth(observedObj)
          return observedObj.status.readyReplicas == observedObj.spec.replicas
        end
    dependencyInterpretation:
      luaScript: |
        function GetDependencies(desiredObj)
          return {}
        end
    componentResource:
      luaScript: |
        function GetComponents(desiredObj)
          return {{name = "main", replicas = desiredObj.spec.replicas, replicaRequirements = {}}}
        end
`, `
apiVersion: config.karmada.io/v1alpha1
kind: ResourceInterpreterWebhookConfiguration
metadata: {name: examples}
webhooks:
- name: workloads.interpreter.example.com
  clientConfig:
    url: https://interpreter.karmada-system.svc:443/interpreter-workload
    caBundle: dGVzdC1jYS1idW5kbGU=
  rules:
  - operations: [InterpretReplica, ReviseReplica, Retain, AggregateStatus]
    apiGroups: [workload.example.io]
    apiVersions: [v1alpha1]
    kinds: [Workload]
  timeoutSeconds: 3
  interpreterContextVersions: [v1alpha1]
- name: jobs.interpreter.example.com
  clientConfig:
    service: {namespace: karmada-system, name: interpreter, path: /interpret-jobs, port: 8443}
  rules:
  - operations: ["*"]
    apiGroups: [batch.example.io]
    apiVersions: ["*"]
    kinds: ["*"]
  interpreterContextVersions: [v1alpha1]
`, `
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata:
  name: member1
  labels: {marina.dev/member-cluster: member1, marina.dev/data-center: fra1}
spec:
  id: 4c1b9d6e-0c44-4f0e-8a8e-5d7f3b2a9c11
  syncMode: Push
  apiEndpoint: https://10.210.1.10:6443
  secretRef: {namespace: karmada-cluster, name: member1}
  impersonatorSecretRef: {namespace: karmada-cluster, name: member1-impersonator}
  insecureSkipTLSVerification: false
  proxyURL: socks5://10.210.0.5:1080
  proxyHeader: {Proxy-Authorization: "Basic bWFyaW5hOnNlY3JldA=="}
  provider: onprem
  region: eu-central
  zones: [fra1-a, fra1-b]
  taints:
  - {key: marina.dev/maintenance, value: "true", effect: NoSchedule}
  - {key: cluster.karmada.io/not-ready, effect: NoExecute, timeAdded: "2026-01-02T03:04:05Z"}
  resourceModels:
  - grade: 0
    ranges:
    - {name: cpu, min: 0, max: 1}
    - {name: memory, min: "0", max: 4Gi}
  - grade: 1
    ranges:
    - {name: cpu, min: 1, max: 2}
    - {name: memory, min: 4Gi, max: 16Gi}
status:
  kubernetesVersion: v1.36.3
  apiEnablements:
  - groupVersion: apps/v1
    resources:
    - {name: deployments, kind: Deployment}
    - {name: statefulsets, kind: StatefulSet}
  - groupVersion: v1
    resources:
    - {name: configmaps, kind: ConfigMap}
  conditions:
  - {type: Ready, status: "True", reason: ClusterReady, message: cluster is healthy and ready to accept workloads, lastTransitionTime: "2026-01-02T03:04:05Z"}
  nodeSummary: {totalNum: 3, readyNum: 3}
  resourceSummary:
    allocatable: {cpu: "12", memory: 48Gi, pods: "330"}
    allocating: {cpu: "0"}
    allocated: {cpu: 2500m, memory: 3Gi}
    allocatableModelings:
    - {grade: 0, count: 1}
    - {grade: 1, count: 2}
  remedyActions: [TrafficControl]
`}

// karmadaDefaults are fields the schema defaults, checked on the objects
// above that leave them out.
var karmadaDefaults = map[string]map[string]any{
	"PropagationPolicy":        {"spec.schedulerName": "default-scheduler"},
	"ClusterPropagationPolicy": {"spec.conflictResolution": "Abort", "spec.preemption": "Never", "spec.priority": float64(0)},
}

// karmadaInvalid are objects the schema must reject, with the field the
// error must name.
var karmadaInvalid = []struct{ name, field, object string }{
	{"Cluster with an unknown syncMode", "spec.syncMode", `
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: sideways}
spec: {syncMode: Sideways, apiEndpoint: "https://10.210.1.11:6443"}
`},
	{"Cluster without syncMode", "spec.syncMode", `
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: no-mode}
spec: {apiEndpoint: "https://10.210.1.11:6443"}
`},
	{"Cluster taint without effect", "spec.taints[0].effect", `
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: bad-taint}
spec:
  syncMode: Push
  taints: [{key: dedicated}]
`},
	{"PropagationPolicy selecting nothing", "spec.resourceSelectors", `
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: nothing, namespace: default}
spec: {resourceSelectors: []}
`},
	{"OverridePolicy with an unknown image component", "spec.overrideRules[0].overriders.imageOverrider[0].component", `
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: digest, namespace: default}
spec:
  overrideRules:
  - overriders:
      imageOverrider: [{component: Digest, operator: replace, value: "sha256:0"}]
`},
}

func TestKarmadaCRDBundleServesEveryKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	_, dir := karmadaBundle(t)
	data, err := TarCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	crds := decodeCRDs(t, untar(t, data))
	checkCRDShapes(t, crds)
	if t.Failed() {
		t.FailNow()
	}

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test environment: %v", err)
		}
	})
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	c := env.Client

	for _, crd := range crds {
		if err := c.Create(ctx, crd); err != nil {
			t.Fatalf("create CRD %s: %v", crd.Name, err)
		}
	}
	for _, crd := range crds {
		waitEstablished(ctx, t, c, crd.Name)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "karmada-es-member1"}}); err != nil {
		t.Fatal(err)
	}

	created := map[string]bool{}
	for _, doc := range karmadaObjects {
		want := parseObject(t, doc)
		kind := want.GetKind()
		created[kind] = true
		t.Run(kind, func(t *testing.T) {
			wantStatus, hasStatus := want.Object["status"]
			obj := want.DeepCopy()
			delete(obj.Object, "status")
			if err := createWhenServed(ctx, c, obj); err != nil {
				t.Fatalf("create %s %s: %v", kind, want.GetName(), err)
			}
			if hasStatus {
				obj.Object["status"] = wantStatus
				if err := c.Status().Update(ctx, obj); err != nil {
					t.Fatalf("update status of %s %s: %v", kind, want.GetName(), err)
				}
			}

			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(want.GroupVersionKind())
			if err := c.Get(ctx, types.NamespacedName{Namespace: want.GetNamespace(), Name: want.GetName()}, got); err != nil {
				t.Fatal(err)
			}
			gotObj := normalize(t, got.Object)
			wantObj := normalize(t, want.Object)
			for _, field := range []string{"spec", "status", "webhooks"} {
				if w, ok := wantObj[field]; ok {
					for _, problem := range missingFields(field, w, gotObj[field]) {
						t.Error(problem)
					}
				}
			}
			for path, value := range karmadaDefaults[kind] {
				v, found, err := unstructured.NestedFieldNoCopy(gotObj, strings.Split(path, ".")...)
				if err != nil || !found || !reflect.DeepEqual(v, value) {
					t.Errorf("%s: want the default %v, got %v (found %t, %v)", path, value, v, found, err)
				}
			}
		})
	}
	for _, k := range karmadaKinds {
		if !created[k.kind] {
			t.Errorf("no test object of kind %s", k.kind)
		}
	}

	t.Run("unknown fields are pruned", func(t *testing.T) {
		obj := parseObject(t, `
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: typo, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
  placment: {clusterAffinity: {clusterNames: [member1]}}
  placement: {clusterAffinity: {clusterName: [member1]}}
`)
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
			t.Fatal(err)
		}
		for _, path := range [][]string{{"spec", "placment"}, {"spec", "placement", "clusterAffinity", "clusterName"}} {
			if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, path...); found {
				t.Errorf("%s was kept; the schema should prune unknown fields", strings.Join(path, "."))
			}
		}
	})

	for _, tc := range karmadaInvalid {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			err := c.Create(ctx, parseObject(t, tc.object))
			if err == nil {
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("want an Invalid error naming %s, got: %v", tc.field, err)
			}
		})
	}
}

func parseObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("test object: %v\n%s", err, doc)
	}
	return &unstructured.Unstructured{Object: m}
}

// normalize gives both sides of a comparison the same JSON types (float64
// numbers, []any, map[string]any).
func normalize(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// missingFields lists what of want is absent from, or different in, got:
// every field written must be read back, whatever the server added.
func missingFields(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %#v", path, got)}
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: dropped by the API server (pruned?)", path, k))
				continue
			}
			out = append(out, missingFields(path+"."+k, w[k], gv)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %d items, got %#v", path, len(w), got)}
		}
		var out []string
		for i := range w {
			out = append(out, missingFields(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %#v, got %#v", path, want, got)}
		}
		return nil
	}
}

func waitEstablished(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
			return false, err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.NamesAccepted && cond.Status == apiextensionsv1.ConditionFalse {
				return false, fmt.Errorf("names not accepted: %s", cond.Message)
			}
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
}

// createWhenServed creates obj, retrying while discovery does not know its
// kind yet (just after its CRD is established).
func createWhenServed(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = c.Create(ctx, obj)
		if last != nil && (meta.IsNoMatchError(last) || apierrors.IsNotFound(last)) {
			return false, nil
		}
		return true, last
	})
	if err != nil && last != nil {
		return last
	}
	return err
}
