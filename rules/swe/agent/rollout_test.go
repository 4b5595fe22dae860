package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
)

// finisher gives up at once.
type finisher struct{}

func (finisher) Next(ctx context.Context, m []llmMessage, tl []llmTool) (llmMessage, error) {
	return (&Scripted{}).Next(ctx, m, tl)
}

// A rollout of the example's minicalc pull request on directory sessions:
// the scripted policy resolves it, as the tests run afresh with
// test_patch say; a policy that does nothing does not.
func TestRolloutResolvesByRunningTests(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile("../../../examples/swe-lego/repos/upstream/minicalc/" + p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	task := format.Task{InstanceID: "example__minicalc-7", Patch: read("fix.diff"), TestPatch: read("test.diff"),
		ProblemStatement: "unary minus", FailToPass: []string{"tests/test_eval.py::test_unary_minus"},
		PassToPass: []string{"tests/test_eval.py::test_precedence", "tests/test_lexer.py::test_tokenize_numbers_and_ops"}}
	var opened []string
	open := func() (Session, error) {
		dir := filepath.Join(t.TempDir(), "testbed")
		if out, err := exec.Command("cp", "-r", "../../../examples/swe-lego/repos/minicalc", dir).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		opened = append(opened, dir)
		return NewDirSession(dir)
	}
	spec := Spec{Task: task, TestCmd: "/usr/bin/python3 -m pytest", Framework: "pytest", MaxTurns: 50, Teacher: "scripted"}
	scripted := func(workdir string) (Policy, error) {
		return NewScripted(ScriptedTask{Workdir: workdir, GoldPatch: task.Patch, TestCmd: spec.TestCmd, Tests: task.FailToPass}, ScriptedOptions{MisstepRate: 0.3}, 5)
	}
	tr, err := Rollout(context.Background(), open, scripted, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Resolved || tr.Exit != ExitFinish || !strings.Contains(tr.Patch, `"neg"`) || tr.GoldPatch != task.Patch || len(opened) != 2 {
		t.Errorf("resolved %v, exit %s, %d sessions, patch:\n%s", tr.Resolved, tr.Exit, len(opened), tr.Patch)
	}
	if strings.Contains(tr.Patch, "__pycache__") || strings.Contains(tr.Patch, "test_eval.py") {
		t.Errorf("the patch holds more than the agent's edits:\n%s", tr.Patch)
	}

	tr, err = Rollout(context.Background(), open, func(string) (Policy, error) { return finisher{}, nil }, spec)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Resolved || tr.SemiResolved || tr.Patch != "" {
		t.Errorf("doing nothing: resolved %v, semi %v, patch %q", tr.Resolved, tr.SemiResolved, tr.Patch)
	}
}

type (
	llmMessage = llm.Message
	llmTool    = llm.Tool
)

// BenchmarkScriptedRollout: whole rollouts of the example's minicalc pull
// request by the scripted policy on directory sessions (loop, then the
// tests afresh), as rollouts per minute.
func BenchmarkScriptedRollout(b *testing.B) {
	read := func(p string) string {
		bs, err := os.ReadFile("../../../examples/swe-lego/repos/upstream/minicalc/" + p)
		if err != nil {
			b.Fatal(err)
		}
		return string(bs)
	}
	task := format.Task{InstanceID: "example__minicalc-7", Patch: read("fix.diff"), TestPatch: read("test.diff"), ProblemStatement: "unary minus",
		FailToPass: []string{"tests/test_eval.py::test_unary_minus"}, PassToPass: []string{"tests/test_eval.py::test_precedence"}}
	spec := Spec{Task: task, TestCmd: "/usr/bin/python3 -m pytest", Framework: "pytest", MaxTurns: 100}
	open := func() (Session, error) {
		dir := filepath.Join(b.TempDir(), "testbed")
		if out, err := exec.Command("cp", "-r", "../../../examples/swe-lego/repos/minicalc", dir).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		return NewDirSession(dir)
	}
	turns := 0
	b.ResetTimer()
	for i := range b.N {
		tr, err := Rollout(context.Background(), open, func(w string) (Policy, error) {
			return NewScripted(ScriptedTask{Workdir: w, GoldPatch: task.Patch, TestCmd: spec.TestCmd, Framework: "pytest", Tests: []string{"tests/test_eval.py"}}, ScriptedOptions{MisstepRate: 0.3}, int64(i))
		}, spec)
		if err != nil || !tr.Resolved {
			b.Fatalf("resolved %v, %v", tr != nil && tr.Resolved, err)
		}
		turns += tr.Turns
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "rollouts/min")
	b.ReportMetric(float64(turns)/float64(b.N), "turns/rollout")
}
