package swe

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
)

// PolicyInfo is what a policy target provides: its settings file, and the
// endpoint when it is a model (nil for the scripted policy).
type PolicyInfo struct {
	Name     string
	Config   *engine.File
	Endpoint *EndpointInfo
	Inputs   []*engine.File // what else the policy reads (a checkpoint)
}

type policyKey struct{}

// PolicyOf returns the policy a target provides: a scripted_policy or a
// model_endpoint; nil otherwise.
func PolicyOf(t *engine.Target) *PolicyInfo {
	if v, ok := t.Providers[policyKey{}].(*PolicyInfo); ok {
		return v
	}
	if ep := EndpointOf(t); ep != nil {
		return &PolicyInfo{Name: t.Label.String(), Config: ep.Config, Endpoint: ep}
	}
	return nil
}

// ScriptedConfig is a scripted_policy's settings file.
type ScriptedConfig struct {
	Kind        string  `json:"kind"` // "scripted"
	MisstepRate float64 `json:"misstep_rate"`
	GiveUpRate  float64 `json:"give_up_rate,omitempty"`
	Seed        int64   `json:"seed"`
}

// ScriptedPolicy is scripted_policy: the offline stand-in for a teacher
// model (see agent.Scripted), for the example and CI only.
type ScriptedPolicy struct{}

func (ScriptedPolicy) Kind() string { return "scripted_policy" }

func (ScriptedPolicy) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "misstep_rate", Type: engine.AttrString, Default: "0.2", Doc: "chance (0..1) of a misstep before each step: failing commands, edits undone"},
		{Name: "give_up_rate", Type: engine.AttrString, Default: "0", Doc: "chance (0..1) of finishing without a fix once the failure is reproduced (unresolved trajectories, for a verifier)"},
		{Name: "seed", Type: engine.AttrInt, Doc: "makes the missteps reproducible"},
	}
}

func (ScriptedPolicy) Analyze(ctx *engine.Context) error {
	rate, err := fraction(ctx, "misstep_rate")
	if err != nil {
		return err
	}
	giveUp, err := fraction(ctx, "give_up_rate")
	if err != nil {
		return err
	}
	f, err := jsonFile(ctx, ctx.Label().Name+".policy.json", ScriptedConfig{Kind: "scripted", MisstepRate: rate, GiveUpRate: giveUp, Seed: ctx.Attr("seed").(int64)})
	if err != nil {
		return err
	}
	ctx.Target.Files = []*engine.File{f}
	provide(ctx.Target, policyKey{}, &PolicyInfo{Name: ctx.Label().String(), Config: f})
	return nil
}

// fraction reads a string attribute holding a number from 0 to 1.
func fraction(ctx *engine.Context, attr string) (float64, error) {
	v, err := strconv.ParseFloat(ctx.Attr(attr).(string), 64)
	if err != nil || v < 0 || v > 1 {
		return 0, fmt.Errorf("attribute %s: %q is not a number from 0 to 1", attr, ctx.Attr(attr))
	}
	return v, nil
}

// rolloutTimeout bounds one rollout: up to max_turns commands, and the
// tests twice.
const rolloutTimeout = 6 * time.Hour

// Rollout is rollout: a policy run on every task of some task sets, n
// samples each, one action per (task, sample), so that a build stopped
// after 900 of 1,000 rollouts reruns 100. A slot that is no task (a
// rejected candidate) gives a skipped outcome. The output directory holds
// trajectories.jsonl (the data plane's format) and report.json.
type Rollout struct{}

func (Rollout) Kind() string { return "rollout" }

func (Rollout) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "tasks", Type: engine.AttrLabelList, Mandatory: true, Doc: "task_set targets"},
		{Name: "policy", Type: engine.AttrLabel, Mandatory: true, Doc: "a model_endpoint or a scripted_policy"},
		{Name: "n", Type: engine.AttrInt, Default: int64(1), Doc: "rollouts per task"},
		{Name: "seed", Type: engine.AttrInt, Doc: "sampling seed (with the sample number)"},
		{Name: "max_turns", Type: engine.AttrInt, Default: int64(100), Doc: "assistant turns before a rollout stops"},
	}
}

func (Rollout) Analyze(ctx *engine.Context) error {
	pl := ctx.Attr("policy").(engine.Label)
	policy := PolicyOf(ctx.Dep(pl))
	if policy == nil {
		return fmt.Errorf("attribute policy: %s is a %s, not a model_endpoint or scripted_policy", pl, ctx.Dep(pl).Kind())
	}
	outs, inputs, err := rolloutActions(ctx, policy, "n")
	if err != nil {
		return err
	}
	return collect(ctx, rolloutCollect, outs, inputs)
}

