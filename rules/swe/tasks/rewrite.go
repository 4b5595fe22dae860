package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/legobuild/lego/rules/swe/llm"
)

// Site is a function whose body the llm_rewrite strategy has a model
// write again from its header (decorators, def line, docstring), as
// modify.py --rewrite-sites lists it. Lines are 1-based and inclusive.
type Site struct {
	File      string `json:"file"`
	Function  string `json:"function"`
	Line      int    `json:"line"`
	Header    string `json:"header"`
	BodyStart int    `json:"body_start"`
	BodyEnd   int    `json:"body_end"`
	Body      string `json:"body"`
	Indent    string `json:"indent"`
	Text      string `json:"text"` // the file
}

// Sites is modify.py --rewrite-sites' output.
type Sites struct {
	Repo  string `json:"repo"`
	Seed  int64  `json:"seed"`
	Sites []Site `json:"sites"`
}

// RewritePrompt asks for the body of s's function. The model sees the
// file with the body taken out, so it knows the helpers around it, but
// not the body itself.
func RewritePrompt(s Site) []llm.Message {
	lines := strings.SplitAfter(s.Text, "\n")
	var ctx strings.Builder
	for i, l := range lines {
		switch n := i + 1; {
		case n == s.BodyStart:
			ctx.WriteString(s.Indent + "# <the body to write>\n")
		case n > s.BodyStart && n <= s.BodyEnd:
		default:
			ctx.WriteString(l)
		}
	}
	return []llm.Message{
		{Role: "system", Content: "You are an expert Python programmer. You write the body of a function from its signature and docstring. " +
			"Reply with one ```python code block holding only the body's statements (no def line, no docstring)."},
		{Role: "user", Content: fmt.Sprintf("The file %s, with the body of %s taken out:\n\n```python\n%s```\n\nWrite the body of this function:\n\n```python\n%s```",
			s.File, s.Function, ctx.String(), s.Header)},
	}
}

var fence = regexp.MustCompile("(?s)```[a-zA-Z0-9]*\\n(.*?)```")

// ApplyRewrite makes the candidate of a model's reply: the function with
// the reply as its body. bug_patch puts the rewrite in, patch restores
// the original. A reply that gives the body back unchanged is an empty
// candidate.
func ApplyRewrite(repo string, seed int64, s Site, reply string) Candidate {
	code := reply
	if m := fence.FindStringSubmatch(reply); m != nil {
		code = m[1]
	}
	body := reindent(dropHeader(code), s.Indent)
	c := Candidate{Repo: repo, File: s.File, Function: s.Function, Line: s.Line, Strategy: "llm_rewrite", Modifier: "body_rewrite", Seed: seed}
	if strings.TrimSpace(body) == "" {
		c.Empty, c.Reason = true, "the model wrote no body"
		return c
	}
	if normalize(body) == normalize(s.Body) {
		c.Empty, c.Reason = true, "the model wrote the original body back"
		return c
	}
	old := strings.SplitAfter(s.Text, "\n")
	if old[len(old)-1] == "" {
		old = old[:len(old)-1]
	}
	newBody := strings.SplitAfter(body, "\n")
	if newBody[len(newBody)-1] == "" {
		newBody = newBody[:len(newBody)-1]
	}
	a, b := s.BodyStart-1, s.BodyEnd
	c.BugPatch = ReplaceDiff(s.File, old, a, b, newBody)
	modified := append(append(append([]string{}, old[:a]...), newBody...), old[b:]...)
	c.Patch = ReplaceDiff(s.File, modified, a, a+len(newBody), old[a:b])
	sum := sha256.Sum256([]byte(c.BugPatch))
	c.InstanceID = fmt.Sprintf("%s.llm_rewrite.%s", repo, hex.EncodeToString(sum[:4]))
	return c
}

// dropHeader removes a def line and docstring the model wrote although
// told not to.
func dropHeader(code string) string {
	lines := strings.SplitAfter(code, "\n")
	i := 0
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "@") {
		for i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "@") {
			i++
		}
	}
	if i >= len(lines) {
		return code
	}
	t := strings.TrimSpace(lines[i])
	if !strings.HasPrefix(t, "def ") && !strings.HasPrefix(t, "async def ") {
		return code
	}
	for i < len(lines) && !strings.HasSuffix(strings.TrimSpace(strings.SplitN(lines[i], "#", 2)[0]), ":") {
		i++
	}
	i++
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i < len(lines) {
		t := strings.TrimSpace(lines[i])
		for _, q := range []string{`"""`, `'''`} {
			if !strings.HasPrefix(t, q) {
				continue
			}
			if strings.Count(t, q) < 2 || t == q {
				for i++; i < len(lines) && !strings.Contains(lines[i], q); i++ {
				}
			}
			i++
			break
		}
	}
	if i > len(lines) {
		return ""
	}
	return strings.Join(lines[i:], "")
}

// reindent moves code's common indentation to indent and ends it with a
// newline.
func reindent(code, indent string) string {
	lines := strings.Split(strings.TrimRight(code, " \t\n"), "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			continue
		}
		b.WriteString(indent + l[common:] + "\n")
	}
	return b.String()
}

func normalize(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, strings.TrimRight(l, " \t"))
		}
	}
	return strings.Join(out, "\n")
}

// ReplaceDiff is the unified diff (three lines of context) that replaces
// lines[a:b] of file with repl; lines keep their "\n".
func ReplaceDiff(file string, lines []string, a, b int, repl []string) string {
	from, to := max(0, a-3), min(len(lines), b+3)
	oldN, newN := to-from, to-from-(b-a)+len(repl)
	start := func(n int) int {
		if n == 0 {
			return from // an empty range names the line before it
		}
		return from + 1
	}
	var d strings.Builder
	fmt.Fprintf(&d, "--- a/%s\n+++ b/%s\n@@ -%d,%d +%d,%d @@\n", file, file, start(oldN), oldN, start(newN), newN)
	line := func(prefix, l string) {
		d.WriteString(prefix + l)
		if !strings.HasSuffix(l, "\n") {
			d.WriteString("\n\\ No newline at end of file\n")
		}
	}
	for _, l := range lines[from:a] {
		line(" ", l)
	}
	for _, l := range lines[a:b] {
		line("-", l)
	}
	for _, l := range repl {
		line("+", l)
	}
	for _, l := range lines[b:to] {
		line(" ", l)
	}
	return d.String()
}

// IssuePrompt asks for a problem statement of a kept candidate, written as
// a user would report what they see: the failing tests and their
// messages, and (for the model's understanding only) the change that
// broke them, which the issue must not give away.
func IssuePrompt(c Candidate, f2p []string, bug Run) []llm.Message {
	return []llm.Message{
		{Role: "system", Content: "You write GitHub issues for a Python project. An issue describes what a user observes: " +
			"the behaviour, how to reproduce it, what was expected. It never says where the bug is in the code or how to fix it."},
		{Role: "user", Content: fmt.Sprintf("This change to %s introduced a bug (do not mention or quote it):\n\n```diff\n%s```\n\n"+
			"These tests now fail:\n\n%s\nWrite the issue a user of %s would open. Reply with the issue text only.",
			c.File, c.BugPatch, strings.TrimPrefix(ProblemStatement(f2p, bug), "After a recent change, some tests fail.\n\n"), c.Repo)},
	}
}
