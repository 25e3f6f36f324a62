package auth

import (
	"context"
	"testing"
	"time"
)

func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.issuer.Issue(ctx, m2m(), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is the first sight of a token: parse, RSA verify,
// claim checks, revocation.
func BenchmarkVerifyUncached(b *testing.B) {
	f := newFixture(b)
	f.verifier.cache = nil
	tok := f.issue(b, m2m(), time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is every later request with the same token: hash,
// map lookup, expiry, ring and revocation checks.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b)
	tok := f.issue(b, m2m(), time.Hour)
	ctx := context.Background()
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.verifier.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := f.verifier.sigChecks.Load(); n != 1 {
		b.Fatalf("%d RSA verifications, want 1", n)
	}
}

// BenchmarkVerifyGarbage is the cost of rejecting junk, which anyone can send.
func BenchmarkVerifyGarbage(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"); err == nil {
			b.Fatal("verified garbage")
		}
	}
}
