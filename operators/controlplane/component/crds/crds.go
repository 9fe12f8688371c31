// Package crds is the engine's CRDs component: the CustomResourceDefinitions
// of a release's bundle, in the federation API server, with the bundle's
// conversion patches filled for the control plane's webhook, and Marina's
// stand-in for the Cluster kind where the aggregated API server does not
// serve it.
package crds

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
)

// StandInName is the stand-in Cluster CRD's name: the name the
// aggregated API server's APIService would otherwise own.
const StandInName = "clusters.cluster.karmada.io"

//go:embed standin-cluster.yaml
var standInYAML []byte

// Values are what the component needs.
type Values struct {
	// Bundle is the release's downloaded bundle.
	Bundle *crdbundle.Bundle
	// Conversion is the engine's conversion webhook; nil when the webhook is
	// off, and the bundle's conversion patches are then left out.
	Conversion *crdbundle.Conversion
	// StandInCluster installs Marina's Cluster CRD. Never with the
	// aggregated API server: kube-apiserver would then serve the group
	// itself and take the APIService over.
	StandInCluster bool
	// Labels mark what Marina installed, so that only that is removed.
	Labels map[string]string
}

// Objects are the CRDs to apply, the stand-in last.
func Objects(v Values) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	crds, err := v.Bundle.Resolve(v.Conversion)
	if err != nil {
		return nil, err
	}
	for _, c := range crds {
		if c.Name == StandInName {
			return nil, fmt.Errorf("%w: the bundle has a %s CRD; the engine serves Cluster from its aggregated API server, so a bundle must not", crdbundle.ErrContent, StandInName)
		}
	}
	if v.StandInCluster {
		b, err := crdbundle.Parse(standInYAML, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("the stand-in Cluster CRD: %w", err)
		}
		crds = append(crds, b.CRDs...)
	}
	for _, c := range crds {
		l := maps.Clone(c.Labels)
		if l == nil {
			l = map[string]string{}
		}
		maps.Copy(l, v.Labels)
		c.Labels = l
	}
	return crds, nil
}

// Deploy applies the CRDs with server-side apply as fieldManager, then
// karmada-view and karmada-edit (Roles) over them, and
// removes Marina's stand-in Cluster CRD when it is not wanted (the
// aggregated API server now serves Cluster). A stand-in someone else
// installed is left alone. It returns the CRDs it applied.
func Deploy(ctx context.Context, c client.Client, fieldManager string, v Values) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	crds, err := Objects(v)
	if err != nil {
		return nil, err
	}
	for _, crd := range crds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("apply CRD %s: %w", crd.Name, err)
		}
	}
	if err := applyRoles(ctx, c, fieldManager, v.Labels); err != nil {
		return nil, err
	}
	if !v.StandInCluster {
		if err := removeStandIn(ctx, c, fieldManager, v.Labels); err != nil {
			return nil, err
		}
	}
	return crds, nil
}

// ErrStandInInTheWay: a Cluster CRD stands where the aggregated API server
// must serve cluster.karmada.io, and Marina cannot remove it.
var ErrStandInInTheWay = errors.New("a Cluster CRD is in the aggregated API server's way")

// removeStandIn deletes Marina's stand-in Cluster CRD, if it is there and
// holds no Cluster: deleting a CRD deletes its objects, and the engine
// would then take every member's workloads away. A Cluster CRD someone
// else made, or one that still holds Clusters, is an error wrapping
// ErrStandInInTheWay that says what to do.
func removeStandIn(ctx context.Context, c client.Client, fieldManager string, labels map[string]string) error {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	err := c.Get(ctx, client.ObjectKey{Name: StandInName}, crd)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read CRD %s: %w", StandInName, err)
	}
	if !crd.DeletionTimestamp.IsZero() {
		return nil
	}
	if !ownership.Ours(crd, labels, fieldManager) {
		return fmt.Errorf("%w: CRD %s was not made by Marina and would keep the aggregated API server from serving Clusters; delete it, or turn spec.components.aggregatedAPIServer off", ErrStandInInTheWay, StandInName)
	}
	clusters := &unstructured.UnstructuredList{}
	clusters.SetAPIVersion("cluster.karmada.io/v1alpha1")
	clusters.SetKind("ClusterList")
	if err := c.List(ctx, clusters); err != nil {
		return fmt.Errorf("list the Clusters of the stand-in CRD %s: %w", StandInName, err)
	}
	if n := len(clusters.Items); n > 0 {
		names := make([]string, 0, 3)
		for _, cl := range clusters.Items[:min(n, 3)] {
			names = append(names, cl.GetName())
		}
		return fmt.Errorf("%w: Marina's stand-in CRD %s still holds %d Clusters (%s); removing it would delete them and the engine would withdraw every member's workloads: unjoin them (delete the Clusters), then Marina removes the CRD and the aggregated API server serves Clusters",
			ErrStandInInTheWay, StandInName, n, strings.Join(names, ", "))
	}
	if err := c.Delete(ctx, crd); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete the stand-in CRD %s: %w", StandInName, err)
	}
	return nil
}

// Pending returns the names of the CRDs that are not established yet.
// The stand-in's removal counts too: the aggregated API server's APIService
// cannot work while the CRD is still there.
func Pending(ctx context.Context, c client.Reader, crds []*apiextensionsv1.CustomResourceDefinition, standIn bool) ([]string, error) {
	var pending []string
	for _, want := range crds {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: want.Name}, got); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read CRD %s: %w", want.Name, err)
		}
		if !Established(got) {
			pending = append(pending, want.Name)
		}
	}
	if !standIn {
		err := c.Get(ctx, client.ObjectKey{Name: StandInName}, &apiextensionsv1.CustomResourceDefinition{})
		if err == nil {
			pending = append(pending, StandInName+" (being removed)")
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read CRD %s: %w", StandInName, err)
		}
	}
	return pending, nil
}

// Established says whether the API server serves a CRD.
func Established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// StandIn returns Marina's stand-in Cluster CRD, for tests and tools.
func StandIn() (*apiextensionsv1.CustomResourceDefinition, error) {
	b, err := crdbundle.Parse(bytes.Clone(standInYAML), 1<<20)
	if err != nil {
		return nil, err
	}
	return b.CRDs[0], nil
}
