package app_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cvName is a whole string literal naming a CV_ variable. The code reads
// each one by such a literal: env("CV_X"), os.Getenv("CV_X"), or a table
// of names it loops over; messages that mention a name are longer strings.
var cvName = regexp.MustCompile(`^CV_[A-Z0-9_]+$`)

// testSwitches are read by the test harness, not by cv-access: the README's
// Tests section documents them.
func testSwitch(name string) bool { return strings.HasPrefix(name, "CV_REQUIRE_") }

// namesInCode are the CV_ variables named in the Go sources under root,
// tests and vendored code left out, with a file that names each.
func namesInCode(t *testing.T, root string) map[string]string {
	t.Helper()
	names := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "third_party" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && cvName.MatchString(s) && !testSwitch(s) {
				if _, seen := names[s]; !seen {
					rel, _ := filepath.Rel(root, path)
					names[s] = rel
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	return names
}

// exampleLine is a setting in .env.example, set or commented out.
var exampleLine = regexp.MustCompile(`^#?\s*(CV_[A-Z0-9_]+)=`)

func namesInExample(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := exampleLine.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			names[m[1]] = true
		}
	}
	require.NoError(t, sc.Err())
	return names
}

// TestEnvExampleListsEveryVariable keeps .env.example complete: every CV_
// variable the code reads is there (a commented `# CV_X=` line counts), and
// nothing the code does not read. A retired variable the code still reads,
// to refuse it, is listed as retired.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	root := filepath.Join("..", "..") // functions-src
	inCode := namesInCode(t, root)
	inExample := namesInExample(t, filepath.Join(root, "..", ".env.example"))
	require.NotEmpty(t, inCode)
	require.Contains(t, inCode, "CV_BACKEND", "the scan finds the names the configuration reads")

	var missing, stale []string
	for name, file := range inCode {
		if !inExample[name] {
			missing = append(missing, name+" (named in functions-src/"+file+")")
		}
	}
	for name := range inExample {
		if _, ok := inCode[name]; !ok {
			stale = append(stale, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	assert.Empty(t, missing, ".env.example lacks these: add a line, `# NAME=` with a comment saying what it is")
	assert.Empty(t, stale, ".env.example lists these, which no code reads: remove them")
}
