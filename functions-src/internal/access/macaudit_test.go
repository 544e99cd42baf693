package access_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every comparison of MACs, signatures and keyed hashes goes through
// access.EqualMAC, so that constant time is decided in one place. The
// audit below reads every non-test Go file under functions-src and
// reports:
//
//   - any call of crypto/hmac.Equal or crypto/subtle.ConstantTimeCompare
//     outside EqualMAC itself: a second constant-time helper is a second
//     place to get wrong, and its presence invites plain comparisons next
//     to it;
//   - any ==, !=, tagged switch, bytes.Equal, bytes.Compare,
//     strings.Compare, strings.EqualFold, slices.Equal, slices.Compare,
//     reflect.DeepEqual or a prefix or suffix test with an operand that
//     looks like MAC material: the result of a hash's Sum (Sum, Sum256,
//     ...), or a variable, field or function whose name holds the word
//     mac, hmac, sig, sign, signature, hash, digest, token, tag, jws or jwt; conversions and the arguments of calls such as
//     hex.EncodeToString are looked through, and a local variable assigned
//     such a value counts as one. Comparing it with "" or nil tests
//     presence, not content, and passes, as do len and cap.
//
// Types would be more precise than names, but a MAC is a plain []byte or
// string to the type checker; names are what this code base uses to say
// what a value is, so the rule holds as long as names say what they hold.
// The exceptions are listed, each with its reason.

// macAuditAllowed are comparisons the audit accepts: file (from functions-src),
// function and the comparison, mapped to why.
var macAuditAllowed = map[string]string{
	"internal/embedded/store.go RestoreCode bytes.Equal": "compare-and-swap precondition: both sides are hashes the " +
		"server stored itself, none comes from a caller, and no one is let in by the result",
	"internal/embedded/store.go RotateCode bytes.Equal": "compare-and-swap precondition: both sides are hashes the " +
		"server stored itself, none comes from a caller, and no one is let in by the result",
	"internal/embedded/store.go useCode bytes.Equal": "compare-and-swap precondition of MarkVerified and UseCode: both sides are " +
		"hashes the server stored itself (the caller's guess was compared with EqualMAC before), and it only refuses",
}

// macAuditHelper is where hmac.Equal may be called.
const macAuditHelper = "internal/access/code.go EqualMAC"

func TestMACComparisonsGoThroughEqualMAC(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	require.Equal(t, "functions-src", filepath.Base(root))

	var files, helperCalls int
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		// A folder with its own go.mod is another module's code (the
		// trimmed libphonenumber), which handles no MAC of ours.
		if d.IsDir() && path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fnd, calls, err := auditMAC(filepath.ToSlash(rel), src)
		if err != nil {
			return err
		}
		files++
		helperCalls += calls
		found = append(found, fnd...)
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 20, "the audit read the sources")
	assert.Empty(t, found, "compare MACs and signatures with access.EqualMAC only")
	assert.Equal(t, 1, helperCalls, "access.EqualMAC is hmac.Equal")
}

