package runtime

import (
	"cmp"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

// testProxy stands in for the sandbox's egress proxy: CONNECT and
// absolute-form requests for the names in routes reach the test servers;
// any other destination gets 403 "ward egress: ..." as from Ward's proxy.
type testProxy struct {
	routes map[string]string // host:port asked for -> the real address

	mu   sync.Mutex
	seen []string // "CONNECT host:port" or "GET http://..."
}

func (p *testProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.saw("CONNECT " + r.Host)
		addr, ok := p.routes[r.Host]
		if !ok {
			http.Error(w, "ward egress: "+r.Host+" is not allowed for zambdas", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", addr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			c.Close()
			up.Close()
			return
		}
		// The client sends nothing behind its CONNECT before the answer, so
		// the hijacked reader holds nothing buffered.
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	case r.URL.IsAbs():
		p.saw(r.Method + " " + r.URL.String())
		addr, ok := p.routes[r.URL.Hostname()+":"+cmp.Or(r.URL.Port(), "80")]
		if !ok {
			http.Error(w, "ward egress: "+r.URL.Host+" is not allowed for zambdas", http.StatusForbidden)
			return
		}
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Host = addr
			pr.Out.Host = r.Host
		}}
		rp.ServeHTTP(w, r)
	default:
		http.Error(w, "send CONNECT or an absolute URL", http.StatusBadRequest)
	}
}

func (p *testProxy) saw(s string) {
	p.mu.Lock()
	p.seen = append(p.seen, s)
	p.mu.Unlock()
}

// take returns what the proxy saw since the last take.
func (p *testProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.seen
	p.seen = nil
	return s
}

// proxied is a Node function that makes one request as the event says,
// with fetch, http.get, https.get, or as axios does with HTTP_PROXY set
// (an absolute-form request sent to the proxy itself). Its dns.lookup
// stands in for the sandbox's /etc/hosts: the proxy and the NO_PROXY
// names are on the loopback, other example.com names resolve nowhere.
const proxied = `
const http = require('node:http'), https = require('node:https'), dns = require('node:dns');
const hosts = new Set(['egress.example.com', 'direct.example.com', 'api.direct.example.com']);
const lookup = dns.lookup;
dns.lookup = (name, opts, cb) => {
  if (typeof opts === 'function') [cb, opts] = [opts, {}];
  if (hosts.has(name)) return process.nextTick(() => opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
  if (name.endsWith('example.com')) return process.nextTick(() => cb(Object.assign(new Error('getaddrinfo ENOTFOUND ' + name), { code: 'ENOTFOUND' })));
  return lookup(name, opts, cb);
};
const get = (mod, url) => new Promise((resolve, reject) => {
  mod.get(url, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (c) => body += c).on('end', () => resolve({ status: res.statusCode, body }));
  }).on('error', reject);
});
exports.index = async (e) => {
  try {
    switch (e.client) {
      case 'fetch': { const r = await fetch(e.url); return { status: r.status, body: await r.text() }; }
      case 'http': return await get(http, e.url);
      case 'https': return await get(https, e.url);
      case 'absolute': {
        const u = new URL(process.env.HTTP_PROXY);
        return await get(http, { host: u.hostname, port: u.port, path: e.url, headers: { host: new URL(e.url).host } });
      }
    }
  } catch (err) {
    return { error: err.message + (err.cause ? ' / cause: ' + err.cause.message : '') };
  }
};`