// rolloutActions adds one rollout action per (task, sample) of the target's
// tasks attribute (samples: the count attribute; seed, max_turns), and
// returns the outcome files.
func rolloutActions(ctx *engine.Context, policy *PolicyInfo, count string) ([]string, []*engine.File, error) {
	n, seed, maxTurns := ctx.Attr(count).(int64), ctx.Attr("seed").(int64), ctx.Attr("max_turns").(int64)
	if n < 1 || n > 1000 {
		return nil, nil, fmt.Errorf("attribute %s: %d is not between 1 and 1000", count, n)
	}
	if maxTurns < 1 {
		return nil, nil, fmt.Errorf("attribute max_turns: %d is not positive", maxTurns)
	}
	name := ctx.Label().Name
	var outs []string
	var inputs []*engine.File
	seen := map[string]bool{}
	for _, l := range ctx.Attr("tasks").([]engine.Label) {
		ts := TaskSetOf(ctx.Dep(l))
		if ts == nil {
			return nil, nil, fmt.Errorf("attribute tasks: %s is a %s, not a task_set", l, ctx.Dep(l).Kind())
		}
		for _, sl := range ts.Slots {
			if seen[sl.Verdict.Path] {
				continue // a slot of two of the sets (a merge and a part)
			}
			seen[sl.Verdict.Path] = true
			if sl.Env == nil {
				continue // dropped at analysis (no env): no task to roll out
			}
			if sl.Env.Rooted {
				return nil, nil, fmt.Errorf("attribute tasks: %s: rollouts in directory envs made from install_config are not supported yet; build the env set with form = \"image\"", l)
			}
			for k := range n {
				out, err := ctx.DeclareFile(fmt.Sprintf("%s.work/%s.%d.json", name, slotName(sl), k), false)
				if err != nil {
					return nil, nil, err
				}
				a, err := rolloutAction(sl, policy, out, k, seed, maxTurns)
				if err != nil {
					return nil, nil, err
				}
				if err := ctx.AddAction(a); err != nil {
					return nil, nil, err
				}
				outs = append(outs, out.Path)
				inputs = append(inputs, out)
			}
		}
	}
	if len(outs) == 0 {
		return nil, nil, fmt.Errorf("attribute tasks: no tasks")
	}
	return outs, inputs, nil
}

// slotName names a slot's rollouts after its verdict file.
func slotName(sl *TaskSlot) string {
	p := strings.TrimPrefix(strings.TrimSuffix(sl.Verdict.ShortPath(), ".slot.json"), "/")
	return strings.NewReplacer("/", "_", ".work", "").Replace(p)
}

// rolloutAction runs `lego tool rollout` for one (slot, sample): on the
// host, driving a container of the task's image (or a copy of a directory
// env) and, for a model, its endpoint.
func rolloutAction(sl *TaskSlot, policy *PolicyInfo, out *engine.File, sample, seed, maxTurns int64) (*engine.Action, error) {
	env := sl.Env
	args := []string{"--slot", sl.Verdict.Path, "--policy", policy.Config.Path, "--policy-name", policy.Name,
		"--sample", strconv.FormatInt(sample, 10), "--seed", strconv.FormatInt(seed, 10), "--max-turns", strconv.FormatInt(maxTurns, 10),
		"--test-cmd", env.TestCmd, "--framework", env.Framework, "--out", out.Path}
	if sl.Scope == "all" {
		args = append(args, "--test-scope", "all")
	}
	inputs := append([]*engine.File{sl.Verdict, policy.Config}, policy.Inputs...)
	if sl.Image != nil {
		args = append(args, "--image", sl.Image.Path, "--workdir", env.Workdir)
		inputs = append(inputs, sl.Image)
	} else {
		args = append(args, "--env-dir", env.Dir.Path)
		inputs = append(inputs, env.Dir)
		if sl.Git != nil {
			args = append(args, "--git", sl.Git.Path)
			inputs = append(inputs, sl.Git)
		}
	}
	a, err := legotool.Action(rolloutTool, nil, inputs, []*engine.File{out}, args...)
	if err != nil {
		return nil, err
	}
	a.Timeout = rolloutTimeout
	if sl.Image != nil {
		legotool.RunsContainers(a)
	}
	if ep := policy.Endpoint; ep != nil {
		a.Network = true
		if ep.APIKeyEnv != "" {
			a.SecretEnv = []string{ep.APIKeyEnv}
		}
	}
	return a, nil
}
