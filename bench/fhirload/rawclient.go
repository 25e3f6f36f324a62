package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// rawConn is a lean HTTP/1.1 keep-alive client for one load-generating
// client, in the manner of wrk: the request is written with one write
// from a reused buffer and the answer's body is discarded as it is read,
// with no per-request goroutine hand-offs or header maps. On these 2-core
// machines the load tool shares the cores with the target, and net/http's
// client cost ~40-60 µs of CPU per request, as much as the bare handler
// it measures; this one costs a fraction of that (see RESULTS.md).
type rawConn struct {
	addr, host, basePath string
	auth                 string
	dial                 func(ctx context.Context) (net.Conn, error)
	timeout              time.Duration

	conn net.Conn
	br   *bufio.Reader
	wbuf []byte
}

func newRawConn(base, auth string, timeout time.Duration, dial func(ctx context.Context, addr string) (net.Conn, error)) (*rawConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("base url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("base url %q: only http", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += ":80"
	}
	c := &rawConn{addr: addr, host: u.Host, basePath: u.Path, auth: auth, timeout: timeout}
	c.dial = func(ctx context.Context) (net.Conn, error) { return dial(ctx, addr) }
	return c, nil
}

// do sends one request and reads the whole answer, returning the body size
// and "" for a 2xx, else a message (status and the start of the body, or
// the transport error). Any failure closes the connection; the next
// request dials again.
func (c *rawConn) do(ctx context.Context, cl call) (int64, string) {
	if c.conn == nil {
		conn, err := c.dial(ctx)
		if err != nil {
			return 0, err.Error()
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 64<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	if c.timeout > 0 {
		_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	}
	b := c.wbuf[:0]
	b = append(b, cl.method...)
	b = append(b, ' ')
	b = append(b, c.basePath...)
	b = append(b, cl.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, c.auth...)
	b = append(b, "\r\nAccept: application/fhir+json\r\n"...)
	if cl.body != nil {
		b = append(b, "Content-Type: application/fhir+json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(cl.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, cl.body...)
	c.wbuf = b
	if _, err := c.conn.Write(b); err != nil {
		c.close()
		return 0, "writing request: " + err.Error()
	}
	status, n, head, keep, err := c.readResponse()
	if err != nil {
		c.close()
		return n, "reading response: " + err.Error()
	}
	if !keep {
		c.close()
	}
	if status < 200 || status > 299 {
		return 0, "status " + strconv.Itoa(status) + ": " + string(head)
	}
	return n, ""
}

func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one answer: its status, body size, the body's first
// 300 bytes when the status is not 2xx (for the error message), and
// whether the connection stays open.
func (c *rawConn) readResponse() (status int, n int64, head []byte, keep bool, err error) {
	line, err := c.line()
	if err != nil {
		return 0, 0, nil, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, nil, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, nil, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise
	length, chunked := int64(-1), false
	for {
		line, err = c.line()
		if err != nil {
			return status, 0, nil, false, err
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return status, 0, nil, false, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		name, value := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return status, 0, nil, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	var sink bodySink
	if status < 200 || status > 299 {
		sink.keep = 300
	}
	switch {
	case status == 204 || status == 304 || (status >= 100 && status < 200):
	case chunked:
		for {
			line, err = c.line()
			if err != nil {
				return status, sink.n, sink.head, false, err
			}
			if i := bytes.IndexByte(line, ';'); i >= 0 {
				line = line[:i]
			}
			size, perr := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if perr != nil || size < 0 {
				return status, sink.n, sink.head, false, fmt.Errorf("%w: chunk size %q", errMalformed, line)
			}
			if size == 0 {
				break
			}
			if err := sink.take(c.br, size); err != nil {
				return status, sink.n, sink.head, false, err
			}
			if line, err = c.line(); err != nil || len(line) != 0 {
				return status, sink.n, sink.head, false, fmt.Errorf("%w: no CRLF after chunk", errMalformed)
			}
		}
		for { // trailers
			line, err = c.line()
			if err != nil {
				return status, sink.n, sink.head, false, err
			}
			if len(line) == 0 {
				break
			}
		}
	case length >= 0:
		if err := sink.take(c.br, length); err != nil {
			return status, sink.n, sink.head, false, err
		}
	default: // the body runs to the end of the connection
		if err := sink.take(c.br, -1); err != nil {
			return status, sink.n, sink.head, false, err
		}
		keep = false
	}
	return status, sink.n, sink.head, keep, nil
}

// line reads one CRLF-terminated line without its ending (valid until the
// next read).
func (c *rawConn) line() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line over %d bytes", errMalformed, c.br.Size())
		}
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
}

// bodySink counts a body's bytes and keeps the first keep of them.
type bodySink struct {
	n    int64
	keep int
	head []byte
}

// take consumes size bytes of r (size < 0: until EOF) from its buffer,
// filling it as needed.
func (s *bodySink) take(r *bufio.Reader, size int64) error {
	for size != 0 {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				switch {
				case errors.Is(err, io.EOF) && size < 0:
					return nil
				case errors.Is(err, io.EOF):
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := r.Buffered()
		if size > 0 && int64(k) > size {
			k = int(size)
		}
		if keep := s.keep - len(s.head); keep > 0 {
			buf, _ := r.Peek(min(k, keep))
			s.head = append(s.head, buf...)
		}
		_, _ = r.Discard(k)
		s.n += int64(k)
		if size > 0 {
			size -= int64(k)
		}
	}
	return nil
}
