package embedded

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SampleCV is the placeholder CV the embedded mode serves until the owner
// puts their own file at CV_LOCAL_CV_FILE.
//
//go:embed sample-cv.pdf
var SampleCV []byte

// EnsureSampleCV writes the sample CV to path unless a file is there.
func EnsureSampleCV(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("CV file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("CV file %s: %w", path, err)
	}
	if err := os.WriteFile(path, SampleCV, 0o600); err != nil {
		return fmt.Errorf("CV file %s: %w", path, err)
	}
	return nil
}
