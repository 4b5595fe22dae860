package starlark

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	sl "go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/legobuild/lego/engine"
)

// pkgBuilder collects the targets of the BUILD file being evaluated.
type pkgBuilder struct {
	pkg      *engine.Package
	defaults map[string]sl.Value
	files    []string // package files for glob, listed once
	listed   bool
}

func (l *Loader) loadPackage(name string) (*engine.Package, error) {
	rel := BuildFileName
	if name != "" {
		rel = name + "/" + BuildFileName
	}
	src, err := l.reads.ReadFile(filepath.Join(l.root, filepath.FromSlash(rel)))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no package //%s: %s does not exist", name, rel)
		}
		return nil, err
	}
	pb := &pkgBuilder{pkg: &engine.Package{Name: name, BuildFile: rel, Targets: map[string]*engine.Target{}}}
	thread := l.newThread(&loadTask{}, rel, name)
	thread.SetLocal(localPkg, pb)
	if _, err := sl.ExecFileOptions(fileOptions, thread, rel, src, l.predeclared()); err != nil {
		return nil, evalError(err)
	}
	return pb.pkg, nil
}

var (
	predeclaredOnce sync.Once
	predeclaredBase sl.StringDict
)

func (l *Loader) predeclared() sl.StringDict {
	predeclaredOnce.Do(func() {
		predeclaredBase = sl.StringDict{
			"glob":         sl.NewBuiltin("glob", builtinGlob),
			"package":      sl.NewBuiltin("package", builtinPackage),
			"package_name": sl.NewBuiltin("package_name", builtinPackageName),
			"rule":         sl.NewBuiltin("rule", builtinRule),
			"provider":     sl.NewBuiltin("provider", builtinProvider),
			"DefaultInfo":  defaultInfo,
			"struct":       sl.NewBuiltin("struct", starlarkstruct.Make),
			"attr":         attrModule,
		}
	})
	d := make(sl.StringDict, len(predeclaredBase)+len(l.natives)+1)
	for k, v := range predeclaredBase {
		d[k] = v
	}
	for k, v := range l.natives {
		d[k] = v
	}
	d["config"] = sl.NewBuiltin("config", l.builtinConfig)
	return d
}

func currentPkg(thread *sl.Thread, fn string) (*pkgBuilder, error) {
	pb, _ := thread.Local(localPkg).(*pkgBuilder)
	if pb == nil {
		return nil, fmt.Errorf("%s() can only be called while a BUILD file is evaluated, not when a .star file is loaded", fn)
	}
	return pb, nil
}

// callPos is where in the BUILD file the current call comes from (the
// macro call, when a macro declared the target).
func callPos(thread *sl.Thread, buildFile string) string {
	for d := 1; d < thread.CallStackDepth(); d++ {
		if p := thread.CallFrame(d).Pos; p.Filename() == buildFile {
			return p.String()
		}
	}
	return thread.CallFrame(1).Pos.String()
}

func builtinPackageName(thread *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	pb, err := currentPkg(thread, b.Name())
	if err != nil {
		return nil, err
	}
	return sl.String(pb.pkg.Name), sl.UnpackArgs(b.Name(), args, kwargs)
}

// package(**defaults): default attribute values for the rules declared after it.
func builtinPackage(thread *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	pb, err := currentPkg(thread, b.Name())
	if err != nil {
		return nil, err
	}
	if len(args) > 0 {
		return nil, fmt.Errorf("package: only keyword arguments are allowed")
	}
	if len(pb.pkg.Order) > 0 {
		return nil, fmt.Errorf("package() must come before the first target of the package")
	}
	if pb.defaults != nil {
		return nil, fmt.Errorf("package() may be called only once")
	}
	pb.defaults = map[string]sl.Value{}
	for _, kv := range kwargs {
		pb.defaults[string(kv[0].(sl.String))] = kv[1]
	}
	return sl.None, nil
}

// config(name, default): the --define value of name.
func (l *Loader) builtinConfig(thread *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	var name string
	var def sl.Value = sl.None
	if err := sl.UnpackArgs(b.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if v, ok := l.defines[name]; ok {
		return sl.String(v), nil
	}
	if def == sl.None {
		return nil, fmt.Errorf("config %q has no default and is not set: pass --define %s=VALUE", name, name)
	}
	return def, nil
}

// glob(include, exclude=[]): package files matching the patterns, not
// descending into subpackages.
func builtinGlob(thread *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	pb, err := currentPkg(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var include, exclude *sl.List
	allowEmpty := true
	if err := sl.UnpackArgs(b.Name(), args, kwargs, "include", &include, "exclude?", &exclude, "allow_empty?", &allowEmpty); err != nil {
		return nil, err
	}
	inc, err := stringsOf(include, "include")
	if err != nil {
		return nil, err
	}
	var exc []string
	if exclude != nil {
		if exc, err = stringsOf(exclude, "exclude"); err != nil {
			return nil, err
		}
	}
	if !pb.listed {
		root := thread.Local(localRoot).(string)
		reads, _ := thread.Local(localReads).(*engine.Reads)
		pb.files, err = listPackageFiles(filepath.Join(root, filepath.FromSlash(pb.pkg.Name)), reads)
		if err != nil {
			return nil, err
		}
		pb.listed = true
	}
	var out []sl.Value
	for _, f := range pb.files {
		if matchAny(inc, f) && !matchAny(exc, f) {
			out = append(out, sl.String(f))
		}
	}
	if len(out) == 0 && !allowEmpty {
		return nil, fmt.Errorf("glob(%v) matched no files", inc)
	}
	return sl.NewList(out), nil
}

const localRoot = "lego.root"

// localReads is the thread-local key of the loader's Reads.
const localReads = "lego.reads"

func stringsOf(l *sl.List, what string) ([]string, error) {
	out := make([]string, l.Len())
	for i := 0; i < l.Len(); i++ {
		s, ok := sl.AsString(l.Index(i))
		if !ok {
			return nil, fmt.Errorf("%s: element %d is %s, want string", what, i, l.Index(i).Type())
		}
		out[i] = s
	}
	return out, nil
}

// listPackageFiles lists files below dir, package-relative and sorted,
// skipping subpackages and the output tree.
func listPackageFiles(dir string, reads *engine.Reads) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir {
				if d.Name() == engine.OutDir || d.Name() == ".git" {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(p, BuildFileName)); err == nil {
					return filepath.SkipDir
				}
			}
			reads.Dir(p)
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out, err
}

func matchAny(patterns []string, f string) bool {
	for _, p := range patterns {
		if globMatch(strings.Split(p, "/"), strings.Split(f, "/")) {
			return true
		}
	}
	return false
}

// globMatch matches path segments against pattern segments; "**" matches
// any number of segments.
func globMatch(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if globMatch(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := filepath.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}
