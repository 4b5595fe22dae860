package starlark

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/engine"
)

// FindRoot returns the nearest directory at or above dir holding a
// WORKSPACE file, with symlinks resolved: labels and keys are relative
// to it.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for d := abs; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, WorkspaceFileName)); err == nil && !st.IsDir() {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s file in %s or any directory above it: not inside a lego workspace", WorkspaceFileName, abs)
		}
	}
}

// ParseDefines reads --define KEY=VALUE flags, the values config() reads.
func ParseDefines(defines []string) (map[string]string, error) {
	defs := map[string]string{}
	for _, d := range defines {
		k, v, ok := strings.Cut(d, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--define %q: want KEY=VALUE", d)
		}
		defs[k] = v
	}
	return defs, nil
}

// WorkingPackage is the package of the working directory, against which
// relative patterns resolve ("" at the root or outside the workspace).
func (l *Loader) WorkingPackage() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(wd); err == nil {
		wd = real
	}
	rel, err := filepath.Rel(l.root, wd)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return ""
	}
	return filepath.ToSlash(rel)
}

// ParsePatterns parses command-line target patterns, relative to the
// working package.
func (l *Loader) ParsePatterns(args []string) ([]engine.Pattern, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no target pattern given (e.g. //... or //pkg:name)")
	}
	pkg := l.WorkingPackage()
	pats := make([]engine.Pattern, len(args))
	for i, a := range args {
		p, err := engine.ParsePattern(a, pkg)
		if err != nil {
			return nil, err
		}
		pats[i] = p
	}
	return pats, nil
}

// ExpandArgs turns command-line patterns into a de-duplicated label list.
func (l *Loader) ExpandArgs(args []string) ([]engine.Label, error) {
	pats, err := l.ParsePatterns(args)
	if err != nil {
		return nil, err
	}
	seen := map[engine.Label]bool{}
	var out []engine.Label
	for _, p := range pats {
		labels, err := l.Expand(p)
		if err != nil {
			return nil, err
		}
		for _, lab := range labels {
			if !seen[lab] {
				seen[lab] = true
				out = append(out, lab)
			}
		}
	}
	return out, nil
}
