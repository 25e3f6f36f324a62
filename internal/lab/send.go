package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/hl7v2"
)

// rejected is a lab's negative acknowledgement: final, not retried.
type rejected struct {
	code, text string
}

func (r *rejected) Error() string { return fmt.Sprintf("the lab answered %s: %s", r.code, r.text) }

// send delivers msg to addr over MLLP and waits for its ACK. No answer (a
// refused or dropped connection, a timeout, an ACK of another message) is
// tried again, up to Attempts, with the same control id; a rejection (AE,
// AR) is a 400 with the lab's words; a refused address a 400 naming the
// egress rule.
func (s *Service) send(ctx context.Context, addr, ctrl string, msg []byte) error {
	var last error
	delay := s.cfg.RetryDelay
	for attempt := 1; attempt <= s.cfg.Attempts; attempt++ {
		err := s.sendOnce(ctx, addr, ctrl, msg)
		if err == nil {
			return nil
		}
		var rej *rejected
		if errors.As(err, &rej) {
			return fault.Wrap(fault.ErrInvalid, err, "the lab rejected the order (%s): %s", rej.code, rej.text)
		}
		if errors.Is(err, egress.ErrDenied) {
			return fault.Wrap(fault.ErrInvalid, err, "the route's mllpAddress is refused: %v", err)
		}
		last = err
		s.log.WarnContext(ctx, "lab order not acknowledged", "addr", addr, "control_id", ctrl, "attempt", attempt, "err", err)
		if attempt == s.cfg.Attempts {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay *= 2
	}
	return fault.Wrap(fault.ErrUnavailable, last, "the lab at %s did not acknowledge the order after %d attempts", addr, s.cfg.Attempts)
}

func (s *Service) sendOnce(ctx context.Context, addr, ctrl string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	conn, err := s.egress.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := hl7v2.WriteFrame(conn, msg); err != nil {
		return fmt.Errorf("send order: %w", err)
	}
	frame, err := hl7v2.ReadFrame(bufio.NewReader(conn), s.cfg.MaxMessage)
	if err != nil {
		return fmt.Errorf("read ACK: %w", err)
	}
	ack, err := hl7v2.Parse(frame)
	if err != nil {
		return fmt.Errorf("read ACK: %w", err)
	}
	msa, ok := ack.Segment("MSA")
	if !ok {
		return fmt.Errorf("read ACK: no MSA segment")
	}
	if got := msa.V(2); got != ctrl {
		return fmt.Errorf("read ACK: it acknowledges %q, not %q", got, ctrl)
	}
	switch code := msa.V(1); code {
	case "AA", "CA":
		return nil
	case "AE", "AR", "CE", "CR":
		return &rejected{code: code, text: ackText(ack, msa)}
	default:
		return fmt.Errorf("read ACK: unknown acknowledgment code %q", code)
	}
}

// ackText is why an ACK refused: ERR-8 (user message), ERR-3's text,
// else MSA-3.
func ackText(ack *hl7v2.Message, msa hl7v2.Segment) string {
	if e, ok := ack.Segment("ERR"); ok {
		if t := e.V(8); t != "" {
			return t
		}
		if t := e.C(3, 2); t != "" {
			return t
		}
	}
	if t := msa.V(3); t != "" {
		return t
	}
	return "no reason given"
}
