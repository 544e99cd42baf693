// Package browsertest drives the pages in a real browser (Debian's
// chromium, headless, through chromedp) against the dev server: the whole
// visitor path, errors, the keyboard, an axe-core accessibility audit on
// every page and step, and a check that nothing is fetched from another
// origin. It is tests only.
package browsertest
