package hl7v2

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MLLP framing (HL7 v2 appendix C): 0x0b, the message, 0x1c 0x0d.
const (
	startBlock = 0x0b
	endBlock   = 0x1c
	carriageCR = 0x0d
)

// ErrFrame is wrapped by every framing error: the stream cannot be trusted
// past it, so the connection should be closed.
var ErrFrame = errors.New("mllp: bad frame")

// ErrTooLarge is wrapped when a frame is longer than the reader's limit.
var ErrTooLarge = errors.New("mllp: frame too large")

// ReadFrame reads one framed message of at most max bytes. io.EOF means
// the peer closed between frames (cleanly).
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if b != startBlock {
		return nil, fmt.Errorf("%w: expected 0x0b, got 0x%02x", ErrFrame, b)
	}
	var out []byte
	for {
		chunk, err := r.ReadSlice(endBlock)
		if len(out)+len(chunk) > max+1 {
			return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, max)
		}
		out = append(out, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the stream ended inside a frame", ErrFrame)
		}
		if err != nil {
			return nil, err
		}
		break
	}
	end, err := r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("%w: the stream ended inside a frame", ErrFrame)
	}
	if end != carriageCR {
		return nil, fmt.Errorf("%w: 0x1c not followed by 0x0d", ErrFrame)
	}
	return out[:len(out)-1], nil
}

// WriteFrame writes msg framed.
func WriteFrame(w io.Writer, msg []byte) error {
	buf := make([]byte, 0, len(msg)+3)
	buf = append(buf, startBlock)
	buf = append(buf, msg...)
	buf = append(buf, endBlock, carriageCR)
	_, err := w.Write(buf)
	return err
}
