// Package logctx carries a request-scoped slog.Logger in a context, so every
// line a request writes names the invocation it belongs to.
package logctx

import (
	"context"
	"io"
	"log/slog"
)

type key struct{}

// With returns a context carrying log.
func With(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, log)
}

// From returns the context's logger, or a logger that discards everything
// if there is none (a library must not write where nobody asked it to).
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return discard
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
