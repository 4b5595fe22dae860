package gitrepo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Files writes the files at paths of commit into dir, each at its path;
// a path that is not a file at commit is left out (the step that reads
// it says so).
func Files(ctx context.Context, gitDir, commit string, paths []string, dir string) error {
	if !CommitRE.MatchString(commit) {
		return fmt.Errorf("commit %q is not a full 40-hex commit id", commit)
	}
	for _, p := range paths {
		if !filepath.IsLocal(p) {
			return fmt.Errorf("path %q leaves the repository", p)
		}
		if _, err := git(ctx, gitDir, nil, "cat-file", "-e", commit+":"+p); err != nil {
			continue
		}
		b, err := git(ctx, gitDir, nil, "cat-file", "blob", commit+":"+p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
