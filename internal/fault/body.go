package fault

import (
	"errors"
	"io"
	"net/http"
)

// ReadBody reads a whole request body. Past the server's limit (the
// body is an http.MaxBytesReader) it is TooLarge naming the limit; any
// other read failure (the client went away mid-body) is Invalid. Every
// handler reads bodies through it, so the answer is the same everywhere.
func ReadBody(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(body)
	if err == nil {
		return b, nil
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, Wrap(ErrTooLarge, err, "the request body is larger than the limit of %d bytes", tooBig.Limit)
	}
	return nil, Wrap(ErrInvalid, err, "could not read the request body")
}
