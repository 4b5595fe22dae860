package swe

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/oci"
	"github.com/legobuild/lego/rules/swe/gitrepo"
	"github.com/legobuild/lego/rules/swe/install"
)

// RepoInfo is what a git_repo provides: the source tree at the commit and,
// for a repository fetched by url or bundle, its whole history (real
// tasks' envs get a sanitised copy of it).
type RepoInfo struct {
	Name   string
	Tree   *engine.File // a directory: the files, no history
	Git    *engine.File // a bare repository with every ref; nil for a path snapshot
	Commit string       // "" for a path snapshot
}

// EnvInfo is what a swe_env provides: the image holding the repository
// at Workdir with its dependencies installed (or, for a directory env, the
// directory holding both), and how its tests run.
type EnvInfo struct {
	Repo      *RepoInfo
	Image     *engine.ImageInfo // nil for a directory env
	Dir       *engine.File      // a directory env; nil for an image
	Workdir   string
	TestCmd   string
	Framework string
	// Rooted: Dir is a directory env made from install_config, laid out
	// as install.DirRoot (venv/, testbed/), where its tests run.
	Rooted bool
	// Env are variables its tests run with (the Python environment of an
	// env made from install_config, and its env_vars).
	Env map[string]string
}

// Action runs one of lego's Python programs on the env's repository
// (--root): in the env's image, or in image when that is given (a real
// instance's); for a directory env, on the host, on a copy of the
// directory when the program changes the tree (harness.py --copy).
func (e *EnvInfo) Action(mnemonic string, image, program *engine.File, changes bool, ins, outs []*engine.File, args ...string) *engine.Action {
	argv := []string{"python3", program.Path}
	ins = append([]*engine.File{program}, ins...)
	if e.Image != nil {
		if image == nil {
			image = e.Image.Manifest
		}
		argv = append(argv, "--root", e.Workdir)
	} else if e.Rooted {
		image = nil
		argv = append(argv, "--root", install.DirRoot+"/testbed", "--env-root", e.Dir.Path)
		ins = append(ins, e.Dir)
	} else {
		image = nil
		argv = append(argv, "--root", e.Dir.Path)
		if changes {
			argv = append(argv, "--copy")
		}
		ins = append(ins, e.Dir)
	}
	return &engine.Action{
		Mnemonic: mnemonic,
		Args:     append(argv, args...),
		Env:      engine.ActionEnv(e.Env),
		Inputs:   ins,
		Outputs:  outs,
		Image:    image,
		Timeout:  testTimeout,
	}
}

// manifest is the image manifest's path, "" for a directory env.
func (e *EnvInfo) manifest() string {
	if e.Image == nil {
		return ""
	}
	return e.Image.Manifest.Path
}

type repoKey struct{}
type envKey struct{}

// RepoOf and EnvOf return what a target provides, or nil.
func RepoOf(t *engine.Target) *RepoInfo {
	v, _ := t.Providers[repoKey{}].(*RepoInfo)
	return v
}

func EnvOf(t *engine.Target) *EnvInfo {
	v, _ := t.Providers[envKey{}].(*EnvInfo)
	return v
}

func provide(t *engine.Target, key, v any) {
	if t.Providers == nil {
		t.Providers = map[any]any{}
	}
	t.Providers[key] = v
}

// GitRepo is git_repo: a repository's source snapshot, content-addressed:
// the files under a path of the workspace (no history), or a commit of a
// repository fetched from a url or a bundle file (a commit id pins the
// content, so the fetch is cached like any action).
type GitRepo struct{}

func (GitRepo) Kind() string { return "git_repo" }

func (GitRepo) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "path", Type: engine.AttrString, Doc: "directory of the package holding the sources (a snapshot with no history)"},
		{Name: "srcs", Type: engine.AttrLabelList, Doc: `with path: the files under it, usually glob(["<path>/**"])`},
		{Name: "url", Type: engine.AttrString, Doc: "a git URL to fetch (the action uses the network)"},
		{Name: "bundle", Type: engine.AttrLabel, Doc: "a git bundle or repository file made in the workspace (offline history)"},
		{Name: "commit", Type: engine.AttrString, Doc: "with url or bundle: the full 40-hex commit id"},
		{Name: "repo_name", Type: engine.AttrString, Doc: "the repository's name in task instances (default: the target's name)"},
	}
}

