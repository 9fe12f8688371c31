package crdbundle

import (
	"context"
	"errors"
	"slices"
)

// ErrPending says a bundle is being downloaded: Start's caller learns
// through OnChange when the download is over.
var ErrPending = errors.New("download in progress")

// download is the state of one bundle's downloads, shared by every
// control plane that names the same URL and checksum.
type download struct {
	inFlight bool
	// done is set once an attempt has finished; bundle is the last good
	// one, err the last attempt's error (nil when it succeeded).
	done    bool
	bundle  *Bundle
	err     error
	waiters map[string]bool
}

// Start returns the bundle at src without waiting for the network, so that
// no reconciler worker is held by a slow or unreachable server. With
// nothing downloaded yet it starts the download and returns ErrPending;
// once the download is over, OnChange is called with every waiter that
// asked for src, and the next Start returns the bundle or the error
// (wrapping ErrDownload, ErrChecksum or ErrContent).
//
// A failed attempt is tried again by the next Start, which meanwhile
// returns that error, so that a condition does not flap. With refresh
// (policy Always) every Start downloads again, one download at a time,
// returning the last bundle meanwhile; OnChange is called only when the
// result changed, so a refresh never loops.
func (f *Fetcher) Start(src Source, refresh bool, waiter string) (*Bundle, error) {
	key := cacheKey{src.URL, src.SHA256}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !refresh {
		if b, ok := f.cache[key]; ok {
			return b, nil
		}
	}
	d, ok := f.downloads[key]
	if !ok {
		d = &download{waiters: map[string]bool{}}
		f.downloads[key] = d
	}
	d.waiters[waiter] = true
	if !d.inFlight && (!d.done || d.err != nil || refresh) {
		d.inFlight = true
		go f.run(key, src, d)
	}
	switch {
	case !d.done:
		return nil, ErrPending
	case d.err != nil:
		return nil, d.err
	}
	return d.bundle, nil
}

// run downloads src once and tells the waiters when the result changed.
func (f *Fetcher) run(key cacheKey, src Source, d *download) {
	// Fetch bounds each attempt by Timeout and the attempts by Attempts.
	b, err := f.Fetch(context.Background(), src, false)

	f.mu.Lock()
	changed := !d.done || (err == nil) != (d.err == nil) ||
		(err != nil && err.Error() != d.err.Error()) ||
		(err == nil && d.bundle != nil && b.SHA256 != d.bundle.SHA256)
	d.inFlight, d.done, d.err = false, true, err
	if err == nil {
		d.bundle = b
	}
	var waiters []string
	for w := range d.waiters {
		waiters = append(waiters, w)
	}
	notify := f.OnChange
	if f.downloads[key] != d {
		// Forgotten meanwhile: nobody asks for it any more.
		changed = false
	}
	f.mu.Unlock()

	if changed && notify != nil {
		slices.Sort(waiters)
		for _, w := range waiters {
			notify(w)
		}
	}
}

// Release drops a waiter, such as a deleted control plane, from every
// download.
func (f *Fetcher) Release(waiter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.downloads {
		delete(d.waiters, waiter)
	}
}
