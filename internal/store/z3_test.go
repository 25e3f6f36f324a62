package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

func testZ3(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	if err := s.CreateBucket(ctx, store.Bucket{ProjectID: "p1", Name: "docs", ID: "b1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, store.Bucket{ProjectID: "p1", Name: "docs", ID: "b2", CreatedAt: now}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate bucket: %v", err)
	}
	// Same name in another project is another bucket.
	if err := s.CreateBucket(ctx, store.Bucket{ProjectID: "p2", Name: "docs", ID: "b3", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, store.Object{ProjectID: "p1", Bucket: "nope", Path: "a", BlobKey: "k0", UpdatedAt: now}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("object in a missing bucket: %v", err)
	}
	put := func(project, path, key string) string {
		t.Helper()
		old, err := s.PutObject(ctx, store.Object{ProjectID: project, Bucket: "docs", Path: path, BlobKey: key, Size: 3,
			ContentType: "text/plain", SHA256: "abc", UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		return old
	}
	for _, p := range []string{"a/1.txt", "a/b/2.txt", "ab.txt", "A/x.txt", "é/ü.txt"} {
		if old := put("p1", p, "k-"+p); old != "" {
			t.Fatalf("first put of %s replaced %q", p, old)
		}
	}
	put("p2", "a/secret.txt", "k-p2")
	if old := put("p1", "a/1.txt", "k-new"); old != "k-a/1.txt" {
		t.Fatalf("overwrite replaced %q, want the old blob key", old)
	}
	o, err := s.GetObject(ctx, "p1", "docs", "a/1.txt")
	if err != nil || o.BlobKey != "k-new" || o.Size != 3 || o.ContentType != "text/plain" || !o.UpdatedAt.Equal(now) {
		t.Fatalf("get = %+v, %v", o, err)
	}
	paths := func(prefix string) []string {
		objs, err := s.ListObjects(ctx, "p1", "docs", prefix, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.Path)
		}
		return out
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"A/x.txt", "a/1.txt", "a/b/2.txt", "ab.txt", "é/ü.txt"}},
		{"a/", []string{"a/1.txt", "a/b/2.txt"}}, // case-sensitive, not "A/", not "ab.txt"
		{"é/", []string{"é/ü.txt"}},
		{"zzz/", nil},
	} {
		if got := paths(tc.prefix); len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
			t.Errorf("prefix %q: %v, want %v", tc.prefix, got, tc.want)
		}
	}
	if err := s.DeleteBucket(ctx, "p1", "docs"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete non-empty bucket: %v", err)
	}
	keys, err := s.DeleteObjects(ctx, "p1", "docs", []string{"A/x.txt", "a/1.txt", "a/b/2.txt", "ab.txt", "é/ü.txt", "missing"})
	if err != nil || len(keys) != 5 {
		t.Fatalf("delete objects: %v, %v", keys, err)
	}
	if err := s.DeleteBucket(ctx, "p1", "docs"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetObject(ctx, "p2", "docs", "a/secret.txt"); err != nil {
		t.Fatalf("the other project's object is gone: %v", err)
	}
	a, err := s.ServerSecret(ctx, "k", func() ([]byte, error) { return []byte("first"), nil })
	b, err2 := s.ServerSecret(ctx, "k", func() ([]byte, error) { return []byte("second"), nil })
	if err != nil || err2 != nil || string(a) != "first" || string(b) != "first" {
		t.Fatalf("server secret: %q %q %v %v", a, b, err, err2)
	}
}

func testZambdas(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	z := store.Zambda{ProjectID: "p1", ID: "z1", Name: "hello", Runtime: "nodejs20.x", TriggerMethod: "http_auth", MemorySize: 1024,
		TimeoutSeconds: 27, ExecutionRoleID: "r1", Status: "Draft", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateZambda(ctx, z); err != nil {
		t.Fatal(err)
	}
	z2 := z
	z2.ID = "z2"
	if err := s.CreateZambda(ctx, z2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	z2.Name, z2.ExecutionRoleID, z2.TriggerMethod, z2.Schedule = "tick", "", "cron", []byte(`{"expression":"rate(1 minute)"}`)
	if err := s.CreateZambda(ctx, z2); err != nil {
		t.Fatal(err)
	}
	byName, err := s.GetZambda(ctx, "p1", "hello")
	if err != nil || byName.ID != "z1" || byName.ExecutionRoleID != "r1" {
		t.Fatalf("by name: %+v %v", byName, err)
	}
	z.Status, z.FileChecksum, z.FileSize, z.FileModified, z.ExecutionRoleID = "Active", "abc", 10, now, ""
	if err := s.UpdateZambda(ctx, z); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetZambda(ctx, "p1", "z1")
	if err != nil || got.Status != "Active" || got.FileChecksum != "abc" || !got.FileModified.Equal(now) || got.ExecutionRoleID != "" {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if _, err := s.GetZambda(ctx, "p2", "z1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other project: %v", err)
	}
	crons, _ := s.ListZambdas(ctx, "", "cron")
	if len(crons) != 1 || string(crons[0].Schedule) != `{"expression":"rate(1 minute)"}` {
		t.Fatalf("cron list: %+v", crons)
	}

	if err := s.PutSecret(ctx, "p1", "API_KEY", []byte{1, 2}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSecret(ctx, "p1", "API_KEY", []byte{3}, now); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetSecret(ctx, "p1", "API_KEY"); err != nil || len(v) != 1 || v[0] != 3 {
		t.Fatalf("secret upsert: %v %v", v, err)
	}
	if all, _ := s.Secrets(ctx, "p2"); len(all) != 0 {
		t.Fatalf("other project's secrets: %v", all)
	}

	lines := []store.LogLine{{Stream: "s1", Seq: 1, At: now, IngestedAt: now, Message: "one"},
		{Stream: "s1", Seq: 2, At: now.Add(time.Second), IngestedAt: now, Message: "two"},
		{Stream: "s2", Seq: 3, At: now.Add(2 * time.Second), IngestedAt: now, Message: "three"}}
	if err := s.AppendLogs(ctx, "p1", "z1", lines); err != nil {
		t.Fatal(err)
	}
	streams, err := s.LogStreams(ctx, "p1", "z1", "", 10)
	if err != nil || len(streams) != 2 || streams[0].Name != "s2" || !streams[1].Last.Equal(now.Add(time.Second)) {
		t.Fatalf("streams: %+v %v", streams, err)
	}
	page, _ := s.Logs(ctx, "p1", "z1", store.LogQuery{Stream: "s1", Limit: 1})
	next, _ := s.Logs(ctx, "p1", "z1", store.LogQuery{Stream: "s1", Limit: 1, AfterSeq: page[0].Seq})
	if len(page) != 1 || page[0].Message != "one" || len(next) != 1 || next[0].Message != "two" {
		t.Fatalf("log paging: %+v %+v", page, next)
	}

	_, ok1, err1 := s.ClaimTick(ctx, "p1", "z2", now, "a", now, time.Minute)
	_, ok2, err2 := s.ClaimTick(ctx, "p1", "z2", now, "b", now, time.Minute)
	if err1 != nil || err2 != nil || !ok1 || ok2 {
		t.Fatalf("claims: %v %v %v %v", ok1, ok2, err1, err2)
	}
	if err := s.DeleteZambda(ctx, "p1", "z1"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Logs(ctx, "p1", "z1", store.LogQuery{Limit: 10}); len(l) != 0 {
		t.Fatalf("logs survive their function: %v", l)
	}
}
