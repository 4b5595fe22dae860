package tasks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
)

func run(tests map[string]string) Run {
	return Run{Tests: tests, Messages: map[string]string{}}
}

func TestJudge(t *testing.T) {
	clean := run(map[string]string{"t::a": Passed, "t::b": Passed, "t::c": Passed, "t::flaky": Failed})
	cases := []struct {
		name     string
		clean    Run
		bug      Run
		f2p, p2p []string
		reason   string
	}{
		{"one test catches it", clean, run(map[string]string{"t::a": Failed, "t::b": Passed, "t::c": Passed, "t::flaky": Passed}),
			[]string{"t::a"}, []string{"t::b", "t::c"}, ""},
		// A test missing from the bug's run (its module no longer imports)
		// did not pass: it is a FAIL_TO_PASS test.
		{"collection error", clean, run(map[string]string{"t::a": Passed, "t::c": Error}),
			[]string{"t::b", "t::c"}, []string{"t::a"}, ""},
		{"nothing catches it", clean, run(map[string]string{"t::a": Passed, "t::b": Passed, "t::c": Passed}),
			nil, nil, "no test fails with the bug"},
		// As SWE-smith validates: a bug that breaks every test is no task.
		{"everything fails", clean, run(map[string]string{"t::a": Failed, "t::b": Failed, "t::c": Error}),
			nil, nil, "no test passes with the bug (PASS_TO_PASS would be empty)"},
		{"hang", clean, Run{TimedOut: 20}, nil, nil, "the tests time out with the bug (killed after 20 s)"},
		{"does not apply", clean, Run{Error: "patch x does not apply"}, nil, nil, "the bug does not apply: patch x does not apply"},
		{"broken env", run(map[string]string{"t::a": Error}), run(nil), nil, nil, "no test passes in the clean environment (exit code none)"},
	}
	for _, c := range cases {
		f2p, p2p, why := Judge(c.clean, c.bug)
		if !reflect.DeepEqual(f2p, c.f2p) || !reflect.DeepEqual(p2p, c.p2p) || why != c.reason {
			t.Errorf("%s: got %v %v %q; want %v %v %q", c.name, f2p, p2p, why, c.f2p, c.p2p, c.reason)
		}
	}
}