func TestNodeEgressProxy(t *testing.T) {
	needNode(t)
	echo := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			extra := ""
			if r.TLS != nil {
				extra = " sni=" + r.TLS.ServerName
			}
			fmt.Fprintf(w, "%s %s %s%s", kind, r.Host, r.URL.Path, extra)
		}
	}
	plain := httptest.NewServer(echo("plain"))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(echo("tls")) // its certificate is for example.com and *.example.com
	t.Cleanup(secure.Close)
	proxy := &testProxy{routes: map[string]string{
		"api.example.com:80":     plain.Listener.Addr().String(),
		"secure.example.com:443": secure.Listener.Addr().String(),
	}}
	proxySrv := httptest.NewServer(proxy)
	t.Cleanup(proxySrv.Close)
	_, proxyPort, _ := net.SplitHostPort(proxySrv.Listener.Addr().String())
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The proxy is named, not 127.0.0.1, so that "the proxy itself goes
	// direct" is tested apart from "loopback goes direct".
	proxyURL := "http://egress.example.com:" + proxyPort
	fn := nodeFn(t, "egress", map[string]string{"index.js": proxied})
	fn.Env = map[string]string{
		"HTTP_PROXY": proxyURL, "HTTPS_PROXY": proxyURL, "http_proxy": proxyURL, "https_proxy": proxyURL,
		"NO_PROXY": ".direct.example.com", "no_proxy": ".direct.example.com",
		"NODE_EXTRA_CA_CERTS": ca,
	}
	// Without a sandbox: the test points the function at its own proxy
	// (a sandbox sets the proxy variables to Ward's; the e2e tests cover
	// that path).
	p := newPool(t, Config{Sandbox: sandbox.NewDirect(nil, "test of the bootstrap's proxy support")})

	// The patches load nothing for a function that makes no request:
	// undici costs ~15 ms at a cold start, https ~2 ms.
	lazy := nodeFn(t, "egress-lazy", map[string]string{"index.js": `
exports.index = async () => process.moduleLoadList.filter((m) => /undici|https|tls/.test(m));`})
	lazy.Env = fn.Env
	if res := mustInvoke(t, p, lazy, `{}`); string(res.Payload) != `[]` {
		t.Errorf("loaded before any request: %s", res.Payload)
	}

	for _, tc := range []struct {
		name, client, url string
		seen              string // what the proxy should see; "" for nothing
		body, err         string // the expected body, or text in the error
	}{
		{"fetch http", "fetch", "http://api.example.com/a", "CONNECT api.example.com:80", "plain api.example.com /a", ""},
		{"fetch https", "fetch", "https://secure.example.com/b", "CONNECT secure.example.com:443", "tls secure.example.com /b sni=secure.example.com", ""},
		{"http.get", "http", "http://api.example.com/c", "CONNECT api.example.com:80", "plain api.example.com /c", ""},
		{"https.get", "https", "https://secure.example.com/d", "CONNECT secure.example.com:443", "tls secure.example.com /d sni=secure.example.com", ""},
		{"fetch refused", "fetch", "https://blocked.example.com/", "CONNECT blocked.example.com:443", "",
			"fetch failed / cause: the egress proxy refused blocked.example.com:443: 403 Forbidden: ward egress: blocked.example.com:443 is not allowed"},
		{"http.get refused", "http", "http://blocked.example.com:8080/", "CONNECT blocked.example.com:8080", "",
			"403 Forbidden: ward egress: blocked.example.com:8080 is not allowed"},
		{"https.get refused", "https", "https://blocked.example.com/", "CONNECT blocked.example.com:443", "",
			"403 Forbidden: ward egress: blocked.example.com:443 is not allowed"},
		{"fetch NO_PROXY domain", "fetch", "http://direct.example.com:" + plainPort + "/e", "", "plain direct.example.com:" + plainPort + " /e", ""},
		{"http.get NO_PROXY subdomain", "http", "http://api.direct.example.com:" + plainPort + "/f", "", "plain api.direct.example.com:" + plainPort + " /f", ""},
		{"fetch loopback", "fetch", "http://127.0.0.1:" + plainPort + "/g", "", "plain 127.0.0.1:" + plainPort + " /g", ""},
		{"http.get localhost", "http", "http://localhost:" + plainPort + "/h", "", "plain localhost:" + plainPort + " /h", ""},
		{"absolute form to the proxy", "absolute", "http://api.example.com/i", "GET http://api.example.com/i", "plain api.example.com /i", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, _ := json.Marshal(map[string]string{"client": tc.client, "url": tc.url})
			res := mustInvoke(t, p, fn, string(ev))
			var out struct {
				Status int
				Body   string
				Error  string
			}
			if err := json.Unmarshal(res.Payload, &out); err != nil {
				t.Fatalf("%s: %v", res.Payload, err)
			}
			if tc.err != "" {
				if !strings.Contains(out.Error, tc.err) {
					t.Errorf("error = %q, want one with %q", out.Error, tc.err)
				}
			} else if out.Error != "" || out.Status != 200 || out.Body != tc.body {
				t.Errorf("got %d %q (error %q), want 200 %q", out.Status, out.Body, out.Error, tc.body)
			}
			var want []string
			if tc.seen != "" {
				want = []string{tc.seen}
			}
			if seen := proxy.take(); !slices.Equal(seen, want) {
				t.Errorf("the proxy saw %q, want %q", seen, want)
			}
		})
	}
}

// Without the proxy variables the bootstrap patches nothing.
func TestNodeNoProxyNoPatch(t *testing.T) {
	needNode(t)
	// Without a sandbox: the test points the function at its own proxy
	// (a sandbox sets the proxy variables to Ward's; the e2e tests cover
	// that path).
	p := newPool(t, Config{Sandbox: sandbox.NewDirect(nil, "test of the bootstrap's proxy support")})
	fn := nodeFn(t, "noproxy", map[string]string{"index.js": `
const http = require('node:http');
exports.index = async () => ({
  agent: 'value' in Object.getOwnPropertyDescriptor(http.Agent.prototype, 'createConnection'),
  fetch: !String(globalThis.fetch).includes('ready()'),
});`})
	if res := mustInvoke(t, p, fn, `{}`); string(res.Payload) != `{"agent":true,"fetch":true}` {
		t.Fatalf("patched without proxy variables: %s", res.Payload)
	}
}
