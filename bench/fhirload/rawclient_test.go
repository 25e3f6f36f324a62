package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRawConn drives the lean client against net/http's server: bodies
// with a length, chunked bodies, error statuses, a server that closes the
// connection, and a request body, all on one client that must reuse its
// connection where the server lets it.
func TestRawConn(t *testing.T) {
	big := strings.Repeat("x", 150_000) // over the reader's 64 KiB buffer
	var gotBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Host == "" {
			http.Error(w, "no auth", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/fhir/len":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case "/fhir/chunked":
			for i := 0; i < 3; i++ {
				_, _ = io.WriteString(w, big)
				w.(http.Flusher).Flush()
			}
		case "/fhir/missing":
			http.Error(w, "no such thing", http.StatusNotFound)
		case "/fhir/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/fhir/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/fhir/post":
			b, _ := io.ReadAll(r.Body)
			gotBody.Store(r.Method + " " + r.Header.Get("Content-Type") + " " + string(b))
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	var dials int
	c, err := newRawConn(srv.URL+"/fhir", "Bearer tok", 5*time.Second, func(ctx context.Context, addr string) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx := context.Background()
	tests := []struct {
		call      call
		wantN     int64
		wantErr   string // substring; "" for success
		wantDials int    // total after this call
	}{
		{call{method: "GET", path: "/len"}, 5, "", 1},
		{call{method: "GET", path: "/chunked"}, int64(3 * len(big)), "", 1},
		{call{method: "GET", path: "/missing"}, 0, "status 404: no such thing", 1},
		{call{method: "GET", path: "/empty"}, 0, "", 1},
		{call{method: "POST", path: "/post", body: []byte(`{"a":1}`)}, 0, "", 1},
		{call{method: "GET", path: "/close"}, 3, "", 1},
		{call{method: "GET", path: "/len"}, 5, "", 2}, // the server closed: dial again
		{call{method: "GET", path: "/len"}, 5, "", 2},
	}
	for i, tt := range tests {
		n, msg := c.do(ctx, tt.call)
		if tt.wantErr == "" && msg != "" || tt.wantErr != "" && !strings.Contains(msg, tt.wantErr) {
			t.Fatalf("%d %s: message %q, want %q", i, tt.call.path, msg, tt.wantErr)
		}
		if tt.wantErr == "" && n != tt.wantN {
			t.Fatalf("%d %s: %d body bytes, want %d", i, tt.call.path, n, tt.wantN)
		}
		if dials != tt.wantDials {
			t.Fatalf("%d %s: %d dials, want %d", i, tt.call.path, dials, tt.wantDials)
		}
	}
	if got := gotBody.Load(); got != `POST application/fhir+json {"a":1}` {
		t.Fatalf("server saw %q", got)
	}
}

// TestRawConnMalformed: an answer that is not HTTP is an error, and the
// next request dials again.
func TestRawConnMalformed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 4096)
				_, _ = conn.Read(buf)
				_, _ = io.WriteString(conn, "SSH-2.0-nope\r\n\r\n")
			}()
		}
	}()
	dials := 0
	c, err := newRawConn("http://"+ln.Addr().String()+"/fhir", "Bearer tok", 5*time.Second, func(ctx context.Context, addr string) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if _, msg := c.do(context.Background(), call{method: "GET", path: "/x"}); !strings.Contains(msg, "malformed") {
			t.Fatalf("message %q, want a malformed-response error", msg)
		}
		if dials != i {
			t.Fatalf("%d dials after %d requests", dials, i)
		}
	}
}
