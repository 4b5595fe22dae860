package swe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/agent"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/tasks"
	"github.com/legobuild/lego/rules/swe/tiny"
)

// The tools of rollout (and of verifier_eval's rollouts).
var (
	rolloutTool = legotool.Register(&legotool.Tool{Name: "rollout", Run: runRollout,
		Usage: "run one rollout of one task with a policy"})
	rolloutCollect = legotool.Register(&legotool.Tool{Name: "rollout-collect", Run: runRolloutCollect,
		Usage: "join a rollout target's outcomes into trajectories and a report"})
)

// runRollout runs one rollout of one task (the rollout rule's action):
// the agent loop in a container of the task's image (commands exec'd
// into it) or in a copy of a directory env, then the tests afresh.
func runRollout(ctx context.Context, fs *flag.FlagSet, args []string) error {
	slotPath := fs.String("slot", "", "the task's verdict (tasks.Slot)")
	policyPath := fs.String("policy", "", "the policy's settings (a scripted_policy's, or a model_endpoint's)")
	policyName := fs.String("policy-name", "", "the policy's label, recorded as the teacher")
	sample := fs.Int("sample", 0, "which rollout of the task")
	seed := fs.Int64("seed", 0, "sampling seed")
	maxTurns := fs.Int("max-turns", 100, "assistant turns")
	testCmd := fs.String("test-cmd", "", "the env's test command")
	framework := fs.String("framework", "pytest", "the test runner: pytest, unittest, django or sympy")
	scope := fs.String("test-scope", "touched", "a real task's tests: touched (the files its test patch touches, as it was validated) or all")
	image := fs.String("image", "", "the task's image manifest file (a container per session)")
	workdir := fs.String("workdir", "/testbed", "with --image: the repository in the image")
	envDir := fs.String("env-dir", "", "instead of --image: a directory env (copied per session)")
	gitDir := fs.String("git", "", "with --env-dir: the .git of a real task")
	out := fs.String("out", "", "output: the outcome (a trajectory, or why none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var slot tasks.Slot
	if err := format.ReadJSON(*slotPath, &slot); err != nil {
		return err
	}
	if slot.Task == nil {
		why := "empty candidate"
		if slot.Rejected != nil {
			why = slot.Rejected.Reason
		}
		return format.WriteJSON(*out, agent.Outcome{Skipped: "not a task: " + why})
	}
	task := *slot.Task
	open, err := sessionOpener(ctx, *image, *workdir, *envDir, *gitDir)
	if err != nil {
		return err
	}
	newPolicy, err := policyMaker(*policyPath, task, *testCmd, *framework, agent.Seed(task.InstanceID, *seed, *sample))
	if err != nil {
		return err
	}
	tr, err := agent.Rollout(ctx, open, newPolicy, agent.Spec{Task: task, TestCmd: *testCmd, Framework: *framework, AllTests: *scope == "all",
		MaxTurns: *maxTurns, Sample: *sample, Teacher: *policyName})
	if tr != nil {
		tr.Seed = *seed
		if werr := format.WriteJSON(*out, agent.Outcome{Trajectory: tr}); werr != nil && err == nil {
			return werr
		}
	}
	if err != nil {
		// An infrastructure failure leaves its record (the trajectory
		// marked infra_error) in the outcome, and the error, which lego
		// tool reports by its class: the action fails, is not cached,
		// and the next build runs this rollout alone again.
		return fmt.Errorf("rollout of %s: %w", task.InstanceID, err)
	}
	return nil
}

// sessionOpener opens a fresh session per call: a container of the image,
// or a copy of the directory env.
func sessionOpener(ctx context.Context, image, workdir, envDir, gitDir string) (func() (agent.Session, error), error) {
	if image == "" {
		return func() (agent.Session, error) {
			dir, err := os.MkdirTemp("", "lego-env-")
			if err != nil {
				return nil, err
			}
			root := filepath.Join(dir, "testbed")
			if out, err := exec.CommandContext(ctx, "cp", "-r", envDir, root).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("copying the env: %v: %s", err, out)
			}
			if gitDir != "" {
				if out, err := exec.CommandContext(ctx, "cp", "-r", gitDir, filepath.Join(root, ".git")).CombinedOutput(); err != nil {
					return nil, fmt.Errorf("copying the history: %v: %s", err, out)
				}
			}
			exec.Command("chmod", "-R", "u+w", root).Run()
			sess, err := agent.NewDirSession(root)
			if err != nil {
				return nil, err
			}
			return &removing{DirSession: sess, base: dir}, nil
		}, nil
	}
	open, err := legotool.Containers(ctx, image, workdir)
	if err != nil {
		return nil, err
	}
	return func() (agent.Session, error) {
		s, err := open()
		if err != nil {
			return nil, err
		}
		return s, nil
	}, nil
}

// removing is a directory session that deletes its copy when closed.
type removing struct {
	*agent.DirSession
	base string
}

func (r *removing) Close() error { return errors.Join(r.DirSession.Close(), os.RemoveAll(r.base)) }

// policyMaker reads a policy's settings: a scripted_policy's (kind
// "scripted"), a torch_tiny checkpoint's (kind "ranked", written by
// verifier_eval), else a model endpoint's.
func policyMaker(path string, task format.Task, testCmd, framework string, seed int64) (func(string) (agent.Policy, error), error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc ScriptedConfig
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	switch sc.Kind {
	case "ranked":
		var rc RankedConfig
		if err := json.Unmarshal(b, &rc); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		m, err := tiny.Load(rc.Checkpoint)
		if err != nil {
			return nil, err
		}
		return func(workdir string) (agent.Policy, error) {
			return agent.NewRanked(agent.ScriptedTaskOf(task, workdir, testCmd, framework), agent.TinyRanker(m), rc.Temperature, seed)
		}, nil
	case "scripted":
		return func(workdir string) (agent.Policy, error) {
			return agent.NewScripted(agent.ScriptedTaskOf(task, workdir, testCmd, framework),
				agent.ScriptedOptions{MisstepRate: sc.MisstepRate, GiveUpRate: sc.GiveUpRate}, sc.Seed^seed)
		}, nil
	}
	client, err := llm.Open(path)
	if err != nil {
		return nil, err
	}
	return func(string) (agent.Policy, error) { return &agent.ModelPolicy{Client: client, Seed: seed}, nil }, nil
}

// runRolloutCollect joins a rollout target's outcomes.
func runRolloutCollect(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		plan := fs.String("plan", "", "the outcome files, as a JSON list")
		return func(out string) error {
			var files []string
			if err := format.ReadJSON(*plan, &files); err != nil {
				return err
			}
			rep, err := agent.Collect(files, out)
			if err != nil {
				return err
			}
			fmt.Printf("%d rollouts, %d resolved, %d semi-resolved, %d slots skipped\n", rep.Rollouts, rep.Resolved, rep.SemiResolved, rep.Skipped)
			return nil
		}
	})
}
