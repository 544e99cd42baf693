package proxysign

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// maxNumericDate is 9999-12-31T23:59:59Z: later seconds would overflow
// time.Time's arithmetic, and no real token gets near it.
const maxNumericDate = 253402300799

// parseObject reads one JSON object into its fields, refusing invalid
// UTF-8 (encoding/json would quietly replace it), a name given twice
// (which one counts would depend on the parser) and anything after it.
func parseObject(data []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("bad JSON")
		}
		name, ok := t.(string)
		if !ok {
			return nil, errors.New("bad JSON")
		}
		if _, dup := fields[name]; dup {
			return nil, errors.New("a name given twice")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("bad JSON")
		}
		fields[name] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("bad JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return fields, nil
}

// stringValue decodes a JSON string; null and other types are refused
// (json.Unmarshal would leave a string empty on null).
func stringValue(v json.RawMessage) (string, error) {
	if len(v) == 0 || v[0] != '"' {
		return "", errors.New("not a string")
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// numericDate decodes a JSON number of whole seconds since the epoch, as
// Netlify's signer writes them. Strings (json.Number would take "123"),
// fractions, exponents and negative or far-future values are refused.
func numericDate(v json.RawMessage) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errors.New("not a whole number of seconds")
	}
	if n < 0 || n > maxNumericDate {
		return 0, errors.New("out of range")
	}
	return n, nil
}
