package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upstream makes a repository with a history around a pull request:
// two commits before created_at (the second is the base), the fix after
// it on main, a tag on the fix, a later branch, and a reflog. It returns
// the repository, the base and the fix.
func upstream(t *testing.T) (dir, base, fix string) {
	t.Helper()
	dir = t.TempDir()
	ctx := context.Background()
	run := func(date string, args ...string) string {
		t.Helper()
		cmd := append([]string{"-c", "user.name=Dev", "-c", "user.email=dev@example.com"}, args...)
		out, err := gitEnv(ctx, dir, nil, []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, cmd...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(date, file, body, msg string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		run(date, "add", file)
		run(date, "commit", "-q", "-m", msg)
		return run(date, "rev-parse", "HEAD")
	}
	run("2026-01-01T00:00:00Z", "init", "-q", "-b", "main")
	commit("2026-01-05T10:00:00Z", "lib.py", "def f(x):\n    return x - 1\n", "initial")
	run("2026-01-05T10:00:00Z", "tag", "v0.1")
	base = commit("2026-02-01T10:00:00Z", "README", "lib\n", "readme")
	fix = commit("2026-02-12T10:00:00Z", "lib.py", "def f(x):\n    return x\n", "fix f")
	run("2026-02-12T10:00:00Z", "tag", "-a", "-m", "release", "v0.2")
	run("2026-03-01T10:00:00Z", "checkout", "-q", "-b", "later")
	commit("2026-03-01T10:00:00Z", "NEWS", "later\n", "later work")
	run("2026-03-01T10:00:00Z", "checkout", "-q", "main")
	return dir, base, fix
}

func TestFetchAndSanitize(t *testing.T) {
	ctx := context.Background()
	src, base, fix := upstream(t)
	bundle := filepath.Join(t.TempDir(), "up.bundle")
	if _, err := git(ctx, src, nil, "bundle", "create", "-q", bundle, "--all"); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	mirror, tree := filepath.Join(work, "up.git"), filepath.Join(work, "tree")
	if err := Fetch(ctx, bundle, base, mirror, tree); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "lib.py")); err != nil || !strings.Contains(string(b), "x - 1") {
		t.Fatalf("tree at base: lib.py = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(tree, "NEWS")); err == nil {
		t.Error("tree at base holds a later file")
	}
	// The mirror is the whole upstream: the fix is in it.
	if _, err := git(ctx, mirror, nil, "cat-file", "-e", fix); err != nil {
		t.Fatalf("the mirror lacks the fix: %v", err)
	}

	createdAt := time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
	dotgit := filepath.Join(work, "env", ".git")
	rep, err := Sanitize(ctx, mirror, base, createdAt, dotgit)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LateAncestors != 0 || rep.Kept != 2 || rep.Dropped != 2 {
		t.Errorf("report %+v; want 2 commits kept, 2 dropped, none late", rep)
	}
	if _, err := git(ctx, dotgit, nil, "cat-file", "-e", fix); err == nil {
		t.Error("the fix commit's object can be read in the sanitised repository")
	}
	log, err := git(ctx, dotgit, nil, "log", "--all", "--reflog", "--format=%H %cI")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], base) {
		t.Errorf("git log --all:\n%s\nwant the base and its parent", log)
	}
	refs, _ := git(ctx, dotgit, nil, "for-each-ref", "--format=%(refname)")
	if strings.TrimSpace(string(refs)) != "refs/heads/main" {
		t.Errorf("refs: %q; want refs/heads/main only", refs)
	}
	if late, n, err := After(ctx, dotgit, createdAt); err != nil || len(late) != 0 || n != 2 {
		t.Errorf("commit objects after created_at: %v of %d (%v)", late, n, err)
	}

	first := treeSum(t, dotgit)

	// Placed over the tree, it is a clean checkout of the base.
	if err := os.Rename(dotgit, filepath.Join(tree, ".git")); err != nil {
		t.Fatal(err)
	}
	st, err := git(ctx, tree, nil, "status", "--porcelain")
	if err != nil || len(st) != 0 {
		t.Errorf("git status in the env: %q %v", st, err)
	}
	if head, _ := git(ctx, tree, nil, "rev-parse", "HEAD"); strings.TrimSpace(string(head)) != base {
		t.Errorf("HEAD = %s, want %s", head, base)
	}

	// The same inputs give the same bytes: the env image's layer and
	// everything after it stay cached.
	again := filepath.Join(t.TempDir(), ".git")
	if _, err := Sanitize(ctx, mirror, base, createdAt, again); err != nil {
		t.Fatal(err)
	}
	if b := treeSum(t, again); first != b {
		t.Errorf("two sanitisations differ:\n%q\n---\n%q", first, b)
	}

	// A base dated after created_at (a rebased pull request) is
	// sanitised like any other: its history is kept, the late commit
	// counted, and nothing beyond it is there.
	late := filepath.Join(t.TempDir(), ".git")
	rep, err = Sanitize(ctx, mirror, fix, createdAt, late)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LateAncestors != 1 || rep.Kept != 3 || rep.Dropped != 1 {
		t.Errorf("base after created_at: report %+v; want 3 commits kept, the base late, 1 dropped", rep)
	}
	if out, err := git(ctx, late, nil, "rev-list", "--all"); err != nil || len(strings.Fields(string(out))) != 3 {
		t.Errorf("history of a late base: %q %v", out, err)
	}
}

func TestFetchErrors(t *testing.T) {
	ctx := context.Background()
	src, _, _ := upstream(t)
	work := t.TempDir()
	err := Fetch(ctx, src, strings.Repeat("ab", 20), filepath.Join(work, "a.git"), filepath.Join(work, "a"))
	if err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("unknown commit: %v", err)
	}
	err = Fetch(ctx, src, "main", filepath.Join(work, "b.git"), filepath.Join(work, "b"))
	if err == nil || !strings.Contains(err.Error(), "40-hex") {
		t.Errorf("a branch name: %v", err)
	}
}

// treeSum lists a directory's files with their contents.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + " " + fi.Mode().String() + " " + string(data) + "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
