package swe

import (
	"fmt"
	"sort"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/oci"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
	"github.com/legobuild/lego/rules/swe/install"
)

// EnvSet is swe_env_set: the envs of an instances file, made from the
// instances' install_config, one per repository, environment_setup_commit
// and dependency configuration: SWE-bench's environment level, which a
// task_set's instances (at their base commits, with pre_install and
// install) build on.
type EnvSet struct{}

func (EnvSet) Kind() string { return "swe_env_set" }

func (EnvSet) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "instances", Type: engine.AttrLabel, Mandatory: true, Doc: "the instances file (JSON Lines, a JSON array or Parquet; SWE-rebench's schema, with install_config)"},
		{Name: "repos", Type: engine.AttrLabelList, Mandatory: true, Doc: "git_repo targets with history (url or bundle), matched to the instances' repo by their repo_name"},
		{Name: "base", Type: engine.AttrLabel, Doc: "form image: the image to start from (with python3, python3-pip and git)"},
		{Name: "form", Type: engine.AttrString, Default: "image", Doc: "image (OCI images, built in containerd) or dir (directories built on the host's python3)"},
		{Name: "workdir", Type: engine.AttrString, Default: "/testbed", Doc: "form image: where each instance's repository is"},
		{Name: "network", Type: engine.AttrBool, Doc: "let the install steps use the network (pip's index, apt); without it pip installs with --no-index"},
	}
}

// SetEnv is one env of a set: a repository's dependencies at one commit.
type SetEnv struct {
	Name   string // its work name: org__repo@COMMIT-CONFIG
	Repo   *RepoInfo
	Commit string
	Image  *engine.ImageInfo // form image
	Dir    *engine.File      // form dir: venv/ (and install.Failed when a step failed)
}

// EnvSetInfo is what a swe_env_set provides.
type EnvSetInfo struct {
	Envs    map[string]*SetEnv // by setKey
	Repos   map[string]*RepoInfo
	Workdir string
	Network bool
	Label   engine.Label
}

type envSetKey struct{}

// EnvSetOf returns what a swe_env_set target provides, or nil.
func EnvSetOf(t *engine.Target) *EnvSetInfo {
	v, _ := t.Providers[envSetKey{}].(*EnvSetInfo)
	return v
}

// setKey is an env's key in a set: an instance finds its env by it.
func setKey(repo, commit string, c *install.Config) string {
	return repo + "@" + commit + "#" + c.EnvKey()
}

// envCommit is the commit an instance's env is made at.
func envCommit(t *format.Task) string {
	if t.EnvironmentSetupCommit != "" {
		return t.EnvironmentSetupCommit
	}
	return t.BaseCommit
}

func (EnvSet) Analyze(ctx *engine.Context) error {
	form := ctx.Attr("form").(string)
	if form != "image" && form != "dir" {
		return fmt.Errorf("attribute form: %q is not image or dir", form)
	}
	info := &EnvSetInfo{Envs: map[string]*SetEnv{}, Repos: map[string]*RepoInfo{}, Workdir: ctx.Attr("workdir").(string),
		Network: ctx.Attr("network").(bool), Label: ctx.Label()}
	for _, l := range ctx.Attr("repos").([]engine.Label) {
		r := RepoOf(ctx.Dep(l))
		if r == nil {
			return fmt.Errorf("attribute repos: %s is a %s, not a git_repo", l, ctx.Dep(l).Kind())
		}
		if r.Git == nil {
			return fmt.Errorf("attribute repos: %s has no history (a path snapshot); envs are made at commits, give url or bundle", l)
		}
		if _, ok := info.Repos[r.Name]; ok {
			return fmt.Errorf("attribute repos: two git_repo targets are repository %q", r.Name)
		}
		info.Repos[r.Name] = r
	}
	var base *engine.ImageInfo
	if form == "image" {
		bl, _ := ctx.Attr("base").(engine.Label)
		if bl == (engine.Label{}) {
			return fmt.Errorf("attribute base: form image needs a base image")
		}
		if base = engine.ImageOf(ctx.Dep(bl)); base == nil {
			return fmt.Errorf("attribute base: %s is a %s, not an image", bl, ctx.Dep(bl).Kind())
		}
	}
	b := &setBuilder{ctx: ctx, info: info, base: base, stages: map[string]*engine.ImageInfo{}}
	var configs install.Parser
	err := eachInstance(ctx, "instances", func(at format.Loc, t *format.Task) error {
		c, _, err := configs.Parse(t.InstallConfig)
		if err != nil {
			return nil // the task set reports it, with the instance
		}
		repo := info.Repos[t.Repo]
		commit := envCommit(t)
		k := setKey(t.Repo, commit, c)
		// What has no env here the task set drops, with the reason.
		if repo == nil || info.Envs[k] != nil || !gitrepo.CommitRE.MatchString(commit) || !instanceID.MatchString(strings.ReplaceAll(t.Repo, "/", "__")) {
			return nil
		}
		e := &SetEnv{Name: strings.ReplaceAll(t.Repo, "/", "__") + "@" + commit + "-" + c.EnvKey(), Repo: repo, Commit: commit}
		if form == "image" {
			e.Image, err = b.image(e, c)
		} else {
			e.Dir, err = b.dir(e, c)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", at, err)
		}
		info.Envs[k] = e
		return nil
	})
	if err != nil {
		return err
	}
	provide(ctx.Target, envSetKey{}, info)
	names := make([]string, 0, len(info.Envs))
	for k := range info.Envs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if e := info.Envs[k]; e.Image != nil {
			ctx.Target.Files = append(ctx.Target.Files, e.Image.Manifest)
		} else {
			ctx.Target.Files = append(ctx.Target.Files, e.Dir)
		}
	}
	return nil
}

