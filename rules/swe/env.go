package swe

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/oci"
)

// RepoInfo is what a git_repo provides: the source tree at the commit.
type RepoInfo struct {
	Name string
	Tree *engine.File // a directory: the files, no history
}

// EnvInfo is what a swe_env provides: the image holding the repository
// at Workdir with its dependencies installed, and how its tests run.
type EnvInfo struct {
	Repo      string
	Image     *engine.ImageInfo
	Workdir   string
	TestCmd   string
	Framework string
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

// GitRepo is git_repo: a repository's source snapshot, content-addressed.
type GitRepo struct{}

func (GitRepo) Kind() string { return "git_repo" }

func (GitRepo) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "path", Type: engine.AttrString, Mandatory: true, Doc: "directory of the package holding the sources (a snapshot with no history)"},
		{Name: "srcs", Type: engine.AttrLabelList, Mandatory: true, Doc: `the files under path, usually glob(["<path>/**"])`},
		{Name: "repo_name", Type: engine.AttrString, Doc: "the repository's name in task instances (default: the target's name)"},
	}
}

func (GitRepo) Analyze(ctx *engine.Context) error {
	p := ctx.Attr("path").(string)
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") {
		return fmt.Errorf("attribute path: %q is not a directory of the package", p)
	}
	strip := path.Join(ctx.Label().Pkg, p)
	srcs := ctx.Files("srcs")
	if len(srcs) == 0 {
		return fmt.Errorf("attribute srcs: no files")
	}
	tree, err := ctx.DeclareFile(ctx.Label().Name+".tree", true)
	if err != nil {
		return err
	}
	args := []string{"--strip", strip}
	for _, f := range srcs {
		if !strings.HasPrefix(f.Path, strip+"/") {
			return fmt.Errorf("attribute srcs: %s is not under %s", f.ShortPath(), p)
		}
		args = append(args, "--src", f.Path)
	}
	args = append(args, "--out", tree.Path)
	a, err := legotool.Action("repo-snapshot", nil, srcs, []*engine.File{tree}, args...)
	if err != nil {
		return err
	}
	if err := ctx.AddAction(a); err != nil {
		return err
	}
	name := ctx.Attr("repo_name").(string)
	if name == "" {
		name = ctx.Label().Name
	}
	provide(ctx.Target, repoKey{}, &RepoInfo{Name: name, Tree: tree})
	ctx.Target.Files = []*engine.File{tree}
	return nil
}

// Frameworks are the test frameworks whose output the harness parses.
var Frameworks = []string{"pytest", "unittest"}

// Env is swe_env: an OCI image per repository, the source at workdir and
// the install steps run in containers, each committed as a layer.
type Env struct{}

func (Env) Kind() string { return "swe_env" }

func (Env) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "repo", Type: engine.AttrLabel, Mandatory: true, Doc: "a git_repo"},
		{Name: "base", Type: engine.AttrLabel, Mandatory: true, Doc: "the image to start from (with python3 and git)"},
		{Name: "install", Type: engine.AttrStringList, Doc: "shell commands run in workdir, one layer each"},
		{Name: "test_cmd", Type: engine.AttrString, Mandatory: true, Doc: "runs the whole test suite from workdir"},
		{Name: "test_framework", Type: engine.AttrString, Default: "pytest", Doc: "pytest or unittest (unittest: test_cmd must pass -v)"},
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
	baseLabel := ctx.Attr("base").(engine.Label)
	base := engine.ImageOf(ctx.Dep(baseLabel))
	if base == nil {
		return fmt.Errorf("attribute base: %s is a %s, not an image", baseLabel, ctx.Dep(baseLabel).Kind())
	}
	fw := ctx.Attr("test_framework").(string)
	if !slices.Contains(Frameworks, fw) {
		return fmt.Errorf("attribute test_framework: %q is not one of %s", fw, strings.Join(Frameworks, ", "))
	}
	cmd := ctx.Attr("test_cmd").(string)
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("attribute test_cmd: empty")
	}
	workdir := ctx.Attr("workdir").(string)
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
	provide(ctx.Target, envKey{}, &EnvInfo{Repo: repo.Name, Image: img, Workdir: workdir, TestCmd: cmd, Framework: fw})
	return nil
}