func (GitRepo) Analyze(ctx *engine.Context) error {
	p, url := ctx.Attr("path").(string), ctx.Attr("url").(string)
	bundle, hasBundle := ctx.Attr("bundle").(engine.Label)
	hasBundle = hasBundle && bundle != (engine.Label{})
	n := 0
	for _, set := range []bool{p != "", url != "", hasBundle} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("attribute path: give exactly one of path, url and bundle")
	}
	name := ctx.Attr("repo_name").(string)
	if name == "" {
		name = ctx.Label().Name
	}
	info := &RepoInfo{Name: name}
	var err error
	if p != "" {
		info.Tree, err = snapshot(ctx, p)
	} else {
		err = fetch(ctx, url, info)
	}
	if err != nil {
		return err
	}
	provide(ctx.Target, repoKey{}, info)
	ctx.Target.Files = []*engine.File{info.Tree}
	return nil
}

func snapshot(ctx *engine.Context, p string) (*engine.File, error) {
	if path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") {
		return nil, fmt.Errorf("attribute path: %q is not a directory of the package", p)
	}
	strip := path.Join(ctx.Label().Pkg, p)
	srcs := ctx.Files("srcs")
	if len(srcs) == 0 {
		return nil, fmt.Errorf("attribute srcs: no files")
	}
	tree, err := ctx.DeclareFile(ctx.Label().Name+".tree", true)
	if err != nil {
		return nil, err
	}
	args := []string{"--strip", strip}
	for _, f := range srcs {
		if !strings.HasPrefix(f.Path, strip+"/") {
			return nil, fmt.Errorf("attribute srcs: %s is not under %s", f.ShortPath(), p)
		}
		if slices.Contains(strings.Split(f.Path[len(strip)+1:], "/"), ".git") {
			// Synthetic tasks' envs must hold no history.
			return nil, fmt.Errorf("attribute srcs: %s is git history; a path snapshot holds the files only (exclude **/.git/**)", f.ShortPath())
		}
		args = append(args, "--src", f.Path)
	}
	args = append(args, "--out", tree.Path)
	a, err := legotool.Action(repoSnapshot, nil, srcs, []*engine.File{tree}, args...)
	if err != nil {
		return nil, err
	}
	return tree, ctx.AddAction(a)
}

// fetch declares the action fetching a repository (from url, or from the
// bundle attribute's file when url is "").
func fetch(ctx *engine.Context, url string, info *RepoInfo) error {
	info.Commit = ctx.Attr("commit").(string)
	if !gitrepo.CommitRE.MatchString(info.Commit) {
		return fmt.Errorf("attribute commit: %q is not a full 40-hex commit id (a branch or tag could move)", info.Commit)
	}
	if len(ctx.Attr("srcs").([]engine.Label)) > 0 {
		return fmt.Errorf("attribute srcs: only with path")
	}
	var inputs []*engine.File
	if url == "" {
		files := ctx.Files("bundle")
		if len(files) != 1 || files[0].Dir {
			return fmt.Errorf("attribute bundle: want one file, got %d", len(files))
		}
		inputs, url = files, files[0].Path
	}
	name := ctx.Label().Name
	var err error
	if info.Tree, err = ctx.DeclareFile(name+".tree", true); err != nil {
		return err
	}
	if info.Git, err = ctx.DeclareFile(name+".git", true); err != nil {
		return err
	}
	a, err := legotool.Action(gitFetch, nil, inputs, []*engine.File{info.Git, info.Tree},
		"--src", url, "--commit", info.Commit, "--git", info.Git.Path, "--tree", info.Tree.Path)
	if err != nil {
		return err
	}
	a.Network = len(inputs) == 0
	if p, ok := strings.CutPrefix(url, "file://"); ok {
		// A repository on this machine: the sandbox shows it, read-only.
		a.HostPaths = []string{p}
	}
	return ctx.AddAction(a)
}

