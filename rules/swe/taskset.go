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
		{Name: "instances", Type: engine.AttrLabel, Doc: "real: the instances file (JSON Lines, a JSON array or Parquet, SWE-bench's or SWE-rebench's schema: instance_id, repo, base_commit, created_at, patch, test_patch, FAIL_TO_PASS, PASS_TO_PASS, ...)"},
		{Name: "envs", Type: engine.AttrLabelList, Doc: "synthetic: the swe_env targets to make bugs in; real: swe_env targets at the instances' base commits, or swe_env_set targets (each instance's env by repository and environment_setup_commit)"},
		{Name: "test_scope", Type: engine.AttrString, Default: "touched", Doc: "real: touched (the test files test_patch touches, as SWE-bench's harness runs them) or all (the whole suite)"},
		{Name: "strategies", Type: engine.AttrStringList, Default: []string{"ast"}, Doc: "synthetic: ast (procedural AST modifiers) and/or llm_rewrite (needs a model endpoint)"},
		{Name: "per_repo", Type: engine.AttrInt, Default: int64(10), Doc: "synthetic: candidate bugs per repository and strategy, each validated"},
		{Name: "model", Type: engine.AttrLabel, Doc: "synthetic: a model_endpoint for llm_rewrite and for problem statements (without one, statements are written from the failing tests)"},
		{Name: "seed", Type: engine.AttrInt, Doc: "synthetic: chooses the candidates"},
		{Name: "sets", Type: engine.AttrLabelList, Doc: "merge: the task sets to join"},
	}
}

// TaskSlot is one candidate (synthetic) or instance (real) of a task set:
// what its verdict is judged from, and where a task made of it runs.
type TaskSlot struct {
	Spec    tasks.SlotSpec
	Stem    string         // work path of its files, without extension
	Inputs  []*engine.File // the files Spec names
	Env     *EnvInfo
	Image   *engine.File // manifest of the image the task runs in; nil for a directory env
	Git     *engine.File // a real instance in a directory env: its .git
	Scope   string       // a real instance: the tests it was validated on (touched or all)
	Verdict *engine.File // the judged Slot (set by the task_set rule)
}

// TaskSetInfo is what a task_set provides: its slots, in order (a merge:
// its sets' slots).
type TaskSetInfo struct{ Slots []*TaskSlot }

type taskSetKey struct{}

// TaskSetOf returns what a task_set target provides, or nil.
func TaskSetOf(t *engine.Target) *TaskSetInfo {
	v, _ := t.Providers[taskSetKey{}].(*TaskSetInfo)
	return v
}

func (TaskSet) Analyze(ctx *engine.Context) error {
	src := ctx.Attr("source").(string)
	name := ctx.Label().Name
	var plan tasks.Plan
	var inputs []*engine.File
	info := &TaskSetInfo{}
	switch src {
	case "real", "synthetic":
		declare := synthetic
		if src == "real" {
			declare = realTasks
		}
		p, slots, err := declare(ctx, name)
		if err != nil {
			return err
		}
		plan = *p
		// One verdict per slot, each its own action: a rollout of a task
		// depends on its slot's verdict only.
		for _, sl := range slots {
			if sl.Verdict, err = ctx.DeclareFile(sl.Stem+".slot.json", false); err != nil {
				return err
			}
			spec, err := json.Marshal(sl.Spec)
			if err != nil {
				return err
			}
			a, err := legotool.Action(taskJudge, nil, sl.Inputs, []*engine.File{sl.Verdict}, "--spec", string(spec), "--out", sl.Verdict.Path)
			if err != nil {
				return err
			}
			a.Tally = true
			if err := ctx.AddAction(a); err != nil {
				return err
			}
			plan.Slots = append(plan.Slots, sl.Verdict.Path)
			inputs = append(inputs, sl.Verdict)
		}
		info.Slots = slots
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
			info.Slots = append(info.Slots, TaskSetOf(t).Slots...)
		}
	default:
		return fmt.Errorf("attribute source: %q is not one of %s", src, strings.Join(TaskSources, ", "))
	}
	provide(ctx.Target, taskSetKey{}, info)
	return collect(ctx, taskCollect, plan, inputs)
}

// collect declares the target's output directory, made by tool from a
// plan (written at analysis as JSON) over inputs.
func collect(ctx *engine.Context, tool *legotool.Tool, plan any, inputs []*engine.File) error {
	name := ctx.Label().Name
	planFile, err := jsonFile(ctx, name+".work/plan.json", plan)
	if err != nil {
		return err
	}
	out, err := ctx.DeclareFile(name, true)
	if err != nil {
		return err
	}
	a, err := legotool.Action(tool, nil, append(inputs, planFile), []*engine.File{out}, "--plan", planFile.Path, "--out", out.Path)
	if err != nil {
		return err
	}
	ctx.Target.Files = []*engine.File{out}
	return ctx.AddAction(a)
}