func TestMACAuditCatchesPlainComparisons(t *testing.T) {
	const head = `package p
import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	h2 "crypto/hmac"
	"strings"
)
var _, _, _, _, _, _, _ = bytes.Equal, hmac.Equal, sha256.New, subtle.ConstantTimeCompare, hex.EncodeToString, h2.Equal, strings.Compare
`
	tests := []struct {
		name, body string
		flagged    bool
	}{
		{"bytes.Equal of a signature", `func f(sig, want []byte) bool { return bytes.Equal(sig, want) }`, true},
		{"== on a signature string", `func f(sig, want string) bool { return sig == want }`, true},
		{"!= with a signing function", `type l struct{}
func (l) sign(string) string { return "" }
func f(x l, got string) bool { return got != x.sign("1") }`, true},
		{"a field named Hash", `type r struct{ Hash []byte }
func f(a r, b []byte) bool { return bytes.Equal(a.Hash, b) }`, true},
		{"a Sum result, converted", `func f(got string) bool { m := hmac.New(sha256.New, nil); return string(m.Sum(nil)) == got }`, true},
		{"an encoded Sum", `func f(got string) bool { m := hmac.New(sha256.New, nil); return hex.EncodeToString(m.Sum(nil)) == got }`, true},
		{"a variable holding a Sum", `func f(got string) bool { s := sha256.Sum256(nil); want := hex.EncodeToString(s[:]); return want == got }`, true},
		{"an array Sum", `func f(a, b []byte) bool { return sha256.Sum256(a) == sha256.Sum256(b) }`, true},
		{"a compound name", `func f(ifHash, stored []byte) bool { return bytes.Equal(stored, ifHash) }`, true},
		{"an acronym", `func f(HMACValue, x string) bool { return x == HMACValue }`, true},
		{"strings.Compare", `func f(digest, x string) bool { return strings.Compare(digest, x) == 0 }`, true},
		{"a tagged switch", `func f(sig string) int { switch sig { case "a": return 1 }; return 0 }`, true},
		{"hmac.Equal outside the helper", `func f(a, b []byte) bool { return hmac.Equal(a, b) }`, true},
		{"hmac.Equal renamed", `func f(a, b []byte) bool { return h2.Equal(a, b) }`, true},
		{"subtle.ConstantTimeCompare", `func f(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }`, true},
		{"a package-level comparison", `var x, sig string; var same = x == sig`, true},

		{"presence", `func f(sig string, mac []byte) bool { return sig == "" || mac == nil }`, false},
		{"a prefix of a signature", `func f(sig, want []byte) bool { return bytes.HasPrefix(sig, want) }`, true},
		{"a token", `func f(token, want string) bool { return token == want }`, true},
		{"length", `func f(sig string) bool { return len(sig) != 43 }`, false},
		{"ordinary names", `func f(name, machine, design string) bool { return name == machine || design == name }`, false},
		{"ordinary bytes", `func f(a, b []byte) bool { return bytes.Equal(a, b) }`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, _, err := auditMAC("x/p.go", []byte(head+tt.body))
			require.NoError(t, err)
			if tt.flagged {
				assert.Len(t, found, 1, "%v", found)
			} else {
				assert.Empty(t, found)
			}
		})
	}

	found, calls, err := auditMAC("internal/access/code.go",
		[]byte(head+`func EqualMAC(a, b []byte) bool { return hmac.Equal(a, b) }`))
	require.NoError(t, err)
	assert.Empty(t, found, "the helper itself calls hmac.Equal")
	assert.Equal(t, 1, calls)

	found, calls, err = auditMAC("internal/access/code.go",
		[]byte(head+`func EqualMAC(a, b []byte) bool { return string(a) == string(b) }`))
	require.NoError(t, err)
	assert.Len(t, found, 1, "inside the helper every operand is MAC material")
	assert.Zero(t, calls)
}

// auditMAC returns one line per comparison in src that breaks the rule,
// and how often the helper calls hmac.Equal.
func auditMAC(rel string, src []byte) (found []string, helperCalls int, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, 0, err
	}
	imports := map[string]string{} // local name -> import path
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		imports[name] = path
	}
	report := func(fn string, pos token.Pos, what string) {
		key := rel + " " + fn + " " + what
		if _, ok := macAuditAllowed[key]; ok {
			return
		}
		if rel+" "+fn == macAuditHelper && what == "crypto/hmac.Equal" {
			helperCalls++
			return
		}
		found = append(found, fmt.Sprintf("%s (%s): %s", fset.Position(pos), fn, what))
	}
	for _, decl := range f.Decls {
		fn := ""
		if d, ok := decl.(*ast.FuncDecl); ok {
			fn = d.Name.Name
		}
		m := macs{held: heldMACs(decl), all: rel+" "+fn == macAuditHelper}
		ast.Inspect(decl, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && !isPresenceCheck(n.X) && !isPresenceCheck(n.Y) &&
					(m.like(n.X) || m.like(n.Y)) {
					report(fn, n.OpPos, n.Op.String())
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && m.like(n.Tag) {
					report(fn, n.Switch, "switch")
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok || imports[pkg.Name] == "" {
					return true
				}
				what := imports[pkg.Name] + "." + sel.Sel.Name
				switch what {
				case "crypto/hmac.Equal", "crypto/subtle.ConstantTimeCompare":
					report(fn, n.Lparen, what)
				case "bytes.Equal", "bytes.Compare", "strings.Compare", "strings.EqualFold", "slices.Equal", "reflect.DeepEqual",
					"bytes.HasPrefix", "bytes.HasSuffix", "strings.HasPrefix", "strings.HasSuffix", "slices.Compare":
					for _, a := range n.Args {
						if m.like(a) {
							report(fn, n.Lparen, imports[pkg.Name][strings.LastIndex(imports[pkg.Name], "/")+1:]+"."+sel.Sel.Name)
							break
						}
					}
				}
			}
			return true
		})
	}
	return found, helperCalls, nil
}

