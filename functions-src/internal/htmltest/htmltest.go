// Package htmltest reads built pages in tests: walk a parsed document,
// read an attribute, and a node's text as a reader sees it.
package htmltest

import (
	"strings"

	"golang.org/x/net/html"
)

// Walk calls fn on n and every node below it, in document order.
func Walk(n *html.Node, fn func(*html.Node)) {
	if n == nil {
		return
	}
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		Walk(c, fn)
	}
}

// Attr is n's attribute key, or "" when it has none.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Has reports whether n carries the attribute key, even empty.
func Has(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// Text is the text below n with its white space collapsed.
func Text(n *html.Node) string {
	var b strings.Builder
	Walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}
