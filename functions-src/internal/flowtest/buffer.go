package flowtest

import (
	"strings"
	"sync"
)

// Buffer collects output written from several goroutines, such as a
// logger shared by concurrent handlers or a child process's stderr.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

// String returns everything written so far.
func (l *Buffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
