package crdbundle

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// Conversion says where the engine's conversion webhook is, to fill the
// bundle's conversion patches with: the same three placeholders the
// engine's installers fill.
type Conversion struct {
	// Service is the webhook's Service name ({{name}}).
	Service string
	// Namespace is the Service's namespace ({{namespace}}).
	Namespace string
	// CABundle is the PEM the API server trusts the webhook's serving
	// certificate with ({{caBundle}}, base64-encoded there).
	CABundle []byte
}

var placeholder = regexp.MustCompile(`\{\{\s*[^}]*\}\}`)

// Resolve returns the bundle's CRDs ready to apply, sorted by name. With a
// conversion webhook, each patch is filled and applied to its CRD; with
// nil, patches are left out, since they only point the API server at a
// webhook that does not run. A patch with a placeholder other than the
// three, or that does not apply, is an error wrapping ErrContent that names
// the file. The bundle is not changed.
func (b *Bundle) Resolve(conv *Conversion) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	out := make([]*apiextensionsv1.CustomResourceDefinition, len(b.CRDs))
	byName := make(map[string]int, len(b.CRDs))
	for i, crd := range b.CRDs {
		out[i] = crd.DeepCopy()
		byName[crd.Name] = i
	}
	if conv == nil {
		return out, nil
	}
	r := strings.NewReplacer(
		"{{name}}", conv.Service,
		"{{namespace}}", conv.Namespace,
		"{{caBundle}}", base64.StdEncoding.EncodeToString(conv.CABundle),
	)
	for _, p := range b.Patches {
		filled := r.Replace(string(p.Raw))
		if left := placeholder.FindString(filled); left != "" {
			return nil, fmt.Errorf("%w: %s: placeholder %s cannot be filled (Marina fills {{name}}, {{namespace}} and {{caBundle}})", ErrContent, p.File, left)
		}
		i, ok := byName[p.CRD]
		if !ok {
			return nil, fmt.Errorf("%w: %s patches CustomResourceDefinition %s, which the bundle does not have", ErrContent, p.File, p.CRD)
		}
		base, err := json.Marshal(out[i])
		if err != nil {
			return nil, err
		}
		patched, err := strategicpatch.StrategicMergePatch(base, []byte(filled), apiextensionsv1.CustomResourceDefinition{})
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrContent, p.File, err)
		}
		obj, _, err := codecs.UniversalDeserializer().Decode(patched, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: the patched CustomResourceDefinition %s: %v", ErrContent, p.File, p.CRD, err)
		}
		out[i] = obj.(*apiextensionsv1.CustomResourceDefinition)
	}
	return out, nil
}
