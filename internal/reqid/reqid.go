// Package reqid carries a request's id in its context and puts it on every
// log line written with that context, whichever package writes it (the
// server, FHIR, IAM, zambdas), so one grep finds a request's whole story.
package reqid

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns ctx carrying the request id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Attr is the log attribute's key.
const Attr = "request_id"

// handler adds the request id of a record's context.
type handler struct{ slog.Handler }

// Handler wraps h so that every record logged with a context carrying a
// request id (the *Context methods) has a request_id attribute. Wrapping
// twice adds it once.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

// Logger is slog.New(Handler(h)).
func Logger(h slog.Handler) *slog.Logger { return slog.New(Handler(h)) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(Attr, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.Handler.WithGroup(name)} }
