package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// CodeDigits is the length of a one-time code.
const CodeDigits = 6

// MinSecretLen is the shortest OTP secret accepted, in bytes.
const MinSecretLen = 32

// Codes makes one-time codes and their keyed hashes.
//
// A bare SHA-256 of a 6-digit code is reversed by trying all 10^6 inputs,
// so the stored hash is an HMAC under a server secret that never sits
// beside the data. It covers the request id too, so a hash is only valid
// for the request it was issued to.
type Codes struct {
	rand io.Reader
	// keys[0] signs new codes; every key is tried when checking, so the
	// secret can be rotated without invalidating codes already sent.
	keys [][]byte
}

// NewCodes takes the randomness source (crypto/rand.Reader in production,
// a fixed stream in tests) and one or more secrets, newest first.
func NewCodes(rand io.Reader, secrets ...[]byte) (*Codes, error) {
	if rand == nil {
		return nil, errors.New("codes: nil random source")
	}
	if len(secrets) == 0 {
		return nil, errors.New("codes: no OTP secret")
	}
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("codes: OTP secret %d is %d bytes; need at least %d", i+1, len(s), MinSecretLen)
		}
		keys[i] = append([]byte(nil), s...)
	}
	return &Codes{rand: rand, keys: keys}, nil
}

// New returns a uniformly random code of CodeDigits digits.
func (c *Codes) New() (string, error) {
	const space = 1_000_000 // 10^CodeDigits
	// Reject values from the incomplete top block so every code is equally likely.
	const limit = (1 << 32) / space * space
	var b [4]byte
	for {
		if _, err := io.ReadFull(c.rand, b[:]); err != nil {
			return "", fmt.Errorf("codes: read random: %w", err)
		}
		if v := binary.BigEndian.Uint32(b[:]); v < limit {
			return fmt.Sprintf("%06d", v%space), nil
		}
	}
}

// Hash returns the HMAC-SHA-256 of the code bound to its request.
func (c *Codes) Hash(requestID, code string) []byte {
	return mac(c.keys[0], requestID, code)
}

// Match reports in constant time whether code is the one hashed for
// requestID under any of the configured keys.
func (c *Codes) Match(requestID, code string, hash []byte) bool {
	ok := false
	for _, k := range c.keys {
		// No early exit: the time taken does not say which key matched.
		if EqualMAC(mac(k, requestID, code), hash) {
			ok = true
		}
	}
	return ok
}

// EqualMAC reports whether two MACs, signatures or keyed hashes are equal,
// taking time that does not depend on where they differ: an early exit
// would let a caller forge one byte at a time by timing the answers. Every
// such comparison in cv-access goes through here, so that one place can be
// checked; a test fails on any other.
func EqualMAC(a, b []byte) bool { return hmac.Equal(a, b) }

func mac(key []byte, requestID, code string) []byte {
	m := hmac.New(sha256.New, key)
	// Length-free framing is safe: the id is a fixed-form UUID and the
	// code fixed-length digits, and the NUL separates domain from data.
	m.Write([]byte("cv-access/otp/v1\x00"))
	m.Write([]byte(requestID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
