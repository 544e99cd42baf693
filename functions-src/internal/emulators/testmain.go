package emulators

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// RunTests is a TestMain for packages that test against the stack: it
// starts the stack, hands it to set (nil when it could not start and
// CV_REQUIRE_EMULATORS is unset, so the tests skip), runs the tests, stops
// the stack and exits. With CV_REQUIRE_EMULATORS set (`make test`), a
// stack that does not start fails the run.
func RunTests(m *testing.M, set func(*Stack)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := Start(ctx, Options{})
	cancel()
	switch {
	case err == nil:
		set(s)
	case os.Getenv("CV_REQUIRE_EMULATORS") != "":
		fmt.Fprintln(os.Stderr, "emulators are required (CV_REQUIRE_EMULATORS) but did not start:", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "skipping the tests that need emulators: they did not start:", err)
	}
	code := m.Run()
	if s != nil {
		s.Stop()
	}
	os.Exit(code)
}
