package main_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	kmsapi "k8s.io/kms/apis/v2"
)

// BenchmarkPlugin measures what the API server waits for when it makes or
// opens a data key: one Encrypt or Decrypt call over the plugin's unix
// socket, through the plugin to Vault's transit engine (a dev server on
// loopback, so the network between them costs nothing here). It reports
// the median and the 99th percentile besides the mean. `make bench` runs it.
func BenchmarkPlugin(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := runPlugin(ctx, b)
	dek := make([]byte, 32) // a KMS v2 data key seed is 32 bytes
	if _, err := rand.Read(dek); err != nil {
		b.Fatal(err)
	}
	enc, err := p.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek, Uid: "bench"})
	if err != nil {
		b.Fatal(err)
	}

	b.Run("encrypt", func(b *testing.B) {
		measure(b, func() error {
			_, err := p.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek, Uid: "bench"})
			return err
		})
	})
	b.Run("decrypt", func(b *testing.B) {
		measure(b, func() error {
			_, err := p.kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "bench"})
			return err
		})
	})
}

func measure(b *testing.B, call func() error) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
