package swe

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/oci"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
	"github.com/legobuild/lego/rules/swe/install"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// instanceID is what an instance id may hold: it names files.
var instanceID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// realTasks declares, per instance of the instances file: its sanitised
// .git (only the base commit's ancestry), its image (the env with that
// .git; for an env set's, also the tree at the base commit, pre_install
// and install) and the validation run in that image, and returns the plan
// over them. The file is read at analysis, as a BUILD file is: each
// instance is its own actions, cached on its own. An instance that cannot
// be validated (no env for it, an install_config lego cannot read, no
// patch) is dropped with the reason in the report; the set still builds.
func realTasks(ctx *engine.Context, name string) (*tasks.Plan, []*TaskSlot, error) {
	byBase := map[[2]string]engine.Label{}
	var sets []*EnvSetInfo
	for _, l := range ctx.Attr("envs").([]engine.Label) {
		if set := EnvSetOf(ctx.Dep(l)); set != nil {
			sets = append(sets, set)
			continue
		}
		env := EnvOf(ctx.Dep(l))
		if env == nil {
			return nil, nil, fmt.Errorf("attribute envs: %s is a %s, not a swe_env or swe_env_set", l, ctx.Dep(l).Kind())
		}
		if env.Repo.Git == nil {
			return nil, nil, fmt.Errorf("attribute envs: %s holds a git_repo with no history (path); real tasks need one fetched by url or bundle at the base commit", l)
		}
		k := [2]string{env.Repo.Name, env.Repo.Commit}
		if prev, ok := byBase[k]; ok {
			return nil, nil, fmt.Errorf("attribute envs: %s and %s are both %s at %s", prev, l, k[0], k[1])
		}
		byBase[k] = l
	}
	scope := ctx.Attr("test_scope").(string)
	if scope != "touched" && scope != "all" {
		return nil, nil, fmt.Errorf("attribute test_scope: %q is not touched or all", scope)
	}
	harness, err := workFile(ctx, name+".work/harness.py", tasks.Harness)
	if err != nil {
		return nil, nil, err
	}
	r := &realSet{ctx: ctx, harness: harness, scope: scope, trees: map[string]*engine.File{}}
	plan := &tasks.Plan{Source: "real"}
	var slots []*TaskSlot
	seen := map[string]format.Loc{}
	var configs install.Parser
	err = eachInstance(ctx, "instances", func(at format.Loc, t *format.Task) error {
		if !instanceID.MatchString(t.InstanceID) {
			return at.Err("instance_id", "%q is not a name of letters, digits, '.', '_' and '-'", t.InstanceID)
		}
		if prev, ok := seen[t.InstanceID]; ok {
			return at.Err("instance_id", "%s is at %s too", t.InstanceID, prev)
		}
		seen[t.InstanceID] = at
		dir := name + ".work/" + t.InstanceID + "/"
		drop := func(field, msg string, args ...any) error {
			why := at.Err(field, msg, args...).Error()
			slots = append(slots, &TaskSlot{Stem: dir + "instance", Spec: tasks.SlotSpec{Drop: &tasks.Rejection{InstanceID: t.InstanceID, Env: t.Repo, Reason: why}}})
			return nil
		}
		created, err := parseCreated(t.CreatedAt)
		if err != nil {
			return drop("created_at", "%q is not a time lego reads (RFC 3339, or SWE-rebench's without a zone: UTC)", t.CreatedAt)
		}
		if t.Patch == "" || t.TestPatch == "" {
			return drop("patch", "an instance needs both patch and test_patch")
		}
		var slot *TaskSlot
		if l, ok := byBase[[2]string{t.Repo, t.BaseCommit}]; ok {
			slot, err = r.instance(dir, t, created, EnvOf(ctx.Dep(l)), nil)
			if slot != nil {
				slot.Spec.Real.Env = l.String()
			}
		} else if len(sets) == 0 {
			return drop("base_commit", "no env in attribute envs holds repository %q at %s", t.Repo, t.BaseCommit)
		} else {
			c, field, perr := configs.Parse(t.InstallConfig)
			if perr != nil {
				return drop(field, "%v", perr)
			}
			var se *SetEnv
			var set *EnvSetInfo
			for _, s := range sets {
				if se = s.Envs[setKey(t.Repo, envCommit(t), c)]; se != nil {
					set = s
					break
				}
			}
			if se == nil {
				var names []string
				known := false
				for _, s := range sets {
					names = append(names, s.Label.String())
					known = known || s.Repos[t.Repo] != nil
				}
				if !gitrepo.CommitRE.MatchString(envCommit(t)) {
					return drop("environment_setup_commit", "%q is not a full 40-hex commit id", envCommit(t))
				}
				if known {
					return drop("repo", "no env for repository %q at %s in %s", t.Repo, envCommit(t), strings.Join(names, ", "))
				}
				return drop("repo", "no env for repository %q at %s: %s has no git_repo of it", t.Repo, envCommit(t), strings.Join(names, ", "))
			}
			if !gitrepo.CommitRE.MatchString(t.BaseCommit) {
				return drop("base_commit", "%q is not a full 40-hex commit id", t.BaseCommit)
			}
			slot, err = r.instance(dir, t, created, nil, &setInstance{set: set, env: se, cfg: c})
		}
		if err != nil {
			return fmt.Errorf("%s: %v", at, err)
		}
		slots = append(slots, slot)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(slots) == 0 {
		return nil, nil, fmt.Errorf("attribute instances: %s holds no instances", ctx.Files("instances")[0].Path)
	}
	return plan, slots, nil
}

// parseCreated reads created_at as SWE-bench (RFC 3339) and SWE-rebench
// (no zone, UTC; a space or a T) publish it.
func parseCreated(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05Z07:00"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// realSet declares a real task set's instances.
type realSet struct {
	ctx     *engine.Context
	harness *engine.File
	scope   string
	trees   map[string]*engine.File // repository@commit -> its files (git-archive), shared
}

// setInstance is an instance whose env comes from a swe_env_set.
type setInstance struct {
	set *EnvSetInfo
	env *SetEnv
	cfg *install.Config
}

// instance declares one real instance's actions under dir, in env (a
// swe_env at its base commit) or in an env of a set (si).
func (r *realSet) instance(dir string, t *format.Task, created time.Time, env *EnvInfo, si *setInstance) (*TaskSlot, error) {
	ctx := r.ctx
	js, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	inst, err := workFile(ctx, dir+"instance.json", append(js, '\n'))
	if err != nil {
		return nil, err
	}
	testDiff, err := workFile(ctx, dir+"test.diff", []byte(t.TestPatch))
	if err != nil {
		return nil, err
	}
	fixDiff, err := workFile(ctx, dir+"fix.diff", []byte(t.Patch))
	if err != nil {
		return nil, err
	}
	repo := si.repo(env)
	dotgit, err := ctx.DeclareFile(dir+"git", true)
	if err != nil {
		return nil, err
	}
	report, err := ctx.DeclareFile(dir+"sanitize.json", false)
	if err != nil {
		return nil, err
	}
	before := created.UTC().Format(time.RFC3339)
	a, err := legotool.Action(gitSanitize, nil, []*engine.File{repo.Git}, []*engine.File{dotgit, report},
		"--git", repo.Git.Path, "--commit", t.BaseCommit, "--before", before, "--out", dotgit.Path, "--report", report.Path)
	if err != nil {
		return nil, err
	}
	if err := ctx.AddAction(a); err != nil {
		return nil, err
	}
	results, err := ctx.DeclareFile(dir+"results.json", false)
	if err != nil {
		return nil, err
	}
	var image *engine.File
	var extra []string
	ins := []*engine.File{testDiff, fixDiff}
	switch {
	case si != nil:
		// The env of the set, then the repository at the base commit with
		// its history, pre_install and install: the instance's layers.
		if env, extra, err = r.setEnv(dir, t, si, dotgit); err != nil {
			return nil, err
		}
		if env.Image != nil {
			image = env.Image.Manifest
		}
	case env.Image != nil:
		// The swe_env with the history as <workdir>/.git, one more layer,
		// so that the envs of a repository's instances share everything
		// else; a directory env gets it in its copy.
		img, err := oci.Build(ctx, dir+"env", oci.Spec{
			Base:  env.Image,
			Files: map[string]*engine.File{filepath.Join(env.Workdir, ".git"): dotgit},
		})
		if err != nil {
			return nil, err
		}
		image = img.Manifest
	default:
		ins = append(ins, dotgit)
		extra = []string{"--git", dotgit.Path}
	}
	args := append(harnessArgs(env, results), "--git-audit", strconv.FormatInt(created.Unix(), 10), "--base", t.BaseCommit)
	args = append(args, extra...)
	if r.scope == "touched" {
		// SWE-bench's selection: the test files test_patch touches.
		args = append(args, "--scope-from", testDiff.Path)
	}
	args = append(args, "--run", "before="+testDiff.Path, "--run", "after="+fixDiff.Path)
	if err := ctx.AddAction(env.Action("ValidateInstance", image, r.harness, true, ins, []*engine.File{results}, args...)); err != nil {
		return nil, err
	}
	pr := &tasks.PlanReal{Instance: inst.Path, Sanitize: report.Path, Results: results.Path}
	slot := &TaskSlot{Stem: dir + "instance", Env: env, Image: image, Inputs: []*engine.File{inst, report, results}, Scope: r.scope}
	if image != nil {
		pr.Manifest = image.Path
		slot.Inputs = append(slot.Inputs, image)
	} else if si == nil {
		slot.Git = dotgit
	}
	if si != nil {
		pr.Env = si.set.Label.String()
	}
	slot.Spec.Real = pr
	return slot, nil
}

// repo is the repository an instance's history comes from.
func (si *setInstance) repo(env *EnvInfo) *RepoInfo {
	if si != nil {
		return si.env.Repo
	}
	return env.Repo
}

// setEnv declares an env set's instance: the env, the tree at the base
// commit and its .git, pre_install and install, each step's failure
// recorded (install.Wrap) so that it drops this instance only. It
// returns the instance's env and the harness's arguments for it.
func (r *realSet) setEnv(dir string, t *format.Task, si *setInstance, dotgit *engine.File) (*EnvInfo, []string, error) {
	fw, _ := install.Framework(si.cfg.LogParser)
	env := &EnvInfo{Repo: si.env.Repo, TestCmd: si.cfg.TestCmd, Framework: fw}
	tree, err := r.tree(si.env.Repo, t.BaseCommit)
	if err != nil {
		return nil, nil, err
	}
	venv := install.Venv
	if si.env.Image == nil {
		venv = install.DirRoot + "/venv"
	}
	env.Env = map[string]string{"PATH": venv + "/bin:" + engine.DefaultPath, "VIRTUAL_ENV": venv}
	for k, v := range si.cfg.EnvVars {
		env.Env[k] = v
	}
	prelude := install.Prelude(venv, si.cfg.EnvVars)
	steps := si.cfg.InstanceSteps()
	if si.env.Image != nil {
		failed := "/" + install.Failed
		wd := si.set.Workdir
		img, err := oci.Build(r.ctx, dir+"env", oci.Spec{
			Base:    si.env.Image,
			Files:   map[string]*engine.File{wd: tree, path.Join(wd, ".git"): dotgit},
			Workdir: wd,
			Env:     env.Env, // for an agent's session in the image too

			Run:     install.WrapAll(0, prelude, steps, failed),
			Network: si.set.Network,
		})
		if err != nil {
			return nil, nil, err
		}
		env.Image, env.Workdir = img, wd
		return env, []string{"--env-failed", failed}, nil
	}
	out, err := r.ctx.DeclareFile(dir+"env", true)
	if err != nil {
		return nil, nil, err
	}
	args := []string{"--env", si.env.Dir.Path, "--tree", tree.Path, "--git", dotgit.Path, "--prelude", prelude, "--out", out.Path}
	for _, s := range steps {
		args = append(args, "--step", s)
	}
	a, err := legotool.Action(envInstance, nil, []*engine.File{si.env.Dir, tree, dotgit}, []*engine.File{out}, args...)
	if err != nil {
		return nil, nil, err
	}
	a.Network = si.set.Network
	if err := r.ctx.AddAction(a); err != nil {
		return nil, nil, err
	}
	env.Dir, env.Rooted, env.Workdir = out, true, install.DirRoot+"/testbed"
	return env, []string{"--env-failed", install.DirRoot + "/" + install.Failed}, nil
}

// tree declares (once per commit) the files of repo at commit.
func (r *realSet) tree(repo *RepoInfo, commit string) (*engine.File, error) {
	k := repo.Name + "@" + commit
	if f, ok := r.trees[k]; ok {
		return f, nil
	}
	if !gitrepo.CommitRE.MatchString(commit) {
		return nil, fmt.Errorf("base_commit %q is not a full 40-hex commit id", commit)
	}
	f, err := r.ctx.DeclareFile(r.ctx.Label().Name+".work/trees/"+strings.ReplaceAll(repo.Name, "/", "__")+"@"+commit, true)
	if err != nil {
		return nil, err
	}
	a, err := legotool.Action(gitArchive, nil, []*engine.File{repo.Git}, []*engine.File{f}, "--git", repo.Git.Path, "--commit", commit, "--out", f.Path)
	if err != nil {
		return nil, err
	}
	r.trees[k] = f
	return f, r.ctx.AddAction(a)
}
