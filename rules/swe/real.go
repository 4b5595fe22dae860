package swe

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/oci"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// instanceID is what an instance id may hold: it names files.
var instanceID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// realTasks declares, per instance of the instances file: its sanitised
// .git (nothing after created_at), its image (the env at the base commit
// with that .git) and the validation run in that image, and returns the
// plan over them. The file is read at analysis, as a BUILD file is: each
// instance is its own actions, cached on its own.
func realTasks(ctx *engine.Context, name string) (*tasks.Plan, []*TaskSlot, error) {
	files := ctx.Files("instances")
	if len(files) != 1 || !files[0].Source {
		return nil, nil, fmt.Errorf("attribute instances: want one source file (JSON Lines, a JSON array or Parquet, as published)")
	}
	src := files[0]
	byBase := map[[2]string]engine.Label{}
	for _, l := range ctx.Attr("envs").([]engine.Label) {
		env := EnvOf(ctx.Dep(l))
		if env == nil {
			return nil, nil, fmt.Errorf("attribute envs: %s is a %s, not a swe_env", l, ctx.Dep(l).Kind())
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
	harness, err := workFile(ctx, name+".work/harness.py", tasks.Harness)
	if err != nil {
		return nil, nil, err
	}
	plan := &tasks.Plan{Source: "real"}
	var slots []*TaskSlot
	seen := map[string]format.Loc{}
	// Instances as published: JSON Lines, a JSON array or Parquet
	// (Hugging Face's), compressed or not.
	_, err = format.EachRecord(filepath.Join(ctx.Root(), src.Path), func(at format.Loc, line []byte) error {
		at.File = src.Path
		bad := func(field, msg string, args ...any) error { return at.Err(field, msg, args...) }
		var t format.Task
		if err := format.DecodeAt(at, line, &t); err != nil {
			return err
		}
		if !instanceID.MatchString(t.InstanceID) {
			return bad("instance_id", "%q is not a name of letters, digits, '.', '_' and '-'", t.InstanceID)
		}
		if prev, ok := seen[t.InstanceID]; ok {
			return bad("instance_id", "%s is at %s too", t.InstanceID, prev)
		}
		seen[t.InstanceID] = at
		created, err := time.Parse(time.RFC3339, t.CreatedAt)
		if err != nil {
			return bad("created_at", "%q is not an RFC 3339 time (the history is cut there)", t.CreatedAt)
		}
		if t.Patch == "" || t.TestPatch == "" {
			return bad("patch", "an instance needs both patch and test_patch")
		}
		l, ok := byBase[[2]string{t.Repo, t.BaseCommit}]
		if !ok {
			return bad("base_commit", "no env in attribute envs holds repository %q at %s", t.Repo, t.BaseCommit)
		}
		env := EnvOf(ctx.Dep(l))
		slot, err := instance(ctx, name+".work/"+t.InstanceID+"/", &t, created, env, harness)
		if err != nil {
			return fmt.Errorf("%s: %v", at, err)
		}
		slot.Spec.Real.Env = l.String()
		slots = append(slots, slot)
		return nil
	})
	if err != nil {
		if _, ok := err.(*format.LineError); ok {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("attribute instances: %v", err)
	}
	if len(slots) == 0 {
		return nil, nil, fmt.Errorf("attribute instances: %s holds no instances", src.Path)
	}
	return plan, slots, nil
}

// instance declares one real instance's actions under dir.
func instance(ctx *engine.Context, dir string, t *format.Task, created time.Time, env *EnvInfo, harness *engine.File) (*TaskSlot, error) {
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
	dotgit, err := ctx.DeclareFile(dir+"git", true)
	if err != nil {
		return nil, err
	}
	report, err := ctx.DeclareFile(dir+"sanitize.json", false)
	if err != nil {
		return nil, err
	}
	before := created.UTC().Format(time.RFC3339)
	a, err := legotool.Action(gitSanitize, nil, []*engine.File{env.Repo.Git}, []*engine.File{dotgit, report},
		"--git", env.Repo.Git.Path, "--commit", t.BaseCommit, "--before", before, "--out", dotgit.Path, "--report", report.Path)
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
	ins := []*engine.File{testDiff, fixDiff}
	args := append(harnessArgs(env, results), "--git-audit", strconv.FormatInt(created.Unix(), 10),
		"--run", "before="+testDiff.Path, "--run", "after="+fixDiff.Path)
	// The instance's env: the swe_env with the history as <workdir>/.git,
	// one more layer, so that the envs of a repository's instances share
	// everything else; a directory env gets it in its copy.
	var image *engine.File
	if env.Image != nil {
		img, err := oci.Build(ctx, dir+"env", oci.Spec{
			Base:  env.Image,
			Files: map[string]*engine.File{filepath.Join(env.Workdir, ".git"): dotgit},
		})
		if err != nil {
			return nil, err
		}
		image = img.Manifest
	} else {
		ins = append(ins, dotgit)
		args = append(args, "--git", dotgit.Path)
	}
	if err := ctx.AddAction(env.Action("ValidateInstance", image, harness, true, ins, []*engine.File{results}, args...)); err != nil {
		return nil, err
	}
	pr := &tasks.PlanReal{Instance: inst.Path, Sanitize: report.Path, Results: results.Path}
	slot := &TaskSlot{Stem: dir + "instance", Env: env, Image: image, Inputs: []*engine.File{inst, report, results}}
	if image != nil {
		pr.Manifest = image.Path
		slot.Inputs = append(slot.Inputs, image)
	} else {
		slot.Git = dotgit
	}
	slot.Spec.Real = pr
	return slot, nil
}
