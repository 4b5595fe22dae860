package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// Spec is one rollout: a task, how its env runs tests, and the policy.
type Spec struct {
	Task      format.Task
	TestCmd   string
	Framework string // pytest, unittest, django or sympy
	// AllTests judges a real task on the whole suite, as a task set with
	// test_scope "all" validated it; else on the files its test patch
	// touches.
	AllTests bool
	MaxTurns int
	Sample   int
	Teacher  string // the policy's name, recorded in the trajectory
}

// Outcome is a rollout's output file: a trajectory, or why there was no
// rollout (the slot is no task).
type Outcome struct {
	Skipped string `json:"skipped,omitempty"`
	*format.Trajectory
}

// Seed is the sampling seed of one rollout: the instance's own (a hash of
// its id), the target's seed attribute and the sample number, so that the
// tasks of one target and the samples of one task differ.
func Seed(instanceID string, seed int64, sample int) int64 {
	h := fnv.New64a()
	h.Write([]byte(instanceID))
	return int64(h.Sum64()>>1) + seed + int64(sample)
}

// stepTimeout bounds the loop's own commands (setup, diff).
const stepTimeout = 5 * time.Minute

// Rollout runs spec's task with a policy (made for the session's workdir)
// in a session from open, then
// checks the agent's patch in a fresh session: resolved iff every
// FAIL_TO_PASS and PASS_TO_PASS test passes with it; semi-resolved iff not,
// but the files it changed cover the gold patch's.
//
// An infrastructure failure (an executors.InfraError: the endpoint did
// not answer, the container broke, the tests could not start) returns
// the error with the trajectory so far, marked with it (InfraError): a
// record of what happened, never a result.
func Rollout(ctx context.Context, open func() (Session, error), newPolicy func(workdir string) (Policy, error), spec Spec) (*format.Trajectory, error) {
	t := spec.Task
	tr, err := rollout(ctx, open, newPolicy, spec)
	var infra *executors.InfraError
	switch {
	case err == nil:
		return tr, nil
	case !errors.As(err, &infra):
		return nil, err
	}
	if tr == nil {
		tr = &format.Trajectory{InstanceID: t.InstanceID}
	}
	tr.Sample, tr.Teacher, tr.GoldPatch = spec.Sample, spec.Teacher, t.Patch
	tr.Resolved, tr.SemiResolved = false, false
	tr.InfraError = &format.InfraError{Class: infra.Class, Message: err.Error()}
	return tr, err
}

// rollout is Rollout; on an error, the trajectory so far (nil before the
// loop began).
func rollout(ctx context.Context, open func() (Session, error), newPolicy func(workdir string) (Policy, error), spec Spec) (*format.Trajectory, error) {
	t := spec.Task
	s, err := open()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	policy, err := newPolicy(s.Workdir())
	if err != nil {
		return nil, err
	}
	scratch, err := setup(ctx, s, t)
	if err != nil {
		return nil, err
	}
	tr, exit, err := Run(ctx, policy, NewToolbox(s), Task{InstanceID: t.InstanceID, ProblemStatement: t.ProblemStatement}, spec.MaxTurns)
	if err != nil {
		return tr, err
	}
	tr.Exit, tr.Sample, tr.Teacher, tr.GoldPatch = exit, spec.Sample, spec.Teacher, t.Patch
	if tr.Patch, err = changes(ctx, s, scratch); err != nil {
		return tr, err
	}
	// A directory session's scratch is on the host's /tmp.
	sh(ctx, s, `rm -rf "$1"`, nil, scratch)
	s.Close()

	fresh, err := open()
	if err != nil {
		return tr, err
	}
	defer fresh.Close()
	res, err := evaluate(ctx, fresh, spec, tr.Patch)
	if err != nil {
		return tr, err
	}
	run := res.Runs["eval"]
	tr.Resolved = run.Error == "" && allPass(run, t.FailToPass) && allPass(run, t.PassToPass)
	if !tr.Resolved {
		gold, err := ParsePatch(t.Patch)
		if err == nil {
			mine, _ := ParsePatch(tr.Patch)
			tr.SemiResolved = len(gold) > 0 && covers(paths(mine), paths(gold))
		}
	}
	return tr, nil
}

func allPass(r tasks.Run, tests []string) bool {
	for _, id := range tests {
		if r.Tests[id] != tasks.Passed {
			return false
		}
	}
	return true
}