// Env is swe_env: an OCI image per repository, the source at workdir and
// the install steps run in containers, each committed as a layer.
type Env struct{}

func (Env) Kind() string { return "swe_env" }

func (Env) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "repo", Type: engine.AttrLabel, Mandatory: true, Doc: "a git_repo"},
		{Name: "base", Type: engine.AttrLabel, Doc: "form image: the image to start from (with python3 and git)"},
		{Name: "form", Type: engine.AttrString, Default: "image", Doc: "image (an OCI image, run in containerd) or dir (a directory env, run by the local executor on the host's python3, for machines without containerd)"},
		{Name: "install", Type: engine.AttrStringList, Doc: "shell commands run in workdir, one layer each"},
		{Name: "test_cmd", Type: engine.AttrString, Mandatory: true, Doc: "runs the whole test suite from workdir"},
		{Name: "test_framework", Type: engine.AttrString, Default: "pytest", Doc: "pytest, unittest, django or sympy: the runner whose output the harness reads (unittest and django: verbose, -v / --verbosity 2)"},
		{Name: "workdir", Type: engine.AttrString, Default: "/testbed", Doc: "where the repository is in the image"},
		{Name: "network", Type: engine.AttrBool, Doc: "let install steps use the network"},
	}
}

func (Env) Analyze(ctx *engine.Context) error {
	repoLabel := ctx.Attr("repo").(engine.Label)
	repo := RepoOf(ctx.Dep(repoLabel))
	if repo == nil {
		return fmt.Errorf("attribute repo: %s is a %s, not a git_repo", repoLabel, ctx.Dep(repoLabel).Kind())
	}
	fw := ctx.Attr("test_framework").(string)
	if !slices.Contains(install.Frameworks, fw) {
		return fmt.Errorf("attribute test_framework: %q is not one of %s", fw, strings.Join(install.Frameworks, ", "))
	}
	cmd := ctx.Attr("test_cmd").(string)
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("attribute test_cmd: empty")
	}
	workdir := ctx.Attr("workdir").(string)
	info := &EnvInfo{Repo: repo, Workdir: workdir, TestCmd: cmd, Framework: fw}
	defer provide(ctx.Target, envKey{}, info)
	switch form := ctx.Attr("form").(string); form {
	case "dir":
		return dirEnv(ctx, info)
	case "image":
	default:
		return fmt.Errorf("attribute form: %q is not image or dir", form)
	}
	baseLabel, _ := ctx.Attr("base").(engine.Label)
	if baseLabel == (engine.Label{}) {
		return fmt.Errorf("attribute base: an image env needs a base image")
	}
	base := engine.ImageOf(ctx.Dep(baseLabel))
	if base == nil {
		return fmt.Errorf("attribute base: %s is a %s, not an image", baseLabel, ctx.Dep(baseLabel).Kind())
	}
	img, err := oci.Build(ctx, ctx.Label().Name, oci.Spec{
		Base:    base,
		Files:   map[string]*engine.File{workdir: repo.Tree},
		Workdir: workdir,
		Run:     ctx.Attr("install").([]string),
		Network: ctx.Attr("network").(bool),
	})
	if err != nil {
		return err
	}
	ctx.Target.SetImage(img)
	ctx.Target.Files = []*engine.File{img.Manifest, img.Layout}
	info.Image = img
	return nil
}

// dirEnv declares a directory env: the repository's files with the
// install steps run in them on the host.
func dirEnv(ctx *engine.Context, info *EnvInfo) error {
	dir, err := ctx.DeclareFile(ctx.Label().Name+".env", true)
	if err != nil {
		return err
	}
	args := []string{"--tree", info.Repo.Tree.Path, "--out", dir.Path}
	for _, s := range ctx.Attr("install").([]string) {
		args = append(args, "--run", s)
	}
	a, err := legotool.Action(envDir, nil, []*engine.File{info.Repo.Tree}, []*engine.File{dir}, args...)
	if err != nil {
		return err
	}
	a.Network = ctx.Attr("network").(bool)
	info.Dir = dir
	ctx.Target.Files = []*engine.File{dir}
	return ctx.AddAction(a)
}
