package sandbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// DialFunc opens an outbound connection for a worker; it is where the
// egress policy is applied (the address actually dialled is checked).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Network is what a sandboxed worker can reach besides its Runtime API.
// Its network namespace has only a loopback interface; on it Ward serves
// an HTTP proxy (HTTP_PROXY, HTTPS_PROXY: CONNECT and absolute-form
// requests, each dialled through Dial) and plain TCP forwards (Ward's own
// public URL, so an execution role's token can be used without a proxy).
type Network struct {
	Dial    DialFunc  // nil: the proxy refuses everything
	Forward []Forward // loopback ports inside the sandbox
	// Hosts resolve to 127.0.0.1 inside the sandbox (the host names of
	// the forwards, e.g. Ward's public host name).
	Hosts []string
}

// Forward makes a port on the sandbox's loopback reach Addr, dialled
// through Network.Dial.
type Forward struct {
	Port int
	Addr string
}

// netServer serves one worker's proxy and forwards until closed.
type netServer struct {
	log  *slog.Logger
	dial DialFunc
	who  string // the worker, for logs

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // tunnels and forwards, closed with the server
	lns    []net.Listener
	srv    *http.Server
	closed bool
}

func newNetServer(log *slog.Logger, dial DialFunc, who string, transport http.RoundTripper) *netServer {
	s := &netServer{log: log, dial: dial, who: who, conns: map[net.Conn]struct{}{}}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.Header.Del("Proxy-Authorization") },
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.refuse(w, r.Host, err)
		},
	}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodConnect:
				s.tunnel(w, r)
			// Absolute-form https:// too: some clients (axios) send it
			// instead of CONNECT; Ward then speaks TLS to the target.
			case r.URL.IsAbs() && (r.URL.Scheme == "http" || r.URL.Scheme == "https"):
				if dial == nil {
					s.refuse(w, r.URL.Host, errNoEgress)
					return
				}
				rp.ServeHTTP(w, r)
			default:
				http.Error(w, "this is Ward's egress proxy for zambdas: send CONNECT host:port, or an absolute http(s):// URL", http.StatusBadRequest)
			}
		})}
	return s
}

var errNoEgress = errors.New("outbound connections are off for zambdas on this server")

func (s *netServer) refuse(w http.ResponseWriter, target string, err error) {
	s.log.Info("zambda egress refused", "worker", s.who, "target", target, "err", err)
	http.Error(w, "ward egress: "+err.Error(), http.StatusForbidden)
}

// serveProxy serves the HTTP proxy on ln.
func (s *netServer) serveProxy(ln net.Listener) {
	s.track(ln)
	go func() { _ = s.srv.Serve(ln) }()
}

// serveForward accepts on ln and splices each connection to addr.
func (s *netServer) serveForward(ln net.Listener, addr string) {
	s.track(ln)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if s.dial == nil {
					c.Close()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				up, err := s.dial(ctx, "tcp", addr)
				cancel()
				if err != nil {
					s.log.Info("zambda forward refused", "worker", s.who, "target", addr, "err", err)
					c.Close()
					return
				}
				s.splice(c, up)
			}()
		}
	}()
}

func (s *netServer) tunnel(w http.ResponseWriter, r *http.Request) {
	if s.dial == nil {
		s.refuse(w, r.Host, errNoEgress)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	up, err := s.dial(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		s.refuse(w, r.Host, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	c, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		c.Close()
		up.Close()
		return
	}
	// Bytes the client sent right behind its CONNECT are in buf.
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			c.Close()
			up.Close()
			return
		}
	}
	s.splice(c, up)
}

// splice copies both ways until either side ends.
func (s *netServer) splice(a, b net.Conn) {
	if !s.track(a) || !s.track(b) {
		a.Close()
		b.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	go func() {
		<-done
		<-done
		a.Close()
		b.Close()
		s.untrack(a)
		s.untrack(b)
	}()
}

// track registers a connection or listener to close with the server; it
// reports false once the server is closed.
func (s *netServer) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	switch v := c.(type) {
	case net.Listener:
		s.lns = append(s.lns, v)
	case net.Conn:
		s.conns[v] = struct{}{}
	}
	return true
}

func (s *netServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops serving and ends every tunnel and forward.
func (s *netServer) Close() error {
	s.mu.Lock()
	s.closed = true
	lns, conns := s.lns, s.conns
	s.conns = map[net.Conn]struct{}{}
	s.mu.Unlock()
	_ = s.srv.Close()
	for _, l := range lns {
		_ = l.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
	return nil
}