func covers(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// sh runs a shell script in the session and fails unless it exits 0.
func sh(ctx context.Context, s Session, script string, stdin []byte, args ...string) (string, error) {
	out, code, err := s.Run(ctx, append([]string{"sh", "-c", script, "lego"}, args...), stdin, stepTimeout)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("%s: exit %d: %s", strings.SplitN(script, "\n", 2)[0], code, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// baseGit runs git on the workdir with a repository of lego's own, outside
// the tree, that records the starting state (the repository's own .git,
// if any, is left alone).
const baseGit = `git --git-dir="$SCRATCH/base.git" --work-tree=. -c user.name=lego -c user.email=lego@localhost`

// setup puts a synthetic task's bug in and records the starting state, in
// a scratch directory it returns.
func setup(ctx context.Context, s Session, t format.Task) (string, error) {
	scratch, err := sh(ctx, s, "mktemp -d /tmp/lego-rollout.XXXXXX", nil)
	if err != nil {
		return "", err
	}
	scratch = strings.TrimSpace(scratch)
	if t.BugPatch != "" {
		if _, err := sh(ctx, s, "git apply --whitespace=nowarn -", []byte(t.BugPatch)); err != nil {
			return "", fmt.Errorf("putting the bug in: %w", err)
		}
	}
	_, err = sh(ctx, s, `SCRATCH=$1
git init -q --bare "$SCRATCH/base.git"
printf '__pycache__/\n*.pyc\n.pytest_cache/\n' > "$SCRATCH/base.git/info/exclude"
`+baseGit+` add -A . && `+baseGit+` commit -q --allow-empty -m start`, nil, scratch)
	return scratch, err
}

// changes is the agent's patch: the tree against the starting state.
func changes(ctx context.Context, s Session, scratch string) (string, error) {
	return sh(ctx, s, `SCRATCH=$1
`+baseGit+` add -A . && `+baseGit+` diff --cached --binary HEAD`, nil, scratch)
}

// evaluate runs the tests in a fresh session with the task's patches and
// the agent's, by lego's harness.
func evaluate(ctx context.Context, s Session, spec Spec, patch string) (*tasks.Results, error) {
	t := spec.Task
	scratch, err := sh(ctx, s, "mktemp -d /tmp/lego-eval.XXXXXX", nil)
	if err != nil {
		return nil, err
	}
	scratch = strings.TrimSpace(scratch)
	defer sh(context.WithoutCancel(ctx), s, `rm -rf "$1"`, nil, scratch)
	write := func(name string, body []byte) (string, error) {
		p := scratch + "/" + name
		_, err := sh(ctx, s, `cat > "$1"`, body, p)
		return p, err
	}
	harness, err := write("harness.py", tasks.Harness)
	if err != nil {
		return nil, err
	}
	var patches, scope []string
	for _, p := range []struct{ name, body string }{{"bug.diff", t.BugPatch}, {"model.diff", patch}, {"test.diff", t.TestPatch}} {
		if strings.TrimSpace(p.body) == "" {
			continue
		}
		path, err := write(p.name, []byte(p.body))
		if err != nil {
			return nil, err
		}
		patches = append(patches, path)
		if p.name == "test.diff" && !spec.AllTests {
			// A real task: the test files its test patch touches, as it
			// was validated and as SWE-bench evaluates.
			scope = []string{"--scope-from", path}
		}
	}
	out := scratch + "/results.json"
	args := append([]string{"python3", harness, "--root", s.Workdir(), "--framework", spec.Framework, "--cmd", spec.TestCmd,
		"--run", "eval=" + strings.Join(patches, ","), "--out", out}, scope...)
	log, code, err := s.Run(ctx, args, nil, 2*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("evaluating: %w", err)
	}
	// The harness's own report that the tests could not start: no
	// outcome of the agent's patch, whatever it is.
	if ie := executors.InfraOf(int32(code), string(log)); ie != nil {
		return nil, &executors.InfraError{Class: ie.Class, Err: fmt.Errorf("evaluating: %w", ie.Err)}
	}
	if code != 0 {
		return nil, fmt.Errorf("evaluating: the harness exited %d", code)
	}
	b, err := sh(ctx, s, `cat "$1"`, nil, out)
	if err != nil {
		return nil, err
	}
	var res tasks.Results
	if err := json.Unmarshal([]byte(b), &res); err != nil {
		return nil, fmt.Errorf("evaluation results: %w", err)
	}
	return &res, nil
}
