package localenv

import (
	"fmt"
	"io"
	"time"
)

// progress prints each step as it starts and how long it took, so that a
// person watching `make up` sees where the time goes and where it stopped.
type progress struct {
	out   io.Writer
	start time.Time
}

func newProgress(out io.Writer) *progress {
	if out == nil {
		out = io.Discard
	}
	return &progress{out: out, start: time.Now()}
}

func (p *progress) step(what string, fn func() error) error {
	fmt.Fprintf(p.out, "  … %s\n", what)
	t := time.Now()
	err := fn()
	d := time.Since(t).Round(100 * time.Millisecond)
	if err != nil {
		fmt.Fprintf(p.out, "  ✗ %s (%s)\n    %v\n", what, d, err)
		return err
	}
	fmt.Fprintf(p.out, "  ✓ %s (%s)\n", what, d)
	return nil
}

func (p *progress) done(what string) {
	fmt.Fprintf(p.out, "%s in %s\n", what, time.Since(p.start).Round(100*time.Millisecond))
}
