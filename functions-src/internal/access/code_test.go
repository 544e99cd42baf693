package access_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

var (
	secretA = []byte(strings.Repeat("a", access.MinSecretLen))
	secretB = []byte(strings.Repeat("b", access.MinSecretLen))
)

const reqA = "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01"
const reqB = "0b7e2d1f-5a4c-4e3b-8f2a-9c8d7e6f5a4b"

func TestCodesNewIsDeterministicGivenTheReader(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"zero", []byte{0, 0, 0, 0}, "000000"},
		{"small", []byte{0, 0, 0x30, 0x39}, "012345"},
		{"wraps modulo a million", []byte{0x00, 0x0f, 0x42, 0x40 + 7}, "000007"}, // 1_000_007
		// 0xffffffff lies in the incomplete top block: it is rejected and
		// the next four bytes are used, so no code is more likely than another.
		{"rejects the biased tail", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 42}, "000042"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := access.NewCodes(bytes.NewReader(tt.bytes), secretA)
			require.NoError(t, err)
			got, err := c.New()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCodesNewFailsWhenRandomnessRunsOut(t *testing.T) {
	c, err := access.NewCodes(bytes.NewReader([]byte{1, 2}), secretA)
	require.NoError(t, err)
	_, err = c.New()
	assert.Error(t, err)
}

func TestCodesAreSixDigitsFromCryptoRand(t *testing.T) {
	c, err := access.NewCodes(rand.Reader, secretA)
	require.NoError(t, err)
	seen := map[string]bool{}
	for range 1000 {
		code, err := c.New()
		require.NoError(t, err)
		require.Regexp(t, `^[0-9]{6}$`, code)
		seen[code] = true
	}
	// 1000 draws from 10^6 collide rarely (birthday: ~40% for one pair).
	assert.Greater(t, len(seen), 990)
}

func TestCodesHashIsKeyedAndBoundToTheRequest(t *testing.T) {
	a, err := access.NewCodes(rand.Reader, secretA)
	require.NoError(t, err)
	b, err := access.NewCodes(rand.Reader, secretB)
	require.NoError(t, err)

	h := a.Hash(reqA, "123456")
	assert.Len(t, h, 32)
	assert.True(t, a.Match(reqA, "123456", h))
	assert.False(t, a.Match(reqA, "123457", h), "another code")
	assert.False(t, a.Match(reqB, "123456", h), "the same code for another request")
	assert.False(t, b.Match(reqA, "123456", h), "another secret")
	assert.NotEqual(t, h, b.Hash(reqA, "123456"))
}

func TestCodesRotation(t *testing.T) {
	old, err := access.NewCodes(rand.Reader, secretA)
	require.NoError(t, err)
	rotated, err := access.NewCodes(rand.Reader, secretB, secretA)
	require.NoError(t, err)

	sentBefore := old.Hash(reqA, "123456")
	assert.True(t, rotated.Match(reqA, "123456", sentBefore), "codes sent before the rotation still work")
	assert.Equal(t, rotated.Hash(reqA, "123456"), mustCodes(t, secretB).Hash(reqA, "123456"), "new codes use the newest secret")
}

func TestNewCodesRefusesWeakSetup(t *testing.T) {
	_, err := access.NewCodes(rand.Reader)
	assert.Error(t, err)
	_, err = access.NewCodes(rand.Reader, []byte("short"))
	assert.Error(t, err)
	_, err = access.NewCodes(nil, secretA)
	assert.Error(t, err)
}

func mustCodes(t *testing.T, secrets ...[]byte) *access.Codes {
	t.Helper()
	c, err := access.NewCodes(rand.Reader, secrets...)
	require.NoError(t, err)
	return c
}

func TestEqualMAC(t *testing.T) {
	a := []byte{0x01, 0x02, 0x03, 0x04}
	assert.True(t, access.EqualMAC(a, []byte{0x01, 0x02, 0x03, 0x04}))
	assert.False(t, access.EqualMAC(a, []byte{0x01, 0x02, 0x03, 0x05}), "the last byte differs")
	assert.False(t, access.EqualMAC(a, []byte{0x00, 0x02, 0x03, 0x04}), "the first byte differs")
	assert.False(t, access.EqualMAC(a, a[:3]), "a prefix is not the MAC")
	assert.False(t, access.EqualMAC(a, nil))
}
