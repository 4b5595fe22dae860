// Package starlark loads a workspace: WORKSPACE, BUILD files and the .star
// modules they load, into engine targets. It also runs the implementations
// of rules defined in Starlark.
package starlark

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	sl "go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/legobuild/lego/engine"
)

// BuildFileName marks a package directory.
const BuildFileName = "BUILD"

// WorkspaceFileName marks the workspace root.
const WorkspaceFileName = "WORKSPACE"

var fileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: false}

// Loader loads packages of one workspace; it is safe for concurrent use.
type Loader struct {
	root    string
	defines map[string]string
	natives sl.StringDict

	// reads records what loading read, for the build snapshot.
	reads *engine.Reads

	mu       sync.Mutex
	packages map[string]*pkgEntry
	modules  map[string]*moduleEntry
}

type pkgEntry struct {
	done chan struct{}
	pkg  *engine.Package
	err  error
}

// NewLoader makes a loader for the workspace at root; defines are the
// --define values config() reads.
func NewLoader(root string, defines map[string]string) (*Loader, error) {
	l := &Loader{root: root, defines: defines, reads: engine.NewReads(), packages: map[string]*pkgEntry{}, modules: map[string]*moduleEntry{}}
	l.natives = sl.StringDict{}
	for _, r := range Reference().Rules {
		l.natives[r.Kind()] = &ruleClass{rule: r, kind: r.Kind()}
	}
	if err := l.loadWorkspaceFile(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Loader) Root() string { return l.root }

// Reads is what the loader has read so far; analysis adds to it.
func (l *Loader) Reads() *engine.Reads { return l.reads }

func (l *Loader) loadWorkspaceFile() error {
	path := filepath.Join(l.root, WorkspaceFileName)
	src, err := l.reads.ReadFile(path)
	if err != nil {
		return err
	}
	thread := &sl.Thread{Name: WorkspaceFileName}
	limitSteps(thread)
	workspace := sl.NewBuiltin("workspace", func(_ *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
		var name string
		return sl.None, sl.UnpackArgs(b.Name(), args, kwargs, "name", &name)
	})
	_, err = sl.ExecFileOptions(fileOptions, thread, WorkspaceFileName, src, sl.StringDict{"workspace": workspace})
	return evalError(err)
}

// maxSteps bounds the Starlark steps of one file's evaluation or one
// rule implementation's call: BUILD files may loop (While is on), and one
// that never ends must fail, not hang the build. Large generated BUILD
// files take a few million steps; this is about three seconds.
var maxSteps uint64 = 100_000_000

func limitSteps(thread *sl.Thread) {
	thread.SetMaxExecutionSteps(maxSteps)
	thread.OnMaxSteps = func(th *sl.Thread) {
		th.Cancel(fmt.Sprintf("more than %d steps (an endless loop?)", maxSteps))
	}
}

// evalError turns a Starlark error into "file:line:col: message" with the
// Starlark stack when it helps.
func evalError(err error) error {
	if err == nil {
		return nil
	}
	var ee *sl.EvalError
	if errors.As(err, &ee) {
		pos := ""
		if n := len(ee.CallStack); n > 0 {
			// The innermost frame with a position in a file.
			for i := n - 1; i >= 0; i-- {
				if p := ee.CallStack[i].Pos; p.IsValid() && p.Filename() != "<builtin>" {
					pos = p.String()
					break
				}
			}
		}
		var uerr *engine.Error
		if errors.As(ee.Unwrap(), &uerr) {
			return uerr
		}
		msg := ee.Msg
		return &engine.Error{Pos: pos, Msg: msg}
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return &engine.Error{Pos: se.Pos.String(), Msg: se.Msg}
	}
	return err
}

// Package loads (once) the package pkg.
func (l *Loader) Package(pkg string) (*engine.Package, error) {
	l.mu.Lock()
	e, ok := l.packages[pkg]
	if !ok {
		e = &pkgEntry{done: make(chan struct{})}
		l.packages[pkg] = e
		l.mu.Unlock()
		e.pkg, e.err = l.loadPackage(pkg)
		close(e.done)
		return e.pkg, e.err
	}
	l.mu.Unlock()
	<-e.done
	return e.pkg, e.err
}

// LoadPackages loads packages in parallel and returns the first error in
// package order.
func (l *Loader) LoadPackages(pkgs []string) error {
	errs := make([]error, len(pkgs))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0)+1; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				_, errs[i] = l.Package(pkgs[i])
			}
		}()
	}
	for i := range pkgs {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// Packages lists the packages at or below pkg, sorted. Not searched, as
// Bazel treats nested repositories: hidden directories, lego-out and
// testdata (fixtures, not packages of this workspace) and any directory
// with a WORKSPACE file of its own (another workspace, e.g. an example).
func (l *Loader) Packages(under string) ([]string, error) {
	start := filepath.Join(l.root, filepath.FromSlash(under))
	var out []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != start && (strings.HasPrefix(name, ".") || name == engine.OutDir || name == "testdata") {
			return filepath.SkipDir
		}
		l.reads.Dir(p)
		if p != l.root && isFile(filepath.Join(p, WorkspaceFileName)) {
			return filepath.SkipDir
		}
		if st, err := os.Stat(filepath.Join(p, BuildFileName)); err == nil && !st.IsDir() {
			rel, _ := filepath.Rel(l.root, p)
			if rel == "." {
				rel = ""
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("no package //%s: %w", under, err)
	}
	sort.Strings(out)
	return out, nil
}

// Expand lists the targets a pattern names.
func (l *Loader) Expand(p engine.Pattern) ([]engine.Label, error) {
	if !p.Recursive && !p.All {
		pk, err := l.Package(p.Pkg)
		if err != nil {
			return nil, err
		}
		if _, ok := pk.Targets[p.Name]; !ok {
			l.reads.Dir(filepath.Join(l.root, filepath.FromSlash(p.Pkg)))
			// A source file is a target too.
			if st, err := os.Stat(filepath.Join(l.root, filepath.FromSlash(p.Pkg), filepath.FromSlash(p.Name))); err != nil || st.IsDir() {
				msg := fmt.Sprintf("no target %s", engine.Label{Pkg: p.Pkg, Name: p.Name})
				if s := engine.Closest(p.Name, pk.Order, 3); len(s) > 0 {
					for i := range s {
						s[i] = engine.Label{Pkg: p.Pkg, Name: s[i]}.String()
					}
					msg += "; did you mean " + strings.Join(s, ", ") + "?"
				}
				return nil, &engine.Error{Pos: pk.BuildFile, Msg: msg}
			}
		}
		return []engine.Label{{Pkg: p.Pkg, Name: p.Name}}, nil
	}
	pkgs := []string{p.Pkg}
	if p.Recursive {
		var err error
		if pkgs, err = l.Packages(p.Pkg); err != nil {
			return nil, err
		}
		if len(pkgs) == 0 {
			if dir := l.nestedWorkspace(p.Pkg); dir != "" {
				return nil, fmt.Errorf("pattern %s matches no package: %s is a workspace of its own (run lego there)", p, dir)
			}
			return nil, fmt.Errorf("pattern %s matches no package", p)
		}
	}
	if err := l.LoadPackages(pkgs); err != nil {
		return nil, err
	}
	var out []engine.Label
	for _, name := range pkgs {
		pk, _ := l.Package(name)
		for _, t := range pk.Order {
			out = append(out, engine.Label{Pkg: name, Name: t})
		}
	}
	return out, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// nestedWorkspace is the directory at or above pkg, below the root, that
// holds a WORKSPACE file of its own, or "".
func (l *Loader) nestedWorkspace(pkg string) string {
	for d := pkg; d != "" && d != "."; d = path.Dir(d) {
		if isFile(filepath.Join(l.root, filepath.FromSlash(d), WorkspaceFileName)) {
			return d
		}
	}
	return ""
}