// isPresenceCheck reports whether e is "" or nil.
func isPresenceCheck(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING && (e.Value == `""` || e.Value == "``")
	case *ast.Ident:
		return e.Name == "nil"
	}
	return false
}

// macs tells MAC material from other values within one declaration.
type macs struct {
	held map[string]bool // local names assigned MAC material
	all  bool            // in the helper, every operand is
}

// like reports whether e looks like MAC material: by its name, by coming
// from a hash's Sum, or by being a local that was assigned either.
func (m macs) like(e ast.Expr) bool {
	if m.all {
		return true
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return m.like(e.X)
	case *ast.StarExpr:
		return m.like(e.X)
	case *ast.UnaryExpr:
		return m.like(e.X)
	case *ast.Ident:
		return m.held[e.Name] || macName(e.Name)
	case *ast.SelectorExpr:
		return macName(e.Sel.Name) || m.like(e.X)
	case *ast.IndexExpr:
		return m.like(e.X)
	case *ast.SliceExpr:
		return m.like(e.X)
	case *ast.CallExpr:
		var name string
		switch fn := e.Fun.(type) {
		case *ast.Ident:
			name = fn.Name
		case *ast.SelectorExpr:
			name = fn.Sel.Name
		}
		switch name {
		case "len", "cap", "Equal", "Compare", "EqualFold", "DeepEqual", "ConstantTimeCompare", "EqualMAC":
			// Sizes and verdicts are not MAC material.
			return false
		}
		if strings.HasPrefix(name, "Sum") || macName(name) {
			return true
		}
		for _, a := range e.Args {
			if m.like(a) {
				return true
			}
		}
	}
	return false
}

// heldMACs names the locals of decl that are assigned MAC material,
// following chains of assignments.
func heldMACs(decl ast.Decl) map[string]bool {
	m := macs{held: map[string]bool{}}
	for grew := true; grew; {
		grew = false
		mark := func(lhs ast.Expr, rhs ast.Expr) {
			if id, ok := lhs.(*ast.Ident); ok && id.Name != "_" && !m.held[id.Name] && m.like(rhs) {
				m.held[id.Name], grew = true, true
			}
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if len(n.Lhs) == len(n.Rhs) {
					for i := range n.Lhs {
						mark(n.Lhs[i], n.Rhs[i])
					}
				}
			case *ast.ValueSpec:
				if len(n.Names) == len(n.Values) {
					for i := range n.Names {
						mark(n.Names[i], n.Values[i])
					}
				}
			}
			return true
		})
	}
	return m.held
}

// macWords are the words that name MAC material.
var macWords = map[string]bool{
	"mac": true, "macs": true, "hmac": true, "sig": true, "sigs": true, "sign": true, "signed": true,
	"signature": true, "signatures": true, "hash": true, "hashes": true, "hashed": true, "digest": true,
	"token": true, "tokens": true, "tag": true, "tags": true, "jws": true, "jwt": true,
}

// macName reports whether an identifier has a MAC word in it: ifHash,
// signatureB64 and HMACKey do, machine and design do not.
func macName(name string) bool {
	for _, w := range identWords(name) {
		if macWords[strings.ToLower(w)] {
			return true
		}
	}
	return false
}

// identWords splits an identifier at underscores, digits and case changes,
// keeping acronyms whole: HMACKey is HMAC and Key.
func identWords(name string) []string {
	rs := []rune(name)
	var out []string
	start := 0
	for i := 1; i <= len(rs); i++ {
		split := i == len(rs) || rs[i] == '_' || unicode.IsDigit(rs[i]) != unicode.IsDigit(rs[i-1]) ||
			unicode.IsLower(rs[i-1]) && unicode.IsUpper(rs[i]) ||
			i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsUpper(rs[i]) && unicode.IsLower(rs[i+1])
		if !split {
			continue
		}
		if w := strings.Trim(string(rs[start:i]), "_"); w != "" {
			out = append(out, w)
		}
		start = i
	}
	return out
}
