// Package netlifydev holds the check that `netlify dev` (Netlify's own
// local runtime, from npm netlify-cli) builds functions-src/<name>/main.go,
// serves the site with netlify.toml's headers and redirects, and runs the
// whole visitor flow against the AWS emulators. It is tests only.
package netlifydev
