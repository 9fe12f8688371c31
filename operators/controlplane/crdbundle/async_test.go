package crdbundle

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStart: a download never holds the caller, tells every waiter when it
// is over, is tried again after a failure without the result flapping, and
// a refresh that finds the same bundle wakes nobody.
func TestStart(t *testing.T) {
	bundle := []byte(crdYAML("things", "example.com"))
	var (
		broken  atomic.Bool
		served  atomic.Int32
		release = make(chan struct{})
		gate    atomic.Bool
	)
	gate.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate.Load() {
			<-release // a server that takes its time
		}
		served.Add(1)
		if broken.Load() {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(bundle)
	}))
	defer srv.Close()

	f := NewFetcher()
	f.Backoff, f.Timeout = 10*time.Millisecond, 5*time.Second
	var mu sync.Mutex
	woken := map[string]int{}
	wake := make(chan string, 16)
	f.OnChange = func(w string) {
		mu.Lock()
		woken[w]++
		mu.Unlock()
		wake <- w
	}
	waitWake := func(want string) {
		t.Helper()
		select {
		case got := <-wake:
			if got != want {
				t.Fatalf("woke %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was never woken", want)
		}
	}
	src := Source{URL: srv.URL + "/crds.yaml"}

	// The server has not answered: both callers are told to wait, at once.
	for _, w := range []string{"ns/a", "ns/b"} {
		if _, err := f.Start(src, false, w); !errors.Is(err, ErrPending) {
			t.Fatalf("Start for %s while the server holds the answer: %v, want ErrPending", w, err)
		}
	}
	gate.Store(false)
	close(release)
	waitWake("ns/a")
	waitWake("ns/b")
	if served.Load() != 1 {
		t.Errorf("%d downloads for two waiters, want 1", served.Load())
	}
	b, err := f.Start(src, false, "ns/a")
	if err != nil || len(b.CRDs) != 1 {
		t.Fatalf("Start after the download: %v, %v", b, err)
	}

	// A refresh (policy Always) returns the last bundle meanwhile and, as
	// the bundle is the same, wakes nobody.
	if b, err := f.Start(src, true, "ns/a"); err != nil || b == nil {
		t.Fatalf("refresh: %v, %v", b, err)
	}
	waitServed(t, &served, 2)

	// A failing URL: the error comes back, the next Start tries again and
	// returns the same error meanwhile; the same error wakes nobody.
	broken.Store(true)
	bad := Source{URL: srv.URL + "/other.yaml"}
	if _, err := f.Start(bad, false, "ns/c"); !errors.Is(err, ErrPending) {
		t.Fatalf("first Start of a failing URL: %v", err)
	}
	waitWake("ns/c")
	if _, err := f.Start(bad, false, "ns/c"); !errors.Is(err, ErrDownload) {
		t.Fatalf("Start after a failed download: %v, want ErrDownload", err)
	}
	// Fixed: a later Start tries again, and that attempt succeeds and
	// wakes the waiter.
	broken.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := f.Start(bad, false, "ns/c")
		if err == nil && len(b.CRDs) == 1 {
			break
		}
		if !errors.Is(err, ErrDownload) {
			t.Fatalf("Start while retrying: %v, want the last error until the retry is over", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the fixed URL was never downloaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitWake("ns/c")

	mu.Lock()
	defer mu.Unlock()
	if woken["ns/a"] != 1 || woken["ns/c"] != 2 {
		t.Errorf("woken %v, want ns/a once (the refresh found the same bundle) and ns/c twice (error, then fixed)", woken)
	}
}

func waitServed(t *testing.T, served *atomic.Int32, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for served.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests served, want %d", served.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