// eachInstance reads the instances file of attribute attr, record by
// record, as published (JSON Lines, a JSON array or Parquet).
func eachInstance(ctx *engine.Context, attr string, fn func(at format.Loc, t *format.Task) error) error {
	files := ctx.Files(attr)
	if len(files) != 1 || !files[0].Source {
		return fmt.Errorf("attribute %s: want one source file (JSON Lines, a JSON array or Parquet, as published)", attr)
	}
	src := files[0]
	path, err := ctx.ReadSource(src)
	if err != nil {
		return fmt.Errorf("attribute %s: %v", attr, err)
	}
	_, err = format.EachRecord(path, func(at format.Loc, rec []byte) error {
		at.File = src.Path
		var t format.Task
		if err := format.DecodeAt(at, rec, &t); err != nil {
			return err
		}
		return fn(at, &t)
	})
	if err != nil {
		if _, ok := err.(*format.LineError); ok {
			return err
		}
		return fmt.Errorf("attribute %s: %v", attr, err)
	}
	return nil
}

// setBuilder declares a set's envs, sharing the stages that are the same
// for many: the Python environment of a version is one image for all.
type setBuilder struct {
	ctx    *engine.Context
	info   *EnvSetInfo
	base   *engine.ImageInfo
	stages map[string]*engine.ImageInfo
}

func (b *setBuilder) work(name string) string { return b.ctx.Label().Name + ".work/" + name }

// image: base, then the Python environment (shared by version), then
// the requirements files and their installs, then pip_packages (shared
// when there are no requirements files), each step a layer.
func (b *setBuilder) image(e *SetEnv, c *install.Config) (*engine.ImageInfo, error) {
	failed := "/" + install.Failed
	pre := install.Prelude(install.Venv, nil)
	py := "py" + c.Python
	if py == "py" {
		py = "py-default"
	}
	venv, ok := b.stages[py]
	if !ok {
		var err error
		venv, err = oci.Build(b.ctx, b.work(py), oci.Spec{Base: b.base, Run: []string{install.Wrap(0, "", c.VenvStep(install.Venv), failed)}})
		if err != nil {
			return nil, err
		}
		b.stages[py] = venv
	}
	steps := install.WrapAll(1, pre, c.PackageSteps(install.ReqsDir, b.info.Network), failed)
	if len(steps) == 0 {
		return venv, nil
	}
	spec := oci.Spec{Base: venv, Run: steps, Network: b.info.Network}
	key := py + "+" + strings.Join(steps, "\x00")
	if reqs := c.Requirements(); len(reqs) > 0 {
		files, err := b.repoFiles(e, reqs)
		if err != nil {
			return nil, err
		}
		spec.Files = map[string]*engine.File{install.ReqsDir: files}
		key = ""
	}
	if img, ok := b.stages[key]; ok && key != "" {
		return img, nil
	}
	img, err := oci.Build(b.ctx, b.work(e.Name), spec)
	if err == nil && key != "" {
		b.stages[key] = img
	}
	return img, err
}

// repoFiles declares the action taking files of the repository at the
// env's commit into a directory (a missing one is left out: the step
// reading it fails as the env's, recorded).
func (b *setBuilder) repoFiles(e *SetEnv, paths []string) (*engine.File, error) {
	out, err := b.ctx.DeclareFile(b.work(e.Name+".reqs"), true)
	if err != nil {
		return nil, err
	}
	args := []string{"--git", e.Repo.Git.Path, "--commit", e.Commit, "--out", out.Path}
	for _, p := range paths {
		args = append(args, "--path", p)
	}
	a, err := legotool.Action(gitFiles, nil, []*engine.File{e.Repo.Git}, []*engine.File{out}, args...)
	if err != nil {
		return nil, err
	}
	return out, b.ctx.AddAction(a)
}

// dir: one action building the Python environment with the requirements
// and pip_packages at install.DirRoot, on the host.
func (b *setBuilder) dir(e *SetEnv, c *install.Config) (*engine.File, error) {
	out, err := b.ctx.DeclareFile(b.work(e.Name+".env"), true)
	if err != nil {
		return nil, err
	}
	args := []string{"--git", e.Repo.Git.Path, "--commit", e.Commit, "--out", out.Path, "--step", c.VenvStep(install.DirRoot + "/venv")}
	for _, r := range c.Requirements() {
		args = append(args, "--path", r)
	}
	for _, s := range c.PackageSteps(install.DirRoot+"/reqs", b.info.Network) {
		args = append(args, "--step", s)
	}
	a, err := legotool.Action(envVenv, nil, []*engine.File{e.Repo.Git}, []*engine.File{out}, args...)
	if err != nil {
		return nil, err
	}
	a.Network = b.info.Network
	return out, b.ctx.AddAction(a)
}
