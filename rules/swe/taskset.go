package swe

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// Sources and strategies of task_set.
var (
	TaskSources = []string{"real", "synthetic", "merge"}
	Strategies  = []string{"ast", "llm_rewrite"}
)

// testTimeout bounds one run of an environment's test suite.
const testTimeout = 30 * time.Minute

// TaskSet is task_set: validated task instances. "real" validates pull
// requests (SWE-bench style instances) in their envs, each given a git
// history that ends before the issue; "synthetic" injects bugs into each
// env's repository and keeps those that some test catches; each
// instance's or candidate's test run is its own action. "merge" joins
// task sets.
type TaskSet struct{}

func (TaskSet) Kind() string { return "task_set" }

func (TaskSet) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "source", Type: engine.AttrString, Mandatory: true, Doc: strings.Join(TaskSources, " or ")},
		{Name: "instances", Type: engine.AttrLabel, Doc: "real: a JSONL file of instances (instance_id, repo, base_commit, created_at, patch, test_patch, FAIL_TO_PASS, PASS_TO_PASS, ...)"},
		{Name: "envs", Type: engine.AttrLabelList, Doc: "synthetic: the swe_env targets to make bugs in; real: the envs at the instances' base commits"},
		{Name: "strategies", Type: engine.AttrStringList, Default: []string{"ast"}, Doc: "synthetic: ast (procedural AST modifiers) and/or llm_rewrite (needs a model endpoint)"},
		{Name: "per_repo", Type: engine.AttrInt, Default: int64(10), Doc: "synthetic: candidate bugs per repository, each validated"},
		{Name: "seed", Type: engine.AttrInt, Doc: "synthetic: chooses the candidates"},
		{Name: "sets", Type: engine.AttrLabelList, Doc: "merge: the task sets to join"},
	}
}

func (TaskSet) Analyze(ctx *engine.Context) error {
	src := ctx.Attr("source").(string)
	name := ctx.Label().Name
	var plan tasks.Plan
	var inputs []*engine.File
	switch src {
	case "real", "synthetic":
		declare := synthetic
		if src == "real" {
			declare = realTasks
		}
		p, in, err := declare(ctx, name)
		if err != nil {
			return err
		}
		plan, inputs = *p, in
	case "merge":
		sets := ctx.Attr("sets").([]engine.Label)
		if len(sets) == 0 {
			return fmt.Errorf("attribute sets: no task sets to merge")
		}
		plan.Source = "merge"
		for _, l := range sets {
			t := ctx.Dep(l)
			if t.Kind() != "task_set" {
				return fmt.Errorf("attribute sets: %s is a %s, not a task_set", l, t.Kind())
			}
			plan.Sets = append(plan.Sets, t.Files[0].Path)
			inputs = append(inputs, t.Files[0])
		}
	default:
		return fmt.Errorf("attribute source: %q is not one of %s", src, strings.Join(TaskSources, ", "))
	}
	planFile, err := ctx.DeclareFile(name+".work/plan.json", false)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(plan, "", " ")
	if err != nil {
		return err
	}
	if err := ctx.Write(planFile, append(b, '\n'), false); err != nil {
		return err
	}
	out, err := ctx.DeclareFile(name, true)
	if err != nil {
		return err
	}
	a, err := legotool.Action("task-collect", nil, append(inputs, planFile), []*engine.File{out}, "--plan", planFile.Path, "--out", out.Path)
	if err != nil {
		return err
	}
	ctx.Target.Files = []*engine.File{out}
	return ctx.AddAction(a)
}

