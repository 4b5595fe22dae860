package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/legobuild/lego/executors"
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
		PassToPass: []string{"tests/test_eval.py::test_precedence", "tests/test_eval.py::test_division"}}
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

	// The final judgement runs the test files the test patch touches, as
	// SWE-bench does; a task with no test patch (synthetic) runs them all,
	// as does a real one of a set validated on the whole suite.
	for _, tc := range []struct {
		name      string
		testPatch string
		all       bool
		lexer     bool // tests/test_lexer.py's tests ran
	}{{"real", task.TestPatch, false, false}, {"synthetic", "", false, true}, {"real, test_scope all", task.TestPatch, true, true}} {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		sp := spec
		sp.Task.TestPatch, sp.AllTests = tc.testPatch, tc.all
		res, err := evaluate(context.Background(), s, sp, task.Patch)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		lexer := false
		for id := range res.Runs["eval"].Tests {
			lexer = lexer || strings.HasPrefix(id, "tests/test_lexer.py::")
		}
		touched := res.Scope != nil && res.Scope.Mode == "touched" && strings.Join(res.Scope.Files, " ") == "tests/test_eval.py"
		if lexer != tc.lexer || touched == tc.lexer || len(res.Runs["eval"].Tests) == 0 {
			t.Errorf("%s task: scope %+v, tests run %v", tc.name, res.Scope, res.Runs["eval"].Tests)
		}
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

// breaking is a directory session whose commands fail, from the n-th
// on, as a broken container's do.
type breaking struct {
	*DirSession
	n, calls int
}

func (b *breaking) Run(ctx context.Context, argv []string, stdin []byte, timeout time.Duration) ([]byte, int, error) {
	if b.calls++; b.calls >= b.n {
		return nil, -1, executors.Infra(executors.ClassRuntime, errors.New("exec in the session: container gone"))
	}
	return b.DirSession.Run(ctx, argv, stdin, timeout)
}

// A rollout the infrastructure cuts short returns its error with the
// trajectory so far, marked infra_error with the class and message; it
// is never an unresolved result. Other errors give no trajectory.
func TestRolloutInfraFailuresAreMarked(t *testing.T) {
	fix, err := os.ReadFile("../../../examples/swe-lego/repos/upstream/minicalc/fix.diff")
	if err != nil {
		t.Fatal(err)
	}
	task := format.Task{InstanceID: "example__minicalc-7", ProblemStatement: "unary minus", Patch: string(fix),
		FailToPass: []string{"tests/test_eval.py::test_unary_minus"}}
	var sess *breaking
	open := func() (Session, error) {
		dir := filepath.Join(t.TempDir(), "testbed")
		if out, err := exec.Command("cp", "-r", "../../../examples/swe-lego/repos/minicalc", dir).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		ds, err := NewDirSession(dir)
		if err != nil {
			return nil, err
		}
		sess = &breaking{DirSession: ds, n: 1 << 30}
		return sess, nil
	}
	spec := Spec{Task: task, TestCmd: "/usr/bin/python3 -m pytest", Framework: "pytest", MaxTurns: 5, Teacher: "m", Sample: 2}

	// The endpoint answers one turn, then 503 to every try.
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			http.Error(w, `{"error": "overloaded"}`, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"choices": [{"message": {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"echo hi\"}"}}]}, "finish_reason": "tool_calls"}]}`)
	}))
	defer srv.Close()
	client, err := llm.New(llm.Config{BaseURL: srv.URL, Model: "m", Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	client.Sleep = func(context.Context, time.Duration) error { return nil }
	model := func(string) (Policy, error) { return &ModelPolicy{Client: client}, nil }
	tr, err := Rollout(context.Background(), open, model, spec)
	if executors.ClassOf(err) != executors.ClassEndpoint || tr == nil || tr.InfraError == nil || tr.InfraError.Class != executors.ClassEndpoint ||
		!strings.Contains(tr.InfraError.Message, "answered 503") || !strings.Contains(tr.InfraError.Message, "(3 tries)") {
		t.Fatalf("endpoint down: %v, trajectory %+v", err, tr)
	}
	if tr.Turns != 1 || tr.Resolved || tr.Sample != 2 || tr.Teacher != "m" || !strings.Contains(tr.Messages[len(tr.Messages)-1].Content, "hi") || requests.Load() != 4 {
		t.Errorf("the trajectory so far: %d turns, resolved %v, last message %+v, %d requests", tr.Turns, tr.Resolved, tr.Messages[len(tr.Messages)-1], requests.Load())
	}

	// The container breaks under a tool call: no observation for the model.
	tr, err = Rollout(context.Background(), open, func(w string) (Policy, error) {
		p, err := NewScripted(ScriptedTask{Workdir: w, GoldPatch: task.Patch, TestCmd: spec.TestCmd, Tests: task.FailToPass}, ScriptedOptions{}, 1)
		return &breakAfterSetup{Policy: p, s: &sess}, err
	}, spec)
	if executors.ClassOf(err) != executors.ClassRuntime || tr == nil || tr.InfraError == nil || tr.InfraError.Class != executors.ClassRuntime {
		t.Fatalf("broken container: %v, trajectory %+v", err, tr)
	}
	for _, m := range tr.Messages {
		if strings.Contains(m.Content, "container gone") {
			t.Errorf("the runtime's failure became an observation: %+v", m)
		}
	}

	// The tests cannot start: the harness's failure, not unresolved.
	bad := spec
	bad.TestCmd = "no-such-test-runner-lego"
	tr, err = Rollout(context.Background(), open, func(string) (Policy, error) { return finisher{}, nil }, bad)
	if executors.ClassOf(err) != executors.ClassHarness || tr == nil || tr.InfraError == nil || tr.InfraError.Class != executors.ClassHarness ||
		!strings.Contains(tr.InfraError.Message, "exit code 127") {
		t.Fatalf("no test runner: %v, trajectory %+v", err, tr)
	}

	// A policy's own error is no infrastructure's: no trajectory.
	tr, err = Rollout(context.Background(), open, func(string) (Policy, error) { return failing{}, nil }, spec)
	if err == nil || tr != nil || executors.ClassOf(err) != executors.ClassAction {
		t.Errorf("policy error: %v, trajectory %+v", err, tr)
	}
}

// breakAfterSetup breaks the session once the policy is first asked.
type breakAfterSetup struct {
	Policy
	s **breaking
}

func (b *breakAfterSetup) Next(ctx context.Context, m []llmMessage, tl []llmTool) (llmMessage, error) {
	(*b.s).n = (*b.s).calls + 1
	return b.Policy.Next(ctx, m, tl)
}

type failing struct{}

func (failing) Next(context.Context, []llmMessage, []llmTool) (llmMessage, error) {
	return llmMessage{}, errors.New("the policy is confused")
}
