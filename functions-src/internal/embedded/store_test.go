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

func TestNotificationContract(t *testing.T) {
	storetest.RunNotifications(t, func(t *testing.T) storetest.NotifyingStore {
		s, err := embedded.OpenStore(filepath.Join(t.TempDir(), "cv.db"))
		require.NoError(t, err)
		return s
	})
}

// netlify dev runs each invocation in its own process, so the store must
// hold its rules across processes, not only across goroutines. These tests
// start 10 copies of the test binary, each racing from 5 goroutines on one
// file: 50 racers.
func TestStoreAcrossProcesses(t *testing.T) {
	if op := os.Getenv("CV_STORE_CHILD"); op != "" {
		childRace(op)
		return
	}
	for _, tc := range []struct {
		op          string
		wins, loses int
	}{
		{"count", 5, 45},  // the attempt budget
		{"verify", 1, 49}, // single use
	} {
		t.Run(tc.op, func(t *testing.T) {
			wins, loses := raceProcesses(t, tc.op)
			assert.Equal(t, tc.wins, wins)
			assert.Equal(t, tc.loses, loses)
		})
	}
}

func raceProcesses(t *testing.T, op string) (wins, loses int) {
	path := filepath.Join(t.TempDir(), "cv.db")
	s, err := embedded.OpenStore(path)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Second)
	r := access.Request{ID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", Name: "A", Email: "a@example.com",
		Status: access.StatusPending, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
	c := access.Code{RequestID: r.ID, Hash: []byte("h"), ExpiresAt: now.Add(10 * time.Minute),
		SentAt: now, DeleteAt: now.Add(time.Hour)}
	require.NoError(t, s.CreateRequest(context.Background(), r, c, nil))

	const procs = 10
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*strings.Builder, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreAcrossProcesses$")
		cmd.Env = append(os.Environ(), "CV_STORE_CHILD="+op, "CV_STORE_PATH="+path, "CV_STORE_ID="+r.ID)
		outs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		require.NoError(t, cmd.Start())
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outs[i].String())
		var w, l int
		_, err := fmt.Sscanf(lastLine(outs[i].String(), "RESULT"), "RESULT wins=%d loses=%d", &w, &l)
		require.NoError(t, err, outs[i].String())
		wins += w
		loses += l
	}
	return wins, loses
}

func childRace(op string) {
	s, err := embedded.OpenStore(os.Getenv("CV_STORE_PATH"))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	id := os.Getenv("CV_STORE_ID")
	results := make(chan error, 5)
	for range 5 {
		go func() {
			if op == "verify" {
				results <- s.MarkVerified(context.Background(), id, time.Now(), []byte("h"))
				return
			}
			_, err := s.CountAttempt(context.Background(), id, time.Now(), 5, nil)
			results <- err
		}()
	}
	wins, loses := 0, 0
	for range 5 {
		switch err := <-results; {
		case err == nil:
			wins++
		case errors.Is(err, access.ErrCodeLocked), errors.Is(err, access.ErrCodeUsed):
			loses++
		default:
			fmt.Println("unexpected:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("RESULT wins=%d loses=%d\n", wins, loses)
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

func TestOwnerStoreContract(t *testing.T) {
	storetest.RunOwner(t, func(t *testing.T) access.OwnerStore {
		s, err := embedded.OpenStore(filepath.Join(t.TempDir(), "cv.db"))
		require.NoError(t, err)
		return s
	})
}

func TestOwnerCodesContract(t *testing.T) {
	storetest.RunOwnerCodes(t, func(t *testing.T) storetest.OwnerCodesStore {
		s, err := embedded.OpenStore(filepath.Join(t.TempDir(), "cv.db"))
		require.NoError(t, err)
		return s
	})
}
