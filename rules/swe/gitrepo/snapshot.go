package gitrepo

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Snapshot copies source files into the tree out, each at its path
// relative to strip (git_repo with a path: a source snapshot without
// history). out exists afterwards, even with no files.
func Snapshot(srcs []string, strip, out string) error {
	prefix := strings.TrimSuffix(strip, "/") + "/"
	for _, src := range srcs {
		rel, ok := strings.CutPrefix(src, prefix)
		if !ok || rel == "" {
			return fmt.Errorf("%s is not under %s", src, strip)
		}
		if err := copyFile(src, filepath.Join(out, rel)); err != nil {
			return err
		}
	}
	return os.MkdirAll(out, 0o755)
}

func copyFile(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