func TestCheckReal(t *testing.T) {
	before := run(map[string]string{"new": Failed, "old": Passed, "fixed_already": Passed})
	after := run(map[string]string{"new": Passed, "old": Passed, "fixed_already": Passed})
	cases := []struct {
		name     string
		f2p, p2p []string
		before   Run
		after    Run
		want     string
	}{
		{"valid", []string{"new"}, []string{"old"}, before, after, ""},
		{"already passes", []string{"fixed_already"}, []string{"old"}, before, after, "FAIL_TO_PASS test fixed_already already passes before the fix"},
		{"fix does not fix", []string{"new"}, nil, before, before, "FAIL_TO_PASS test new does not pass with the fix (FAILED)"},
		{"fix breaks another", []string{"new"}, []string{"old"}, before, run(map[string]string{"new": Passed, "old": Failed}),
			"PASS_TO_PASS test old does not pass with the fix (FAILED)"},
		{"unknown test", []string{"new"}, []string{"gone"}, before, after, "PASS_TO_PASS test gone does not pass before the fix (not run)"},
		{"no tests", nil, nil, before, after, "no FAIL_TO_PASS tests"},
		{"test patch fails", []string{"new"}, nil, Run{Error: "does not apply"}, after, "test_patch: does not apply"},
	}
	for _, c := range cases {
		if got := CheckReal(c.f2p, c.p2p, c.before, c.after); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestProblemStatementNamesFailuresNotTheBug(t *testing.T) {
	bug := Run{Tests: map[string]string{"tests/test_x.py::test_a": Failed, "tests/test_x.py::test_b": Error},
		Messages: map[string]string{"tests/test_x.py::test_a": "AssertionError: assert 2 == 3"}}
	s := ProblemStatement([]string{"tests/test_x.py::test_a", "tests/test_x.py::test_b"}, bug)
	for _, want := range []string{"tests/test_x.py::test_a: AssertionError: assert 2 == 3", "tests/test_x.py::test_b (ERROR)"} {
		if !strings.Contains(s, want) {
			t.Errorf("statement lacks %q:\n%s", want, s)
		}
	}
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Collect keeps what Judge keeps, reports the rest with reasons, skips
// empty candidates, and a merge joins sets.
func TestCollectAndMerge(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	writeJSON(t, p("m.json"), map[string]any{"digest": "sha256:abc", "size": 1})
	writeJSON(t, p("clean.json"), Results{Runs: map[string]Run{"clean": run(map[string]string{"a": Passed, "b": Passed})}})
	writeJSON(t, p("c0.json"), Candidate{InstanceID: "r.m.0", Repo: "r", BugPatch: "bug", Patch: "fix", Strategy: "ast", Modifier: "m"})
	writeJSON(t, p("r0.json"), Results{Runs: map[string]Run{"bug": run(map[string]string{"a": Failed, "b": Passed})}})
	writeJSON(t, p("c1.json"), Candidate{InstanceID: "r.m.1", Repo: "r"})
	writeJSON(t, p("r1.json"), Results{Runs: map[string]Run{"bug": run(map[string]string{"a": Passed, "b": Passed})}})
	writeJSON(t, p("c2.json"), Candidate{Empty: true})
	writeJSON(t, p("r2.json"), Results{Empty: true})
	env := &PlanEnv{Name: "r", Label: "//envs:r", Manifest: p("m.json"), Baseline: p("clean.json")}
	plan := &Plan{Source: "synthetic", Strategies: map[string]string{"ast": "", "llm_rewrite": "unavailable: no endpoint"},
		Slots: judged(t, dir, []SlotSpec{{Env: env, Cand: &PlanCand{Candidate: p("c0.json"), Results: p("r0.json")}},
			{Env: env, Cand: &PlanCand{Candidate: p("c1.json"), Results: p("r1.json")}},
			{Env: env, Cand: &PlanCand{Candidate: p("c2.json"), Results: p("r2.json")}}})}
	out := filepath.Join(dir, "set")
	rep, err := Collect(plan, out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Candidates != 2 || rep.Kept != 1 || len(rep.Rejected) != 1 || rep.Rejected[0].Reason != "no test fails with the bug" ||
		rep.Strategies["llm_rewrite"] != "unavailable: no endpoint" {
		t.Errorf("report %+v", rep)
	}
	b, err := os.ReadFile(filepath.Join(out, TasksFile))
	if err != nil {
		t.Fatal(err)
	}
	var task format.Task
	if err := json.Unmarshal(b, &task); err != nil {
		t.Fatal(err)
	}
	if task.InstanceID != "r.m.0" || !reflect.DeepEqual([]string(task.FailToPass), []string{"a"}) ||
		!reflect.DeepEqual([]string(task.PassToPass), []string{"b"}) || task.Image != "sha256:abc" || task.Env != "//envs:r" ||
		task.BugPatch != "bug" || task.Patch != "fix" {
		t.Errorf("task %+v", task)
	}

	merged, err := Collect(&Plan{Source: "merge", Sets: []string{out}}, filepath.Join(dir, "all"))
	if err != nil {
		t.Fatal(err)
	}
	if merged.Kept != 1 || merged.Candidates != 2 || merged.PerEnv["r"].Kept != 1 {
		t.Errorf("merged report %+v", merged)
	}
	// The same set twice would hold an instance twice.
	if _, err := Collect(&Plan{Source: "merge", Sets: []string{out, out}}, filepath.Join(dir, "twice")); err == nil ||
		!strings.Contains(err.Error(), "appears twice") {
		t.Errorf("merging a set with itself: %v", err)
	}
}

// A real instance is kept only if its history shows nothing beyond its
// base (the audit inside the env) and its tests behave; a base newer than
// created_at is counted, not dropped; a synthetic env that holds a
// history gives no tasks.
func TestCollectReal(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	writeJSON(t, p("m.json"), map[string]any{"digest": "sha256:abc"})
	clean := &GitAudit{Present: true, Commits: 2, Base: "ba5e"}
	// The base and its parent are dated after created_at: no leak.
	rebased := &GitAudit{Present: true, Commits: 2, Base: "ba5e", After: []string{"ba5e", "9a7e"}}
	before := run(map[string]string{"f": Failed, "p": Passed})
	after := run(map[string]string{"f": Passed, "p": Passed})
	cases := []struct {
		id     string
		report gitrepo.Report
		audit  *GitAudit
		before Run
		why    string
	}{
		{"ok", gitrepo.Report{}, clean, before, ""},
		{"late-base", gitrepo.Report{LateAncestors: 2}, rebased, before, ""},
		{"beyond", gitrepo.Report{}, &GitAudit{Present: true, Base: "ba5e", BeyondBase: []string{"c0ffee"}}, before,
			"holds commit c0ffee, which is not base commit ba5e or an ancestor of it"},
		{"stray", gitrepo.Report{}, &GitAudit{Present: true, Base: "ba5e", BeyondBaseObjects: 3}, before, "3 objects that base commit ba5e does not reach"},
		{"leak", gitrepo.Report{}, &GitAudit{Present: true, After: []string{"c0ffee"}}, before, "holds commit c0ffee"},
		{"no-audit", gitrepo.Report{}, nil, before, "not audited"},
		{"passes", gitrepo.Report{}, clean, after, "FAIL_TO_PASS test f already passes before the fix"},
	}
	var specs []SlotSpec
	for _, c := range cases {
		specs = append(specs, SlotSpec{Real: &PlanReal{
			Instance: writeJSON(t, p(c.id+".inst"), format.Task{InstanceID: c.id, Repo: "r", FailToPass: []string{"f"}, PassToPass: []string{"p"}, Patch: "x", TestPatch: "y"}),
			Env:      "//envs:r", Manifest: p("m.json"),
			Sanitize: writeJSON(t, p(c.id+".san"), c.report),
			Results:  writeJSON(t, p(c.id+".res"), Results{Git: c.audit, Runs: map[string]Run{"before": c.before, "after": after}}),
		}})
	}
	rep, err := Collect(&Plan{Source: "real", Slots: judged(t, dir, specs)}, p("out"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kept != 2 || rep.Candidates != len(cases) || rep.PerEnv["r"].Kept != 2 || !reflect.DeepEqual(rep.LateAncestors, map[string]int{"late-base": 2}) {
		t.Errorf("report %+v", rep)
	}
	why := map[string]string{}
	for _, r := range rep.Rejected {
		why[r.InstanceID] = r.Reason
	}
	for _, c := range cases {
		if c.why == "" && why[c.id] != "" || !strings.Contains(why[c.id], c.why) {
			t.Errorf("%s: rejected for %q, want %q", c.id, why[c.id], c.why)
		}
	}
	merged, err := Collect(&Plan{Source: "merge", Sets: []string{p("out")}}, p("merged"))
	if err != nil || merged.LateAncestors["late-base"] != 2 {
		t.Errorf("merged report %+v, %v; want late-base's late ancestors", merged, err)
	}

	// Synthetic: the clean run saw a .git.
	writeJSON(t, p("clean.json"), Results{Git: &GitAudit{Present: true}, Runs: map[string]Run{"clean": run(map[string]string{"a": Passed})}})
	writeJSON(t, p("c.json"), Candidate{InstanceID: "s.0", Repo: "s"})
	writeJSON(t, p("r.json"), Results{Runs: map[string]Run{"bug": run(map[string]string{"a": Failed})}})
	rep, err = Collect(&Plan{Source: "synthetic", Slots: judged(t, dir, []SlotSpec{{Env: &PlanEnv{Name: "s", Manifest: p("m.json"), Baseline: p("clean.json")},
		Cand: &PlanCand{Candidate: p("c.json"), Results: p("r.json")}}})}, p("syn"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kept != 0 || len(rep.Rejected) != 1 || !strings.Contains(rep.Rejected[0].Reason, "git history") {
		t.Errorf("synthetic env with a history: %+v", rep)
	}
}

// judged runs JudgeSlot on each spec, as the task-judge actions do, and
// returns the verdict files.
func judged(t *testing.T, dir string, specs []SlotSpec) []string {
	t.Helper()
	var out []string
	for i, s := range specs {
		slot, err := JudgeSlot(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, writeJSON(t, filepath.Join(dir, fmt.Sprintf("slot%d-%d.json", len(specs), i)), slot))
	}
	return out
}
