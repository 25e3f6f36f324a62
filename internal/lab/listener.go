package lab

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/hl7v2"
)

// Serve accepts MLLP connections on ln until ctx ends: each framed message
// is ingested and answered with an ACK (AA, AE or AR) on the same
// connection, in order. A framing error (bytes outside a frame, a frame
// over MaxMessage) gets an AR where one can be written and closes the
// connection, since the stream cannot be resynchronised. At most MaxConns
// connections are served at once; the others wait in the backlog.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.cfg.MaxConns)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var conns sync.Map
	defer conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		conns.Store(conn, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer conns.Delete(conn)
			defer conn.Close()
			s.serveConn(ctx, conn)
		}()
	}
}

func (s *Service) serveConn(ctx context.Context, conn net.Conn) {
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		frame, err := hl7v2.ReadFrame(r, s.cfg.MaxMessage)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.WarnContext(ctx, "mllp connection closed", "remote", conn.RemoteAddr().String(), "err", err)
				if errors.Is(err, hl7v2.ErrTooLarge) || errors.Is(err, hl7v2.ErrFrame) {
					_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
					_ = hl7v2.WriteFrame(conn, s.ack(nil, Outcome{Code: AckReject, Text: err.Error()}))
				}
			}
			return
		}
		// A message being stored finishes even if the stop comes now: its
		// ACK may be lost, and the sender then sends it again (found, not
		// stored twice).
		in, err := hl7v2.Parse(frame)
		out := reject("", "%v", err)
		if err == nil {
			out = s.ingest(context.WithoutCancel(ctx), in)
		}
		if out.Code != AckAccept {
			s.log.InfoContext(ctx, "lab result refused", "code", out.Code, "control_id", out.ControlID, "why", out.Text)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := hl7v2.WriteFrame(conn, s.ack(in, out)); err != nil {
			return
		}
	}
}

// ack answers in (nil when it did not parse): MSH with the sender and
// receiver swapped, MSA, and an ERR saying why unless accepted.
func (s *Service) ack(in *hl7v2.Message, out Outcome) []byte {
	var sendApp, sendFac, recvApp, recvFac string
	if in != nil {
		msh := in.Segments[0]
		sendApp, sendFac, recvApp, recvFac = msh.V(5), msh.V(6), msh.V(3), msh.V(4)
	}
	if sendApp == "" {
		sendApp = s.cfg.Facility
	}
	m := hl7v2.NewMessage(hl7v2.Value(sendApp), hl7v2.Value(sendFac), hl7v2.Value(recvApp), hl7v2.Value(recvFac),
		hl7v2.Value(hl7Time(s.now())), hl7v2.Value(""), hl7v2.Components("ACK", "R01", "ACK"),
		hl7v2.Value("ACK"+strconv.FormatUint(s.ackSeq.Add(1), 10)+strconv.FormatInt(s.now().UnixMilli()%1e6, 10)),
		hl7v2.Value("P"), hl7v2.Value("2.5.1"))
	m.Add("MSA", hl7v2.Value(out.Code), hl7v2.Value(out.ControlID), hl7v2.Value(out.Text))
	if out.Code != AckAccept {
		sev := "E"
		m.Add("ERR", hl7v2.Value(""), hl7v2.Value(""), hl7v2.Components("207", "Application internal error", "HL70357"),
			hl7v2.Value(sev), hl7v2.Value(""), hl7v2.Value(""), hl7v2.Value(""), hl7v2.Value(out.Text))
	}
	return m.Encode()
}
