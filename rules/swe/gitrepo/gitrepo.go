// Package gitrepo fetches repositories by commit and makes the sanitised
// history a real task's environment holds: the paper's guard against "git
// hacking", where an agent reads the fix from commits made after the
// issue. It drives the git command line (git must be on PATH).
package gitrepo

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CommitRE is a full commit id: lego pins sources by content, so a branch
// or a short id, which can move or become ambiguous, is not accepted.
var CommitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// git runs git with a fixed, minimal environment, so that the user's
// configuration (hooks, templates, signing) cannot change the result.
func git(ctx context.Context, dir string, stdin io.Reader, args ...string) ([]byte, error) {
	return gitEnv(ctx, dir, stdin, nil, args...)
}

var (
	configOnce sync.Once
	configPath = "/dev/null"
)

// globalConfig is git's whole global configuration: that repositories
// owned by another user are safe. Inputs are the store's, not the
// sandboxed user's, and git would refuse them, in upload-pack too, which
// a local fetch runs with a cleaned environment but the same global file.
func globalConfig() string {
	configOnce.Do(func() {
		f, err := os.CreateTemp("", "lego-gitconfig-")
		if err != nil {
			return
		}
		_, err = f.WriteString("[safe]\n\tdirectory = *\n")
		if cerr := f.Close(); err == nil && cerr == nil {
			configPath = f.Name()
		}
	})
	return configPath
}

