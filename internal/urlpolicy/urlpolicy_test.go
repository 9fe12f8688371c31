package urlpolicy

import (
	"errors"
	"slices"
	"testing"
)

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "files.example.com, *.Mirror.example.com,10.210.0.2,10.0.0.0/8,fd00::/8", want: []string{"files.example.com", "*.mirror.example.com", "10.210.0.2", "10.0.0.0/8", "fd00::/8"}},
		{in: "https://files.example.com", wantErr: true},
		{in: "files.example.com:8080", wantErr: true},
		{in: "*", wantErr: true},
		{in: "a.*.example.com", wantErr: true},
		{in: ".example.com", wantErr: true},
	} {
		var h Hosts
		err := h.Set(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("Set(%q) error %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && !slices.Equal(h, tc.want) {
			t.Errorf("Set(%q) = %v, want %v", tc.in, h, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	p := Policy{
		Allowed:   Hosts{"files.example.com", "*.mirror.example.com", "10.210.0.0/16", "vault.example.com"},
		PlainHTTP: Hosts{"10.210.0.2"},
	}
	for _, tc := range []struct {
		url    string
		secret bool
		want   error // nil: allowed
	}{
		{"https://files.example.com/crds.tar.gz", false, nil},
		{"http://FILES.example.com./crds.tar.gz", false, nil},
		{"http://a.b.mirror.example.com:8080/crds.tar.gz", false, nil},
		{"http://mirror.example.com/crds.tar.gz", false, ErrNotAllowed},
		{"http://files.example.com.evil.test/crds.tar.gz", false, ErrNotAllowed},
		{"http://10.210.3.4/crds.tar.gz", false, nil},
		{"http://10.211.0.1/crds.tar.gz", false, ErrNotAllowed},
		{"http://169.254.169.254/latest/meta-data", false, ErrNotAllowed},
		{"http://[::ffff:10.210.0.2]/x", false, nil},
		{"https://vault.example.com:8200", true, nil},
		{"http://vault.example.com:8200", true, ErrInsecure},
		{"http://10.210.0.2:8200", true, nil},
		{"http://10.210.0.3:8200", true, ErrInsecure},
	} {
		err := p.Check(tc.url, tc.secret)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("Check(%s) = %v, want allowed", tc.url, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("Check(%s) = %v, want %v", tc.url, err, tc.want)
		}
	}
	// No list allows any host; secrets still need https.
	var open Policy
	if err := open.Check("http://anything.test/x", false); err != nil {
		t.Errorf("empty policy refused a download: %v", err)
	}
	if err := open.Check("http://vault.test:8200", true); !errors.Is(err, ErrInsecure) {
		t.Errorf("empty policy let plain http carry secrets: %v", err)
	}
	if err := open.Check("not a url", false); err == nil {
		t.Error("a relative URL was allowed")
	}
}
