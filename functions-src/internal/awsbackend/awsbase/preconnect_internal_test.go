package awsbase

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A connection opened ahead is taken only while young by both clocks, and
// its age counts from when its opening began.
func TestAConnectionOpenedAheadIsFreshForItsFirstSeconds(t *testing.T) {
	began := time.Now()
	r := &readyConn{at: began}
	assert.True(t, r.fresh(began.Add(time.Second)))
	assert.False(t, r.fresh(began.Add(readyFor)), "old by the monotonic clock")
	assert.False(t, r.fresh(began.Round(0).Add(readyFor+time.Second)), "old by the wall clock")
}
