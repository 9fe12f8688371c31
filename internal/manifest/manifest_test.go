package manifest

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []string // kind/name
		wantErr string
	}{
		{name: "documents, empty ones skipped", data: "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: a}\n", want: []string{"Namespace/a", "ConfigMap/b"}},
		{name: "JSON", data: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"j"}}`, want: []string{"Namespace/j"}},
		{name: "nothing", data: "", want: nil},
		{name: "no name", data: "apiVersion: v1\nkind: Namespace\n", wantErr: "document 1 (kind \"Namespace\", name \"\") lacks [metadata.name]"},
		{name: "no kind in the second", data: "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n", wantErr: "document 2 (kind \"\", name \"b\") lacks [kind]"},
		{name: "not YAML", data: "apiVersion: v1\nkind: [\n", wantErr: "document 1:"},
		{name: "a list, not an object", data: "- a\n- b\n", wantErr: "document 1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Parse([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("Parse = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	objs, err := Parse([]byte(`
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: p1, namespace: t}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: t}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: t}
---
apiVersion: v1
kind: Namespace
metadata: {name: t}
---
apiVersion: policy.karmada.io/v1alpha1
kind: FederatedResourceQuota
metadata: {name: q, namespace: t}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, namespace: t}
`))
	if err != nil {
		t.Fatal(err)
	}
	Order(objs)
	var got []string
	for _, o := range objs {
		got = append(got, o.GetName())
	}
	// Policies keep the manifest's order among themselves.
	if want := "widgets.example.com,t,r,sa,rb,p1,q"; strings.Join(got, ",") != want {
		t.Errorf("Order = %v, want %s", got, want)
	}
}
