package search

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidQuery is wrapped by every ParseQuery error; the FHIR handler
// maps it to 400 with an OperationOutcome.
var ErrInvalidQuery = errors.New("invalid search query")

// Error is a ParseQuery failure naming the query parameter at fault.
type Error struct {
	Param   string // the parameter as written, e.g. "birthdate" or "subject:Patient.name"
	Message string // e.g. `invalid date "2020-13"`
	Err     error  // the underlying cause, if any

	// unknown marks an unknown parameter name, which lenient parsing
	// records in Query.Ignored instead of failing.
	unknown bool
}

func (e *Error) Error() string {
	if e.Param == "" || strings.Contains(e.Message, strconv.Quote(e.Param)) {
		return e.Message
	}
	return fmt.Sprintf("%s in %s", e.Message, e.Param)
}

// Unwrap exposes ErrInvalidQuery and the cause to errors.Is/As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidQuery, e.Err}
	}
	return []error{ErrInvalidQuery}
}

func queryErr(param, format string, args ...any) *Error {
	return &Error{Param: param, Message: fmt.Sprintf(format, args...)}
}

func unknownParam(param, format string, args ...any) *Error {
	e := queryErr(param, format, args...)
	e.unknown = true
	return e
}
