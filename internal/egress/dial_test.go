package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// target is a loopback HTTP server that counts the requests it gets.
type target struct {
	*httptest.Server
	hits atomic.Int32
	ap   netip.AddrPort
}

func newTarget(t *testing.T, h http.HandlerFunc) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(tg.Close)
	tg.ap = netip.MustParseAddrPort(tg.Listener.Addr().String())
	return tg
}

func TestHTTPClient(t *testing.T) {
	open := newTarget(t, nil)
	// A public-looking URL that redirects into loopback: the second hop is
	// dialled through the same check.
	inside := newTarget(t, nil)
	redirect := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inside.URL+"/secret", http.StatusFound)
	})
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		name    string
		policy  func(t *testing.T) *Policy
		url     string
		reached *target
		rule    string // "" = the request succeeds
	}{
		{"default refuses loopback", func(t *testing.T) *Policy { return nil }, open.URL, open, "a loopback address"},
		{"a name is checked on the address it resolves to", func(t *testing.T) *Policy { return nil },
			strings.Replace(open.URL, "127.0.0.1", "localhost", 1), open, "a loopback address"},
		{"allowed range", func(t *testing.T) *Policy { return mustNew(t, Config{Allow: loopback}) }, open.URL, open, ""},
		{"allowed, but protected", func(t *testing.T) *Policy {
			return mustNew(t, Config{Allow: loopback, Protect: []string{open.Listener.Addr().String()}})
		}, open.URL, open, "Ward's own"},
		{"redirect into a refused address", func(t *testing.T) *Policy { return (*Policy)(nil).With(redirect.ap) },
			redirect.URL, inside, "a loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.reached.hits.Load()
			res, err := tc.policy(t).HTTPClient(5 * time.Second).Get(tc.url)
			if tc.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if tc.reached.hits.Load() == before {
					t.Fatal("the target was not reached")
				}
				return
			}
			var de *DeniedError
			if err == nil {
				res.Body.Close()
			}
			if !errors.Is(err, ErrDenied) || !errors.As(err, &de) || !strings.Contains(de.Rule, tc.rule) {
				t.Fatalf("GET %s: %v, want a refusal as %q", tc.url, err, tc.rule)
			}
			if tc.reached.hits.Load() != before {
				t.Fatal("the refused target was reached")
			}
		})
	}
}

// TestHTTPClientIgnoresProxy: an environment proxy would dial on Ward's
// behalf, unchecked.
func TestHTTPClientIgnoresProxy(t *testing.T) {
	proxy := newTarget(t, nil)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	c := (*Policy)(nil).HTTPClient(time.Second)
	if c.Transport.(*http.Transport).Proxy != nil {
		t.Fatal("the transport uses a proxy")
	}
	if _, err := c.Get("http://10.0.0.1:9/"); !errors.Is(err, ErrDenied) || proxy.hits.Load() != 0 {
		t.Fatalf("GET via the environment proxy: %v (proxy hits %d)", err, proxy.hits.Load())
	}
}

func TestDialContext(t *testing.T) {
	p := mustNew(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := p.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, tc := range []struct{ network, addr, want string }{
		{"unix", "/run/postgresql/.s.PGSQL.5432", "only TCP"},
		{"udp", "8.8.8.8:53", "only TCP"},
		{"tcp", "10.0.0.1:80", "a private address"},
		{"tcp4", "169.254.169.254:80", "cloud metadata"},
		{"tcp6", "[::1]:80", "a loopback address"},
	} {
		c, err := p.DialContext(t.Context(), tc.network, tc.addr)
		if err == nil {
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dial %s %s: %v, want %q", tc.network, tc.addr, err, tc.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	loopback := mustNew(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	for _, tc := range []struct {
		url    string
		policy *Policy
		rule   string // "" = accepted; "!" = not a URL (not ErrDenied)
		host   string // the name in the DeniedError
	}{
		{"http://127.0.0.1:9/", nil, "a loopback address", ""},
		{"http://169.254.169.254/latest/meta-data/", nil, "the cloud metadata address", ""},
		{"http://10.0.0.1/", nil, "a private address", ""},
		{"http://[::1]/", nil, "a loopback address", ""},
		{"http://[::ffff:127.0.0.1]/", nil, "a loopback address", ""},
		{"http://[fe80::1%25eth0]:8080/", nil, "a link-local address", ""},
		{"http://localhost:8080/hook", nil, "a loopback address", "localhost"},
		{"https://203.0.113.5/hook", nil, "", ""},
		{"https://[2001:db8::1]:8443/hook", nil, "", ""},
		{"http://nowhere.invalid/hook", nil, "", ""}, // may resolve later; the dial is checked then
		{"http://127.0.0.1:9/", loopback, "", ""},
		{"http://localhost:9/", loopback, "", ""},
		{"ftp://203.0.113.5/", nil, "!", ""},
		{"http:///nohost", nil, "!", ""},
		{"http://203.0.113.5:99999/", nil, "!", ""},
	} {
		err := tc.policy.CheckURL(t.Context(), tc.url)
		var de *DeniedError
		switch {
		case tc.rule == "":
			if err != nil {
				t.Errorf("CheckURL(%s) = %v, want accepted", tc.url, err)
			}
		case tc.rule == "!":
			if err == nil || errors.Is(err, ErrDenied) {
				t.Errorf("CheckURL(%s) = %v, want a bad-URL error", tc.url, err)
			}
		case !errors.As(err, &de) || !strings.Contains(de.Rule, tc.rule) || de.Host != tc.host:
			t.Errorf("CheckURL(%s) = %v, want %q (host %q)", tc.url, err, tc.rule, tc.host)
		}
	}
	// A name's address is reported as IPv4 (the resolver may map it).
	var de *DeniedError
	if err := (*Policy)(nil).CheckURL(t.Context(), "http://localhost:8080/"); !errors.As(err, &de) ||
		!strings.HasPrefix(err.Error(), "egress: localhost (127.0.0.1:8080) is a loopback address") && !strings.HasPrefix(err.Error(), "egress: localhost ([::1]:8080)") {
		t.Errorf("CheckURL(localhost) = %v", err)
	}
	// A caller's deadline that has passed is no reason to refuse a name.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := (*Policy)(nil).CheckURL(ctx, "http://hooks.example.com/"); err != nil {
		t.Errorf("CheckURL with a cancelled context: %v", err)
	}
}