// synthetic declares, per env, the candidate generation (per strategy),
// the clean test run and one test run per candidate (and, with a model,
// one problem statement per candidate), and returns the plan over them.
func synthetic(ctx *engine.Context, name string) (*tasks.Plan, []*TaskSlot, error) {
	envs := ctx.Attr("envs").([]engine.Label)
	if len(envs) == 0 {
		return nil, nil, fmt.Errorf("attribute envs: no environments")
	}
	n := ctx.Attr("per_repo").(int64)
	if n < 1 || n > 10000 {
		return nil, nil, fmt.Errorf("attribute per_repo: %d is not between 1 and 10000", n)
	}
	var model *EndpointInfo
	if l, ok := ctx.Attr("model").(engine.Label); ok && l != (engine.Label{}) {
		if model = EndpointOf(ctx.Dep(l)); model == nil {
			return nil, nil, fmt.Errorf("attribute model: %s is a %s, not a model_endpoint", l, ctx.Dep(l).Kind())
		}
	}
	seed := strconv.FormatInt(ctx.Attr("seed").(int64), 10)
	plan := &tasks.Plan{Source: "synthetic", Strategies: map[string]string{}}
	for _, s := range ctx.Attr("strategies").([]string) {
		switch {
		case s == "ast" || s == "llm_rewrite" && model != nil:
			plan.Strategies[s] = ""
		case s == "llm_rewrite":
			// Reported, not skipped in silence.
			plan.Strategies[s] = "unavailable: no model endpoint is configured for this task_set (attribute model)"
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
	modify, err := workFile(ctx, name+".work/modify.py", tasks.Modifier)
	if err != nil {
		return nil, nil, err
	}
	var slots []*TaskSlot
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
		envInputs := []*engine.File{baseline}
		var image *engine.File
		if env.Image != nil {
			image = env.Image.Manifest
			envInputs = append(envInputs, image)
		}
		// Each strategy's candidates: files prefix0.json ... made by one
		// action (ast) or one action each (llm_rewrite).
		var cands []*engine.File
		for _, st := range []string{"ast", "llm_rewrite"} {
			if why, ok := plan.Strategies[st]; !ok || why != "" {
				continue
			}
			prefix := map[string]string{"ast": "cand", "llm_rewrite": "llm"}[st]
			var files []*engine.File
			for i := range n {
				c, err := ctx.DeclareFile(fmt.Sprintf("%s%s%d.json", dir, prefix, i), false)
				if err != nil {
					return nil, nil, err
				}
				files = append(files, c)
			}
			if st == "ast" {
				err = ctx.AddAction(env.Action("BugCandidates", nil, modify, false, nil, files,
					"--repo", env.Repo.Name, "--seed", seed, "--n", strconv.FormatInt(n, 10), "--out", strings.TrimSuffix(files[0].Path, "0.json")))
			} else {
				err = llmRewrite(ctx, env, modify, model, dir, seed, files)
			}
			if err != nil {
				return nil, nil, err
			}
			cands = append(cands, files...)
		}
		for _, c := range cands {
			stem := strings.TrimSuffix(c.Path[strings.LastIndex(c.Path, "/")+1:], ".json")
			res, err := ctx.DeclareFile(dir+stem+".result.json", false)
			if err != nil {
				return nil, nil, err
			}
			if err := run("TestBug", res, []*engine.File{c, baseline}, "--run", "bug="+c.Path, "--timeout-from", baseline.Path); err != nil {
				return nil, nil, err
			}
			pc := tasks.PlanCand{Candidate: c.Path, Results: res.Path}
			slot := &TaskSlot{Stem: dir + stem, Env: env, Image: image, Inputs: append([]*engine.File{c, res}, envInputs...)}
			if model != nil {
				issue, err := ctx.DeclareFile(dir+stem+".issue.json", false)
				if err != nil {
					return nil, nil, err
				}
				a, err := modelAction(model, taskIssue, []*engine.File{c, res, baseline}, []*engine.File{issue},
					"--candidate", c.Path, "--results", res.Path, "--baseline", baseline.Path, "--out", issue.Path)
				if err != nil {
					return nil, nil, err
				}
				if err := ctx.AddAction(a); err != nil {
					return nil, nil, err
				}
				pc.Issue = issue.Path
				slot.Inputs = append(slot.Inputs, issue)
			}
			slot.Spec = tasks.SlotSpec{Env: &pe, Cand: &pc}
			slots = append(slots, slot)
		}
	}
	// Tasks in repository order, whatever the order of envs.
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].Env.Repo.Name < slots[j].Env.Repo.Name })
	return plan, slots, nil
}

// llmRewrite declares the llm_rewrite candidates of env: the functions to
// rewrite, listed in the env, then one model call per function, each its
// own action (a failed call reruns alone).
func llmRewrite(ctx *engine.Context, env *EnvInfo, modify *engine.File, model *EndpointInfo, dir, seed string, cands []*engine.File) error {
	sites, err := ctx.DeclareFile(dir+"rewrite_sites.json", false)
	if err != nil {
		return err
	}
	err = ctx.AddAction(env.Action("RewriteSites", nil, modify, false, nil, []*engine.File{sites},
		"--repo", env.Repo.Name, "--seed", seed, "--n", strconv.Itoa(len(cands)), "--rewrite-sites", sites.Path))
	if err != nil {
		return err
	}
	for i, c := range cands {
		a, err := modelAction(model, rewriteTool, []*engine.File{sites}, []*engine.File{c},
			"--sites", sites.Path, "--index", strconv.Itoa(i), "--out", c.Path)
		if err != nil {
			return err
		}
		if err := ctx.AddAction(a); err != nil {
			return err
		}
	}
	return nil
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

// jsonFile declares a file written at analysis with v as JSON.
func jsonFile(ctx *engine.Context, name string, v any) (*engine.File, error) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, err
	}
	return workFile(ctx, name, append(b, '\n'))
}

// harnessArgs are harness.py's arguments for env's tests, writing out.
func harnessArgs(env *EnvInfo, out *engine.File) []string {
	return []string{"--framework", env.Framework, "--cmd", env.TestCmd, "--out", out.Path}
}
