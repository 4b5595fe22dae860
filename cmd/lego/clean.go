package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/starlark"
)

func runClean(args []string) error {
	fs := flag.NewFlagSet("clean", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	expunge := fs.Bool("expunge", false, "also delete the cache (--cache_dir): what lego stored there")
	if _, err := parseCommand(fs, args); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := starlark.FindRoot(wd)
	if err != nil {
		return err
	}
	// The cache first: a refused --cache_dir leaves lego-out too.
	if *expunge {
		if err := checkExpunge(c.cacheDir, root); err != nil {
			return err
		}
		if err := cas.Expunge(c.cacheDir); err != nil {
			return err
		}
	}
	return cas.RemoveAll(filepath.Join(root, engine.OutDir))
}

// workspaceFiles mark a workspace root, lego's or Bazel's.
var workspaceFiles = []string{starlark.WorkspaceFileName, "WORKSPACE.bazel", "MODULE.bazel", "MODULE"}

// checkExpunge refuses to take for a cache a directory that is surely not
// one: /, $HOME, a workspace root, or a directory holding the workspace
// at root. (cas.Expunge refuses any other directory without the marker.)
func checkExpunge(dir, root string) error {
	if dir == "" {
		return errors.New("clean --expunge: --cache_dir is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	refuse := func(why string) error {
		return fmt.Errorf("clean --expunge: refusing to delete --cache_dir=%s: %s", abs, why)
	}
	if filepath.Dir(real) == real {
		return refuse("it is the filesystem root")
	}
	if home, err := os.UserHomeDir(); err == nil && sameDir(real, home) {
		return refuse("it is the home directory")
	}
	for _, f := range workspaceFiles {
		if st, err := os.Stat(filepath.Join(real, f)); err == nil && !st.IsDir() {
			return refuse("it is a workspace root (it holds " + f + ")")
		}
	}
	if rel, err := filepath.Rel(real, root); err == nil && filepath.IsLocal(rel) {
		return refuse("it holds the workspace " + root)
	}
	return nil
}

// sameDir reports whether a and b are one directory.
func sameDir(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// dirFlag is a directory flag that may not be empty: "" would make the
// working directory the cache.
type dirFlag struct{ p *string }

func (d dirFlag) String() string {
	if d.p == nil {
		return ""
	}
	return *d.p
}

func (d dirFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty (it would make the working directory the cache)")
	}
	*d.p = s
	return nil
}
