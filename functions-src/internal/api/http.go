package api

import (
	"io"
	"net"
	"net/http"

	"github.com/google/uuid"
)

// ServeHTTP serves the function over net/http, as the dev server does,
// through the same Serve as the Lambda adapters. It reads one byte past
// MaxBodyBytes so that Serve itself refuses a larger body.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		err = badJSON("The request body could not be read.")
	}
	source, _, splitErr := net.SplitHostPort(r.RemoteAddr)
	if splitErr != nil {
		source = ""
	}
	resp := f.Serve(r.Context(), Request{
		Method: r.Method, Path: r.URL.Path, Header: Header(r.Header), Body: body, bodyErr: err,
		SourceIP: source, ID: uuid.NewString(),
	})
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	for _, c := range resp.SetCookie {
		w.Header().Add("Set-Cookie", c)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
