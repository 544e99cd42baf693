// Package strictjson checks what encoding/json lets through: a key in
// another case, or named twice (the last one wins). Other readers of the
// same bytes (a proxy, Terraform's jsondecode, Hugo) may read such input
// differently, so it is refused before it is decoded.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Errors CheckKeys returns, wrapped with the key where there is one.
var (
	ErrNotObject = errors.New("not a JSON object")
	ErrInvalid   = errors.New("not valid JSON")
	ErrUnknown   = errors.New("unknown key")
	ErrRepeated  = errors.New("key named more than once")
)

// CheckKeys reports whether raw is one JSON object whose keys are all in
// allowed, in their exact case, each at most once. It does not look inside
// the values.
func CheckKeys(raw []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ErrNotObject
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ErrInvalid
		}
		key, _ := tok.(string)
		switch {
		case !allowed[key]:
			return fmt.Errorf("%w %q", ErrUnknown, key)
		case seen[key]:
			return fmt.Errorf("%w: %q", ErrRepeated, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ErrInvalid
		}
	}
	return nil
}
