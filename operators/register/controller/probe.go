package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// probeTimeout bounds one probe, so that an unreachable member costs a
// worker this long at most.
const probeTimeout = 10 * time.Second

// probe asks the member's API server for its version and its nodes, and
// sets Reachable, KubernetesVersion, NodeCount and LastProbeTime.
func (r *Reconciler) probe(ctx context.Context, p *pass) {
	mc := p.mc
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	version, nodes, err := r.probeMember(ctx, p)
	probeSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		r.setCondition(p, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonClusterUnreachable,
			fmt.Sprintf("the member's API server at %s did not answer: %v", p.member.config.Host, err))
		return
	}
	now := metav1.Now()
	mc.Status.LastProbeTime = &now
	mc.Status.KubernetesVersion = version
	mc.Status.NodeCount = nodes
	r.setCondition(p, marinav1alpha1.ConditionReachable, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
		fmt.Sprintf("the member's API server at %s answers", p.member.config.Host))
}

func (r *Reconciler) probeMember(ctx context.Context, p *pass) (string, int32, error) {
	v, err := p.member.discovery.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", 0, err
	}
	var info version.Info
	if err := json.Unmarshal(v, &info); err != nil {
		return "", 0, fmt.Errorf("read /version: %w", err)
	}
	// Node names only: the count is all the status shows.
	nodes := &metav1.PartialObjectMetadataList{}
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := p.member.c.List(ctx, nodes); err != nil {
		return "", 0, fmt.Errorf("list nodes: %w", err)
	}
	return info.GitVersion, int32(len(nodes.Items)), nil
}
