package infratest_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
)

// shellCommands is every command line in the ```sh blocks of text.
func shellCommands(text string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```sh"):
			in = true
		case strings.HasPrefix(trimmed, "```"):
			in = false
		case in && trimmed != "" && !strings.HasPrefix(trimmed, "#"):
			out = append(out, trimmed)
		}
	}
	return out
}

// section is the part of a Markdown text from heading to the next heading
// of the same level.
func section(text, heading string) string {
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	rest := text[i+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// The deploy guides may hold only commands that TestInfraOnMoto or
// TestAWSTargetOnMoto runs (or that need a Netlify account, each named
// with its reason), and hold every one they run: a command changed in a
// README and not in the test, or the other way round, fails here.
func TestDeployGuidesRunOnlyTestedCommands(t *testing.T) {
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	infra, err := os.ReadFile(filepath.Join(root, "infra", "README.md"))
	require.NoError(t, err)
	deploy := section(string(readme), "## Deploy to your own Netlify and AWS")
	require.NotEmpty(t, deploy, "README.md has its deploy guide")

	tested := map[string]bool{destroyCommand: true, destroyAWS: true}
	for _, c := range slices.Concat(guide, guideAWS) {
		tested[c] = true
	}
	var all []string
	for _, doc := range []struct{ name, text string }{{"README.md", deploy}, {"infra/README.md", string(infra)}} {
		cmds := shellCommands(doc.text)
		require.NotEmpty(t, cmds, doc.name)
		all = append(all, cmds...)
		for _, c := range cmds {
			_, why := notRunHere[c]
			assert.Truef(t, tested[c] || why, "%s: %q is neither run by TestInfraOnMoto nor listed in notRunHere with its reason", doc.name, c)
		}
	}
	for _, c := range slices.Concat(guide, guideAWS, []string{destroyCommand, destroyAWS}) {
		assert.Contains(t, all, c, "TestInfraOnMoto or TestAWSTargetOnMoto runs %q but no deploy guide gives it", c)
	}
	for c := range notRunHere {
		assert.Contains(t, all, c, "notRunHere lists %q, which no guide gives any more", c)
	}

	// Each guide's commands in the order the test runs them.
	inOrder(t, shellCommands(section(deploy, "### 1. AWS, with Terraform")+section(deploy, "### 3. Netlify")+
		section(deploy, "### 4. Check what the functions may do")), guide)
	inOrder(t, shellCommands(section(deploy, "### Target aws")), guideAWS)
}

func inOrder(t *testing.T, given, tested []string) {
	t.Helper()
	last := -1
	for _, c := range tested {
		i := indexOf(given, c)
		if i < 0 {
			continue // in infra/README.md only
		}
		assert.Greaterf(t, i, last, "README.md gives %q out of the tested order", c)
		last = i
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// checkQuote is the README's quote of `make aws-check` on moto.
func checkQuote(t *testing.T, root string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	const intro = "As `make\ntest` prints it against moto:\n\n```\n"
	text := string(readme)
	i := strings.Index(text, intro)
	require.GreaterOrEqual(t, i, 0, "README.md quotes `make aws-check`'s output after %q", intro)
	rest := text[i+len(intro):]
	return rest[:strings.Index(rest, "```")]
}
