// Command cv-dev runs cv-access on one machine with no AWS: the built site,
// the three functions (the visitors' two and the owner page's), signed
// CV downloads and the outbox page, on one port.
// `make dev` builds the site and starts it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/devserver"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cv-dev:", err)
		os.Exit(1)
	}
}

// siteDocuments is the site's document list, which the dev server reads
// unless the environment names another.
const siteDocuments = "site/data/cv_access.json"

func run() error {
	cfg, err := app.LoadConfig(devEnv(os.Getenv))
	if err != nil {
		return err
	}
	if cfg.Backend != app.BackendLocal {
		return fmt.Errorf("cv-dev serves the embedded backend only; unset CV_BACKEND or set it to %q", app.BackendLocal)
	}
	siteDir := os.Getenv("CV_SITE_DIR")
	if siteDir == "" {
		siteDir = filepath.Join("site", "public")
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8888"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("cannot listen on 127.0.0.1:%s (set PORT to use another port): %w", port, err)
	}
	origin := "http://" + ln.Addr().String()
	if os.Getenv("CV_SITE_URL") == "" {
		cfg.SiteURL = origin // the port actually bound (PORT=0 picks one)
	}
	notifications := &app.Background{}
	a, err := app.New(cfg, app.Options{Phones: phone.Numbers{}, Notifier: notifications.Hook})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &http.Server{
		Handler:           devserver.New(a, siteDir, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}

	fmt.Printf("cv-access dev server: embedded backend, no AWS\n")
	fmt.Printf("  open     %s%s\n", origin, cfg.Documents.Default().Page)
	fmt.Printf("  outbox   %s/_dev/outbox   (mail and SMS land in %s)\n", origin, cfg.OutboxDir)
	fmt.Printf("  data     %s   documents in %s\n", cfg.StorePath(), cfg.DocumentsDir)
	for _, d := range cfg.Documents.All() {
		fmt.Printf("           %-12s %s%s   file %s\n", d.Slug, origin, d.Page, a.Links.File(d))
	}
	if _, err := os.Stat(filepath.Join(siteDir, "index.html")); err != nil {
		fmt.Printf("  warning  %s has no built site: run `make dev` (it builds the site first)\n", siteDir)
	}
	if cfg.SiteURL != origin {
		fmt.Printf("  note     links in messages use CV_SITE_URL=%s\n", cfg.SiteURL)
	}
	fmt.Printf("Press Ctrl+C to stop.\n")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	notifications.Wait() // the owner's emails already under way reach the outbox
	fmt.Println("cv-dev: stopped")
	return nil
}

// devEnv is getenv with the site's document list as CV_DOCUMENTS_FILE when
// nothing names a list (or the single CV's key) and the file is there.
func devEnv(getenv app.Getenv) app.Getenv {
	return func(name string) string {
		if name == "CV_DOCUMENTS_FILE" && getenv("CV_DOCUMENTS_FILE") == "" && getenv("CV_DOCUMENTS") == "" && getenv("CV_S3_KEY") == "" {
			if _, err := os.Stat(siteDocuments); err == nil {
				return siteDocuments
			}
		}
		return getenv(name)
	}
}
