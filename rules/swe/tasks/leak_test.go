package tasks

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
)

// Leakage as SWE-bench means it, with real git: an instance whose base
// commit is dated after created_at (its pull request was rebased) is
// kept, the late commit counted; once a later commit is visible in the
// env's .git (its objects, then a tag on it) the instance is dropped,
// the reason naming that commit.
func TestRealInstanceLeakage(t *testing.T) {
	ctx := context.Background()
	up := t.TempDir()
	git := func(dir, date string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(date, msg string, files map[string]string) string {
		t.Helper()
		for name, body := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(up, name)), 0o755)
			if err := os.WriteFile(filepath.Join(up, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		git(up, date, "add", "-A")
		git(up, date, "commit", "-q", "-m", msg)
		return git(up, date, "rev-parse", "HEAD")
	}
	const tests = "from lib import clamp\n\n\ndef test_clamp_low():\n    assert clamp(-1, 0, 5) == 0\n"
	git(up, "2026-01-01T00:00:00Z", "init", "-q")
	commit("2026-01-05T10:00:00Z", "initial", map[string]string{"lib.py": "def clamp(x, lo, hi):\n    return max(lo, x)\n", "tests/test_lib.py": tests})
	// The pull request was opened at 09:00 and rebased on a commit made
	// nine minutes later.
	createdAt := time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC)
	base := commit("2026-02-10T09:09:00Z", "readme", map[string]string{"README": "lib\n"})
	fix := commit("2026-02-12T10:00:00Z", "clamp: honour hi", map[string]string{
		"lib.py":            "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
		"tests/test_lib.py": tests + "\n\ndef test_clamp_high():\n    assert clamp(9, 0, 5) == 5\n",
	})

	work := t.TempDir()
	p := func(n string) string { return filepath.Join(work, n) }
	tree, dotgit := p("tree"), p("git")
	if err := gitrepo.Archive(ctx, up, base, tree); err != nil {
		t.Fatal(err)
	}
	san, err := gitrepo.Sanitize(ctx, up, base, createdAt, dotgit)
	if err != nil {
		t.Fatal(err)
	}
	if san.LateAncestors != 1 || san.Kept != 2 {
		t.Fatalf("sanitize report %+v; want the base's 2 commits, 1 of them (the base) after created_at", san)
	}
	os.WriteFile(p("test.diff"), []byte(git(up, "", "diff", base, fix, "--", "tests")+"\n"), 0o644)
	os.WriteFile(p("fix.diff"), []byte(git(up, "", "diff", base, fix, "--", "lib.py")+"\n"), 0o644)
	writeJSON(t, p("instance.json"), format.Task{InstanceID: "dev__lib-1", Repo: "lib", BaseCommit: base, CreatedAt: createdAt.Format(time.RFC3339),
		FailToPass: []string{"tests/test_lib.py::test_clamp_high"}, PassToPass: []string{"tests/test_lib.py::test_clamp_low"}})
	writeJSON(t, p("sanitize.json"), san)

	harness := writeHarness(t)
	judge := func() *Slot {
		t.Helper()
		res := runHarness(t, harness, "--root", tree, "--copy", "--git", dotgit, "--framework", "pytest", "--cmd", "/usr/bin/python3 -m pytest",
			"--scope-from", p("test.diff"), "--git-audit", strconv.FormatInt(createdAt.Unix(), 10), "--base", base,
			"--run", "before="+p("test.diff"), "--run", "after="+p("fix.diff"))
		writeJSON(t, p("results.json"), res)
		slot, err := JudgeSlot(SlotSpec{Real: &PlanReal{Instance: p("instance.json"), Env: "//envs:lib", Sanitize: p("sanitize.json"), Results: p("results.json")}})
		if err != nil {
			t.Fatal(err)
		}
		return slot
	}

	slot := judge()
	if slot.Task == nil || slot.Rejected != nil || slot.LateAncestors != 1 {
		t.Fatalf("a base newer than created_at: %+v %+v; want the instance kept, 1 late ancestor", slot.Rejected, slot)
	}

	// The fix's objects, fetched into the env's .git with no ref.
	git(dotgit, "", "-c", "uploadpack.allowAnySHA1InWant=true", "fetch", "-q", "--no-tags", "--no-write-fetch-head", up, fix)
	slot = judge()
	if slot.Task != nil || slot.Rejected == nil || !strings.Contains(slot.Rejected.Reason, "holds commit "+fix) {
		t.Fatalf("the fix's objects in the env: %+v; want it dropped naming %s", slot.Rejected, fix)
	}
	// And a tag on it, as a user would see it in git log --all.
	git(dotgit, "", "tag", "v1.1", fix)
	slot = judge()
	if slot.Task != nil || slot.Rejected == nil || !strings.Contains(slot.Rejected.Reason, fix) {
		t.Fatalf("a tag on the fix: %+v; want it dropped naming %s", slot.Rejected, fix)
	}
}