// synthetic declares, per env, the candidate generation, the clean test
// run and one test run per candidate, and returns the plan over them.
func synthetic(ctx *engine.Context, name string) (*tasks.Plan, []*engine.File, error) {
	envs := ctx.Attr("envs").([]engine.Label)
	if len(envs) == 0 {
		return nil, nil, fmt.Errorf("attribute envs: no environments")
	}
	n := ctx.Attr("per_repo").(int64)
	if n < 1 || n > 10000 {
		return nil, nil, fmt.Errorf("attribute per_repo: %d is not between 1 and 10000", n)
	}
	seed := strconv.FormatInt(ctx.Attr("seed").(int64), 10)
	plan := &tasks.Plan{Source: "synthetic", Strategies: map[string]string{}}
	for _, s := range ctx.Attr("strategies").([]string) {
		switch s {
		case "ast":
			plan.Strategies[s] = ""
		case "llm_rewrite":
			// Needs the model endpoint client of the rollout stage; until
			// one is configured it is reported, not skipped in silence.
			plan.Strategies[s] = "unavailable: no model endpoint is configured for this task_set"
		default:
			return nil, nil, fmt.Errorf("attribute strategies: %q is not one of %s", s, strings.Join(Strategies, ", "))
		}
	}
	if len(plan.Strategies) == 0 {
		return nil, nil, fmt.Errorf("attribute strategies: none given")
	}
	harness, err := workFile(ctx, name+".work/harness.py", tasks.Harness)
	if err != nil {
		return nil, nil, err
	}
	var modify *engine.File
	if _, ok := plan.Strategies["ast"]; ok {
		if modify, err = workFile(ctx, name+".work/modify.py", tasks.Modifier); err != nil {
			return nil, nil, err
		}
	}
	var inputs []*engine.File
	seen := map[string]engine.Label{}
	for _, l := range envs {
		env := EnvOf(ctx.Dep(l))
		if env == nil {
			return nil, nil, fmt.Errorf("attribute envs: %s is a %s, not a swe_env", l, ctx.Dep(l).Kind())
		}
		if prev, ok := seen[env.Repo.Name]; ok {
			return nil, nil, fmt.Errorf("attribute envs: %s and %s are both repository %q", prev, l, env.Repo.Name)
		}
		seen[env.Repo.Name] = l
		dir := name + ".work/" + env.Repo.Name + "/"
		run := func(mnemonic string, out *engine.File, ins []*engine.File, args ...string) error {
			return ctx.AddAction(env.Action(mnemonic, nil, harness, true, ins, []*engine.File{out}, append(harnessArgs(env, out), args...)...))
		}
		baseline, err := ctx.DeclareFile(dir+"clean.json", false)
		if err != nil {
			return nil, nil, err
		}
		if err := run("TestClean", baseline, nil, "--run", "clean=", "--git-audit", "0"); err != nil {
			return nil, nil, err
		}
		pe := tasks.PlanEnv{Name: env.Repo.Name, Label: l.String(), Manifest: env.manifest(), Baseline: baseline.Path}
		if env.Image != nil {
			inputs = append(inputs, env.Image.Manifest)
		}
		inputs = append(inputs, baseline)
		if modify != nil {
			var cands []*engine.File
			for i := range n {
				c, err := ctx.DeclareFile(fmt.Sprintf("%scand%d.json", dir, i), false)
				if err != nil {
					return nil, nil, err
				}
				cands = append(cands, c)
			}
			err := ctx.AddAction(env.Action("BugCandidates", nil, modify, false, nil, cands,
				"--repo", env.Repo.Name, "--seed", seed,
				"--n", strconv.FormatInt(n, 10), "--out", strings.TrimSuffix(cands[0].Path, "0.json")))
			if err != nil {
				return nil, nil, err
			}
			for i, c := range cands {
				res, err := ctx.DeclareFile(fmt.Sprintf("%sresult%d.json", dir, i), false)
				if err != nil {
					return nil, nil, err
				}
				if err := run("TestBug", res, []*engine.File{c, baseline}, "--run", "bug="+c.Path, "--timeout-from", baseline.Path); err != nil {
					return nil, nil, err
				}
				pe.Candidates = append(pe.Candidates, tasks.PlanCand{Candidate: c.Path, Results: res.Path})
				inputs = append(inputs, c, res)
			}
		}
		plan.Envs = append(plan.Envs, pe)
	}
	sort.Slice(plan.Envs, func(i, j int) bool { return plan.Envs[i].Name < plan.Envs[j].Name })
	return plan, inputs, nil
}

// workFile declares a file of the task set's work directory with the
// given content.
func workFile(ctx *engine.Context, name string, body []byte) (*engine.File, error) {
	f, err := ctx.DeclareFile(name, false)
	if err != nil {
		return nil, err
	}
	return f, ctx.Write(f, body, false)
}

// harnessArgs are harness.py's arguments for env's tests, writing out.
func harnessArgs(env *EnvInfo, out *engine.File) []string {
	return []string{"--framework", env.Framework, "--cmd", env.TestCmd, "--out", out.Path}
}
