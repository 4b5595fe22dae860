package swe

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/gitrepo"
	"github.com/legobuild/lego/rules/swe/install"
)

// The tools of swe_env_set and of task_set's instances built on one.
var (
	gitFiles = legotool.Register(&legotool.Tool{Name: "git-files", Run: runGitFiles,
		Usage: "copy files of a repository at a commit into a directory (an env's requirements)"})
	gitArchive = legotool.Register(&legotool.Tool{Name: "git-archive", Run: runGitArchive,
		Usage: "write the files of a repository at a commit (an instance's tree at its base)"})
	envVenv = legotool.Register(&legotool.Tool{Name: "env-venv", Run: runEnvVenv,
		Usage: "build a directory env's Python environment from install_config steps"})
	envInstance = legotool.Register(&legotool.Tool{Name: "env-instance", Run: runEnvInstance,
		Usage: "build a directory env's instance: its tree at the base commit, pre_install and install"})
)

func runGitFiles(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		gitDir := fs.String("git", "", "the repository")
		commit := fs.String("commit", "", "the commit")
		var paths legotool.Strings
		fs.Var(&paths, "path", "a file to copy, by its path in the repository (repeatable; a missing one is left out)")
		return func(out string) error {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			return gitrepo.Files(ctx, *gitDir, *commit, paths, out)
		}
	})
}

func runGitArchive(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		gitDir := fs.String("git", "", "the repository")
		commit := fs.String("commit", "", "the commit (40 hex digits)")
		return func(out string) error { return gitrepo.Archive(ctx, *gitDir, *commit, out) }
	})
}

// runEnvVenv builds a directory env's Python environment at
// install.DirRoot/venv, the requirements files at DirRoot/reqs, and
// copies it (with the failure record, if a step failed) into the output.
func runEnvVenv(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		gitDir := fs.String("git", "", "the repository")
		commit := fs.String("commit", "", "the env's commit")
		var paths, steps legotool.Strings
		fs.Var(&paths, "path", "a requirements file of the repository (repeatable)")
		fs.Var(&steps, "step", "a shell step (repeatable), run with the environment first on PATH")
		return func(out string) error {
			return atDirRoot(func(root string) error {
				reqs := filepath.Join(root, "reqs")
				if err := os.MkdirAll(reqs, 0o755); err != nil {
					return err
				}
				if err := gitrepo.Files(ctx, *gitDir, *commit, paths, reqs); err != nil {
					return err
				}
				pre := install.Prelude(filepath.Join(root, "venv"), nil)
				if err := runSteps(ctx, root, pre, steps); err != nil {
					return err
				}
				return copyOut(root, out, "venv")
			})
		}
	})
}

// runEnvInstance builds a directory env's instance at install.DirRoot:
// the env's venv, the tree at the base commit with its .git as testbed,
// pre_install and install run in it; all copied into the output.
func runEnvInstance(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		env := fs.String("env", "", "the env (env-venv's output)")
		tree := fs.String("tree", "", "the repository's files at the base commit")
		dotgit := fs.String("git", "", "the instance's .git")
		prelude := fs.String("prelude", "", "the shell line each step starts with (PATH, env_vars)")
		var steps legotool.Strings
		fs.Var(&steps, "step", "a shell step run in the repository (repeatable)")
		return func(out string) error {
			return atDirRoot(func(root string) error {
				testbed := filepath.Join(root, "testbed")
				for _, c := range [][2]string{{filepath.Join(*env, "venv"), filepath.Join(root, "venv")},
					{filepath.Join(*env, install.Failed), filepath.Join(root, install.Failed)},
					{*tree, testbed}, {*dotgit, filepath.Join(testbed, ".git")}} {
					if err := copyWritable(c[0], c[1]); err != nil {
						return err
					}
				}
				if err := runSteps(ctx, testbed, *prelude, steps); err != nil {
					return err
				}
				return copyOut(root, out, "venv", "testbed")
			})
		}
	})
}

// atDirRoot runs fn in install.DirRoot, which must be free: in the
// sandbox each action has its own /tmp; with --sandbox=none two actions
// would build in one place.
func atDirRoot(fn func(root string) error) error {
	root := install.DirRoot
	if err := os.Mkdir(root, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s is in use: directory envs from install_config are built there, one action at a time (lego's sandbox gives each its own /tmp)", root)
		}
		return err
	}
	defer os.RemoveAll(root)
	return fn(root)
}

// runSteps runs install.Wrap'd steps in dir; a failed step leaves
// root's install.Failed and stops the others, and is no error of the tool.
func runSteps(ctx context.Context, dir, prelude string, steps []string) error {
	failed := filepath.Join(install.DirRoot, install.Failed)
	for i, s := range steps {
		cmd := exec.CommandContext(ctx, "bash", "-c", install.Wrap(i, prelude, s, failed))
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("step %d: %v", i, err)
		}
	}
	return nil
}

// copyOut copies the named entries of root, and the failure record if
// there is one, into out.
func copyOut(root, out string, names ...string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, n := range append(names, install.Failed) {
		if err := copyWritable(filepath.Join(root, n), filepath.Join(out, n)); err != nil {
			return err
		}
	}
	return nil
}

// copyWritable copies src (a file or a tree, symbolic links as links)
// to dst, writable by its owner; a missing src is nothing to copy.
func copyWritable(src, dst string) error {
	if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if b, err := exec.Command("cp", "-a", "--no-preserve=ownership", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copying %s: %v: %s", src, err, strings.TrimSpace(string(b)))
	}
	if b, err := exec.Command("chmod", "-R", "u+w", dst).CombinedOutput(); err != nil {
		return fmt.Errorf("chmod %s: %v: %s", dst, err, strings.TrimSpace(string(b)))
	}
	return nil
}
