// Command cv-package writes a Lambda deployment package: a zip holding one
// executable named bootstrap, as the provided.al2023 runtime runs it. The
// zip is the same bytes for the same binary (fixed time and mode), so
// Terraform sees a change only when the code changed.
//
//	cv-package -o .local/lambda/request-access.zip path/to/binary
package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

func main() {
	out := flag.String("o", "", "the zip to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cv-package -o package.zip binary")
		os.Exit(2)
	}
	if err := write(*out, flag.Arg(0)); err != nil {
		fmt.Fprintf(os.Stderr, "cv-package: %v\n", err)
		os.Exit(1)
	}
}

func write(out, bin string) (err error) {
	in, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// Written beside and renamed into place: a failed run never leaves a
	// half-written package for Terraform to upload.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".cv-package-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if err := errors.Join(zw.Close(), tmp.Chmod(0o644), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
