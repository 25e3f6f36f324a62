package reqid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/reqid"
)

func TestHandlerAddsTheID(t *testing.T) {
	var buf bytes.Buffer
	log := reqid.Logger(reqid.Handler(slog.NewJSONHandler(&buf, nil))) // wrapped twice: one attribute
	ctx := reqid.With(context.Background(), "r-1")
	log.InfoContext(ctx, "with")
	log.With("k", "v").WarnContext(ctx, "derived")
	log.WithGroup("g").ErrorContext(ctx, "grouped", "x", 1)
	log.InfoContext(context.Background(), "without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, l := range lines[:3] {
		if strings.Count(l, `"request_id"`) != 1 {
			t.Fatalf("line %d: %s", i, l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		id := m["request_id"]
		if g, ok := m["g"].(map[string]any); ok && id == nil {
			id = g["request_id"]
		}
		if id != "r-1" {
			t.Fatalf("line %d: request_id %v: %s", i, id, l)
		}
	}
	if strings.Contains(lines[3], "request_id") {
		t.Fatalf("a line without a request got an id: %s", lines[3])
	}
}
