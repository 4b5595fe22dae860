package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/rules/swe/tasks"
)

// toolSnapshot copies source files into a tree, paths relative to --strip
// (git_repo with a path: a source snapshot without history).
func toolSnapshot(_ context.Context, args []string) error {
	return dirTool("repo-snapshot", args, func(fs *flag.FlagSet) func(string) error {
		strip := fs.String("strip", "", "path prefix the files lose in the tree")
		var srcs list
		fs.Var(&srcs, "src", "a file of the snapshot (repeatable)")
		return func(out string) error {
			prefix := strings.TrimSuffix(*strip, "/") + "/"
			for _, src := range srcs {
				rel, ok := strings.CutPrefix(src, prefix)
				if !ok || rel == "" {
					return fmt.Errorf("%s is not under %s", src, *strip)
				}
				if err := copyFile(src, filepath.Join(out, rel)); err != nil {
					return err
				}
			}
			return os.MkdirAll(out, 0o755)
		}
	})
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

// toolCollect judges a task set's runs (see tasks.Plan).
func toolCollect(_ context.Context, args []string) error {
	return dirTool("task-collect", args, func(fs *flag.FlagSet) func(string) error {
		planPath := fs.String("plan", "", "the plan the task_set rule wrote")
		return func(out string) error {
			b, err := os.ReadFile(*planPath)
			if err != nil {
				return err
			}
			var p tasks.Plan
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("%s: %v", *planPath, err)
			}
			rep, err := tasks.Collect(&p, out)
			if err != nil {
				return err
			}
			fmt.Printf("%d of %d candidates kept\n", rep.Kept, rep.Candidates)
			return nil
		}
	})
}
