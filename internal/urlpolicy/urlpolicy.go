// Package urlpolicy decides which URLs a tenant's spec may make an operator
// reach. The operator fetches them from its own network position, inside
// the management cluster, so a URL a tenant chooses (a CRD bundle, a proxy,
// a Vault server) could otherwise probe or reach anything the operator can:
// the platform team lists the hosts that are fine, and the few where plain
// HTTP is tolerated for a server that holds secrets.
package urlpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Hosts are host patterns: a host name (files.example.com), a wildcard for
// its subdomains (*.example.com, which does not match example.com itself),
// an IP address or a CIDR prefix (10.0.0.0/8). It is a flag.Value that
// takes them comma-separated.
type Hosts []string

// String is the patterns, comma-separated.
func (h *Hosts) String() string { return strings.Join(*h, ",") }

// Set replaces the patterns with the comma-separated list v (empty: none),
// refusing one that is not a pattern so that a typo fails at start rather
// than allowing or refusing hosts nobody meant.
func (h *Hosts) Set(v string) error {
	var out Hosts
	for p := range strings.SplitSeq(v, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if err := validPattern(p); err != nil {
			return err
		}
		out = append(out, p)
	}
	*h = out
	return nil
}

func validPattern(p string) error {
	if _, err := netip.ParsePrefix(p); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(p); err == nil {
		return nil
	}
	name := strings.TrimPrefix(p, "*.")
	if name == "" || strings.ContainsAny(name, "*/:@ ") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("host pattern %q: want a host name, *.domain, an IP address or a CIDR prefix", p)
	}
	return nil
}

// Match says whether host (a URL's host name, without port) matches one of
// the patterns.
func (h Hosts) Match(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	addr, err := netip.ParseAddr(host)
	isIP := err == nil
	return slices.ContainsFunc(h, func(p string) bool {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			return isIP && pfx.Contains(addr.Unmap())
		}
		if a, err := netip.ParseAddr(p); err == nil {
			return isIP && a == addr.Unmap()
		}
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			return !isIP && strings.HasSuffix(host, suffix)
		}
		return !isIP && host == p
	})
}

// Errors of Policy.Check, for errors.Is.
var (
	// ErrNotAllowed: the URL's host is not among Policy.Allowed.
	ErrNotAllowed = errors.New("host not allowed")
	// ErrInsecure: a URL that needs TLS is plain http.
	ErrInsecure = errors.New("plain http")
)

// Policy is what the platform team allows.
type Policy struct {
	// Allowed are the hosts URLs may name; empty allows any.
	Allowed Hosts
	// PlainHTTP are the hosts a URL that carries secrets may reach over
	// plain http; every other such URL needs https.
	PlainHTTP Hosts
}

// Check says whether raw may be reached: its host allowed and, when
// secret is true (the connection carries credentials or keys), https unless
// its host is among PlainHTTP. The error names the host and what to change.
func (p Policy) Check(raw string, secret bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	host := u.Hostname()
	if len(p.Allowed) > 0 && !p.Allowed.Match(host) {
		return fmt.Errorf("%w: %s is not among the hosts the platform team allows (%s)", ErrNotAllowed, host, p.Allowed.String())
	}
	if secret && u.Scheme != "https" && !p.PlainHTTP.Match(host) {
		return fmt.Errorf("%w: %s would carry credentials and keys unencrypted; use https (plain http only for hosts the platform team lists, now: %s)",
			ErrInsecure, raw, orNone(p.PlainHTTP))
	}
	return nil
}

func orNone(h Hosts) string {
	if len(h) == 0 {
		return "none"
	}
	return h.String()
}
