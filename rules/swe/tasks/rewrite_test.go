package tasks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const wrapPy = `"""Text helpers."""


def clamp(x, lo, hi):
    """x limited to [lo, hi]."""
    # the usual way
    if x < lo:
        return lo
    return min(x, hi)


def last():
    return 1`

var clampSite = Site{File: "pkg/util.py", Function: "clamp", Line: 4,
	Header: "def clamp(x, lo, hi):\n    \"\"\"x limited to [lo, hi].\"\"\"\n", BodyStart: 6, BodyEnd: 9,
	Body: "    # the usual way\n    if x < lo:\n        return lo\n    return min(x, hi)\n", Indent: "    ", Text: wrapPy}

// The model's reply becomes the body, whatever wrapping it came in, and
// the two patches go each way with git apply; an unchanged body is no
// candidate.
func TestApplyRewrite(t *testing.T) {
	replies := map[string]string{
		"bare":   "if x > hi:\n    return hi\nreturn max(x, lo)\n",
		"fenced": "Here it is:\n```python\n        if x > hi:\n            return hi\n\n        return max(x, lo)\n```\nDone.",
		"header": "```python\ndef clamp(x, lo, hi):\n    \"\"\"x limited to\n    [lo, hi].\"\"\"\n    if x > hi:\n        return hi\n    return max(x, lo)\n```",
	}
	for name, reply := range replies {
		c := ApplyRewrite("pkg", 3, clampSite, reply)
		if c.Empty || c.Strategy != "llm_rewrite" || !strings.HasPrefix(c.InstanceID, "pkg.llm_rewrite.") || c.File != "pkg/util.py" {
			t.Fatalf("%s: candidate %+v", name, c)
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "pkg/util.py")
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, []byte(wrapPy), 0o644)
		gitApply(t, dir, c.BugPatch)
		got, _ := os.ReadFile(file)
		if !strings.Contains(string(got), "    \"\"\"x limited to [lo, hi].\"\"\"\n    if x > hi:\n        return hi\n") ||
			!strings.Contains(string(got), "return max(x, lo)\n\n\ndef last():\n    return 1") || strings.Contains(string(got), "min(") {
			t.Errorf("%s: after bug_patch:\n%s", name, got)
		}
		gitApply(t, dir, c.Patch)
		if got, _ := os.ReadFile(file); string(got) != wrapPy {
			t.Errorf("%s: patch does not restore the file:\n%s", name, got)
		}
	}
	if c := ApplyRewrite("pkg", 3, clampSite, "```python\nif x < lo:\n    return lo\n# again\nreturn min(x, hi)\n```"); !c.Empty {
		t.Errorf("the original body back: %+v", c)
	}
	if c := ApplyRewrite("pkg", 3, clampSite, "I cannot help with that."); c.Empty {
		t.Errorf("prose is a body (that will not compile; the harness rejects it): %+v", c)
	}
}

// The prompt shows the file without the body.
func TestRewritePromptHidesTheBody(t *testing.T) {
	m := RewritePrompt(clampSite)
	if len(m) != 2 || strings.Contains(m[1].Content, "min(x, hi)") || !strings.Contains(m[1].Content, "def last():") ||
		!strings.Contains(m[1].Content, `"""x limited to [lo, hi]."""`) {
		t.Errorf("prompt %q", m[1].Content)
	}
}

func gitApply(t *testing.T, dir, patch string) {
	t.Helper()
	cmd := exec.Command("git", "apply", "-")
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(patch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git apply: %v\n%s\n%s", err, out, patch)
	}
}
