// Package netlifydev holds the check that `netlify dev` (Netlify's own
// local runtime, from npm netlify-cli) builds functions-src/<name>/main.go,
// serves the site with netlify.toml's headers and redirects, and runs the
// whole visitor flow against the AWS emulators; and the AWS target's
// check (aws_test.go): netlify dev serving a site built with CV_API_ORIGIN,
// proxying /api/* with signed requests to the HTTP API stand-in
// (httpapi) in front of the compiled functions, the gate on. It is tests
// only.
package netlifydev