func gitEnv(ctx context.Context, dir string, stdin io.Reader, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + globalConfig(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "TZ=UTC"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return out.Bytes(), nil
}

// initBare makes an empty repository without the template's hooks and
// samples, so that its files are the same on every machine.
func initBare(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := git(ctx, dir, nil, "init", "-q", "--bare", "--template=", "-b", "main", ".")
	return err
}

// Fetch copies every ref of src (a URL, a repository path or a bundle
// file) into a new bare repository gitDir and writes the tree of commit
// into treeDir. The copy keeps no remote, so it does not depend on where
// src was.
func Fetch(ctx context.Context, src, commit, gitDir, treeDir string) error {
	if !CommitRE.MatchString(commit) {
		return fmt.Errorf("commit %q is not a full 40-hex commit id", commit)
	}
	if _, err := os.Stat(src); err == nil {
		// A local path: git runs in gitDir.
		if src, err = filepath.Abs(src); err != nil {
			return err
		}
	}
	if err := initBare(ctx, gitDir); err != nil {
		return err
	}
	if _, err := git(ctx, gitDir, nil, "-c", "pack.threads=1", "fetch", "-q", "--no-write-fetch-head", src, "+refs/*:refs/*"); err != nil {
		return err
	}
	if _, err := git(ctx, gitDir, nil, "cat-file", "-e", commit+"^{commit}"); err != nil {
		return fmt.Errorf("commit %s is not in %s", commit, src)
	}
	return Archive(ctx, gitDir, commit, treeDir)
}

// Archive writes the files of commit into dir (which must not exist).
func Archive(ctx context.Context, gitDir, commit, dir string) error {
	out, err := git(ctx, gitDir, nil, "archive", "--format=tar", commit)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive of %s: path %q leaves the tree", commit, h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			err = writeFile(p, tr, os.FileMode(h.Mode)&0o111|0o644)
		case tar.TypeXGlobalHeader:
			// git archive's comment holding the commit id.
		default:
			err = fmt.Errorf("archive of %s: %s has unsupported type %q", commit, h.Name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Report says what Sanitize kept.
type Report struct {
	Commit  string `json:"commit"`
	Before  string `json:"before"`  // created_at, RFC 3339
	Kept    int    `json:"kept"`    // commits in the sanitised history
	Dropped int    `json:"dropped"` // commits of the source left out
	// LateAncestors counts the kept commits, the base included, dated
	// after created_at: information only. A pull request's base is often
	// newer than the pull request (it was rebased), and the base's own
	// history is not the fix.
	LateAncestors int `json:"late_ancestors,omitempty"`
}

// Sanitize writes into out the .git directory of a working tree at commit
// whose history is exactly commit and its ancestors: one branch, main, at
// commit; no tags, remotes, reflogs or other refs; only the objects
// reachable from commit, repacked, so that later commits' objects cannot
// be read. An index matching commit is written, so `git status` and
// `git diff` work in a tree that holds commit's files. Kept commits dated
// after before (created_at) are counted in the report, not dropped: what
// leaks the fix is what lies beyond the base, not the base's history.
func Sanitize(ctx context.Context, gitDir, commit string, before time.Time, out string) (*Report, error) {
	rep := &Report{Commit: commit, Before: before.UTC().Format(time.RFC3339)}
	if !CommitRE.MatchString(commit) {
		return nil, fmt.Errorf("commit %q is not a full 40-hex commit id", commit)
	}
	src, err := filepath.Abs(gitDir)
	if err != nil {
		return nil, err
	}
	if err := initBare(ctx, out); err != nil {
		return nil, err
	}
	// Only commit and its ancestors: a fetch by id, which upload-pack
	// allows for any object when told so (-c reaches it through the
	// environment on a local fetch).
	if _, err := git(ctx, out, nil, "-c", "uploadpack.allowAnySHA1InWant=true", "-c", "pack.threads=1",
		"fetch", "-q", "--no-tags", "--no-write-fetch-head", src, commit); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"update-ref", "--no-deref", "refs/heads/main", commit},
		{"config", "core.bare", "false"},
		{"config", "core.logAllRefUpdates", "false"},
		{"reflog", "expire", "--expire=all", "--all"},
		{"-c", "pack.threads=1", "repack", "-a", "-d", "-q", "-f"},
		{"prune", "--expire=now"},
	}
	for _, s := range steps {
		if _, err := git(ctx, out, nil, s...); err != nil {
			return nil, err
		}
	}
	// The index: stat data zero (no checkout), so it is the same on every
	// machine and git refreshes it on first use.
	if _, err := git(ctx, out, nil, "--work-tree=/nonexistent", "read-tree", commit); err != nil {
		return nil, err
	}
	for _, f := range []string{"logs", "FETCH_HEAD", "ORIG_HEAD", "description", "packed-refs"} {
		if err := os.RemoveAll(filepath.Join(out, f)); err != nil {
			return nil, err
		}
	}
	if _, err := git(ctx, out, nil, "fsck", "--no-dangling", "--strict"); err != nil {
		return nil, err
	}
	late, kept, err := After(ctx, out, before)
	if err != nil {
		return nil, err
	}
	rep.Kept, rep.LateAncestors = kept, len(late)
	all, err := git(ctx, src, nil, "rev-list", "--all", "--count")
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(all)))
	if err != nil {
		return nil, err
	}
	rep.Dropped = max(0, n-kept)
	return rep, nil
}

// After lists the commit objects in the repository at gitDir, reachable
// or not, whose author or committer date is after t, and counts all
// commit objects.
func After(ctx context.Context, gitDir string, t time.Time) (late []string, commits int, err error) {
	objs, err := git(ctx, gitDir, nil, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	for _, line := range strings.Split(string(objs), "\n") {
		if id, ok := strings.CutSuffix(line, " commit"); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, 0, nil
	}
	dates, err := git(ctx, gitDir, strings.NewReader(strings.Join(ids, "\n")+"\n"), "show", "-s", "--no-walk", "--stdin", "--format=%H %at %ct")
	if err != nil {
		return nil, 0, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(dates)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, 0, errors.New("git show: unexpected line " + strconv.Quote(line))
		}
		for _, s := range f[1:] {
			sec, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, 0, err
			}
			if time.Unix(sec, 0).After(t) {
				late = append(late, f[0])
				break
			}
		}
	}
	return late, len(ids), nil
}
