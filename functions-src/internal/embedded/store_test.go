package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) access.Store {
		s, err := embedded.OpenStore(filepath.Join(t.TempDir(), "cv.db"))
		require.NoError(t, err)
		return s
	})
}

// netlify dev runs each invocation in its own process, so the store must
// hold its rules across processes, not only across goroutines. This test
// starts 10 copies of the test binary, each counting attempts against one
// file from 5 goroutines: 50 racers for a budget of 5.
func TestStoreAcrossProcesses(t *testing.T) {
	if os.Getenv("CV_STORE_CHILD") != "" {
		childCountAttempts()
		return
	}
	path := filepath.Join(t.TempDir(), "cv.db")
	s, err := embedded.OpenStore(path)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Second)
	r := access.Request{ID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", Name: "A", Email: "a@example.com",
		Status: access.StatusPending, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
	c := access.Code{RequestID: r.ID, Hash: []byte("h"), ExpiresAt: now.Add(10 * time.Minute),
		SentAt: now, DeleteAt: now.Add(time.Hour)}
	require.NoError(t, s.CreateRequest(context.Background(), r, c))

	const procs = 10
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*strings.Builder, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreAcrossProcesses$")
		cmd.Env = append(os.Environ(), "CV_STORE_CHILD=1", "CV_STORE_PATH="+path, "CV_STORE_ID="+r.ID)
		outs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		require.NoError(t, cmd.Start())
		cmds[i] = cmd
	}
	allowed, locked := 0, 0
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outs[i].String())
		var a, l int
		_, err := fmt.Sscanf(lastLine(outs[i].String(), "RESULT"), "RESULT allowed=%d locked=%d", &a, &l)
		require.NoError(t, err, outs[i].String())
		allowed += a
		locked += l
	}
	assert.Equal(t, 5, allowed, "exactly the budget must be evaluated across processes")
	assert.Equal(t, procs*5-5, locked)
}

func childCountAttempts() {
	s, err := embedded.OpenStore(os.Getenv("CV_STORE_PATH"))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	results := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := s.CountAttempt(context.Background(), os.Getenv("CV_STORE_ID"), time.Now(), 5)
			results <- err
		}()
	}
	allowed, locked := 0, 0
	for range 5 {
		switch err := <-results; {
		case err == nil:
			allowed++
		case errors.Is(err, access.ErrCodeLocked):
			locked++
		default:
			fmt.Println("unexpected:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("RESULT allowed=%d locked=%d\n", allowed, locked)
}

func lastLine(out, prefix string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return ""
}
