package swe

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/agent"
	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/filter"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/mask"
	"github.com/legobuild/lego/rules/swe/tasks"
)

var allTools = []*legotool.Tool{trajFilter, trajMask, curriculumTool, TrajGenerate, repoSnapshot, gitFetch, gitSanitize,
	envDir, taskCollect, rewriteTool, taskIssue, taskJudge, rolloutTool, rolloutCollect, tinyTrain, verifierData,
	verifierEval, paperTable, paperFigure}

func TestToolsRegistered(t *testing.T) {
	for _, tool := range allTools {
		if legotool.Lookup(tool.Name) != tool || tool.Usage == "" {
			t.Errorf("%s: not registered, or no usage line", tool.Name)
		}
	}
}

func run(t *testing.T, tool *legotool.Tool, args ...string) error {
	t.Helper()
	return tool.Main(context.Background(), args)
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	if err := format.WriteJSON(path, v); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each tool's flag errors: one sentence naming what is missing or wrong.
func TestToolErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, tc := range []struct {
		tool *legotool.Tool
		args []string
		err  string
	}{
		{trajFilter, nil, "needs --out DIR and no positional arguments"},
		{trajFilter, []string{"--out", out, "extra"}, "needs --out DIR and no positional arguments"},
		{trajMask, []string{"--nope"}, "flag provided but not defined: -nope"},
		{trajMask, []string{"--out", out, "--error_pattern", "bad=("}, "error parsing regexp"},
		{curriculumTool, []string{"--bin", "x", "--out", out}, `"x" is not an integer`},
		{TrajGenerate, []string{"--shape", "x", "--out", out}, `unknown trajectory shape "x" (want lego, openhands, sweagent, chatml)`},
		{repoSnapshot, []string{"--strip", "a", "--src", "b/c", "--out", out}, "b/c is not under a"},
		{gitFetch, []string{"--src", "x"}, "needs --src, --commit, --git and --tree"},
		{gitSanitize, []string{"--git", "g", "--out", out, "--report", "r", "--before", "yesterday"}, "--before: "},
		{gitSanitize, []string{"--git", "g"}, "needs --git, --commit, --before, --out and --report"},
		{rewriteTool, []string{"--sites", "s"}, "needs --endpoint, --sites, --index and --out"},
		{taskJudge, []string{"--spec", "{", "--out", out}, "needs --spec (JSON) and --out"},
		{taskJudge, []string{"--spec", "{}", "--out", out}, "slot spec names neither a candidate nor an instance"},
		{rolloutTool, []string{"--slot", filepath.Join(dir, "none.json")}, "no such file"},
		{tinyTrain, []string{"--mode", "rl", "--out", out}, `--mode "rl": want sft, generative or regressive`},
		{tinyTrain, []string{"--base", "gpt-5", "--out", out}, `"gpt-5" is not a torch_tiny model`},
		{paperTable, []string{"--md", "a.md"}, "needs --md and --csv and no positional arguments"},
		{paperTable, []string{"--md", "a.md", "--csv", "a.csv"}, "needs at least one --row"},
		{paperFigure, []string{"--svg", "a.svg", "--png", "a.png", "--row", "nolabel"}, `--row "nolabel": want LABEL=PATH`},
		{paperFigure, []string{"--svg", "a.svg", "--png", "a.png", "--row", "SFT=" + dir}, `row "SFT": `},
	} {
		err := run(t, tc.tool, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s %q: error %v, want %q", tc.tool.Name, tc.args, err, tc.err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s %q: a failed tool left %s behind", tc.tool.Name, tc.args, out)
		}
	}
}

// The data plane's tools on a small generated set, each reading what the
// one before wrote.
func TestDataPlaneTools(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	steps := []struct {
		tool *legotool.Tool
		args []string
		want string
	}{
		{TrajGenerate, []string{"--n", "40", "--seed", "3", "--out", p("traj.jsonl")}, p("traj.jsonl")},
		{trajFilter, []string{"--in", p("traj.jsonl"), "--keep", filter.Resolved, "--max_turns", "100", "--out", p("resolved")}, p("resolved/" + filter.DataFile)},
		{trajMask, []string{"--in", p("resolved"), "--format", format.ShareGPT, "--out", p("masked")}, p("masked/" + mask.InfoFile)},
		{curriculumTool, []string{"--in", p("masked"), "--bin", "20", "--bin", "100", "--out", p("stages")}, p("stages/" + curriculum.InfoFile)},
	}
	for _, s := range steps {
		if err := run(t, s.tool, s.args...); err != nil {
			t.Fatalf("%s: %v", s.tool.Name, err)
		}
		if _, err := os.Stat(s.want); err != nil {
			t.Fatalf("%s: %v", s.tool.Name, err)
		}
	}
	// The dataset is registered under the directory's name by default.
	b, _ := os.ReadFile(p("masked/" + mask.InfoFile))
	if !strings.Contains(string(b), `"masked"`) {
		t.Errorf("dataset_info.json: %s", b)
	}
}

func TestSnapshotAndEnvDir(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "pkg", "repo")
	if err := os.MkdirAll(filepath.Join(src, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "lib", "a.py"), []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	if err := run(t, repoSnapshot, "--strip", filepath.Join(dir, "pkg", "repo"), "--src", filepath.Join(src, "lib", "a.py"), "--out", tree); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "lib", "a.py")); err != nil || string(b) != "x = 1\n" {
		t.Fatalf("snapshot: %q, %v", b, err)
	}
	env := filepath.Join(dir, "env")
	if err := run(t, envDir, "--tree", tree, "--run", "echo built > made", "--out", env); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(env, "made")); err != nil || string(b) != "built\n" {
		t.Errorf("install step: %q, %v", b, err)
	}
	failed := filepath.Join(dir, "failed")
	err := run(t, envDir, "--tree", tree, "--run", "exit 3", "--out", failed)
	if err == nil || !strings.Contains(err.Error(), "install step 0 (exit 3)") {
		t.Errorf("a failing step: %v", err)
	}
	if _, err := os.Stat(failed); err == nil {
		t.Error("a failed env-dir left its directory behind")
	}
}

// Without anything to ask, the model tools write their answer without
// opening the endpoint (here a file that does not exist).
func TestModelToolsWithoutCalls(t *testing.T) {
	dir := t.TempDir()
	noEndpoint := filepath.Join(dir, "none.endpoint.json")
	sites := writeJSON(t, filepath.Join(dir, "sites.json"), tasks.Sites{Repo: "r", Seed: 1})
	cand := filepath.Join(dir, "llm0.json")
	if err := run(t, rewriteTool, "--endpoint", noEndpoint, "--sites", sites, "--index", "0", "--out", cand); err != nil {
		t.Fatal(err)
	}
	var c tasks.Candidate
	if err := format.ReadJSON(cand, &c); err != nil || !c.Empty || c.Reason != "the repository has 0 functions with a docstring to rewrite" {
		t.Errorf("candidate %+v, %v", c, err)
	}
	res := writeJSON(t, filepath.Join(dir, "res.json"), tasks.Results{Empty: true})
	base := writeJSON(t, filepath.Join(dir, "base.json"), tasks.Results{})
	issue := filepath.Join(dir, "issue.json")
	if err := run(t, taskIssue, "--endpoint", noEndpoint, "--candidate", cand, "--results", res, "--baseline", base, "--out", issue); err != nil {
		t.Fatal(err)
	}
	var is tasks.Issue
	if err := format.ReadJSON(issue, &is); err != nil || is.Skipped != "empty candidate" || is.ProblemStatement != "" {
		t.Errorf("issue %+v, %v", is, err)
	}
}

// A slot that is no task gives a skipped outcome, and rollout-collect
// counts it.
func TestRolloutOfNoTask(t *testing.T) {
	dir := t.TempDir()
	slot := writeJSON(t, filepath.Join(dir, "a.slot.json"), tasks.Slot{Env: "r", Rejected: &tasks.Rejection{Reason: "no test fails"}})
	outcome := filepath.Join(dir, "a.0.json")
	if err := run(t, rolloutTool, "--slot", slot, "--policy", filepath.Join(dir, "none"), "--out", outcome); err != nil {
		t.Fatal(err)
	}
	var o agent.Outcome
	if err := format.ReadJSON(outcome, &o); err != nil || o.Skipped != "not a task: no test fails" || o.Trajectory != nil {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	plan := writeJSON(t, filepath.Join(dir, "plan.json"), []string{outcome})
	if err := run(t, rolloutCollect, "--plan", plan, "--out", filepath.Join(dir, "rollouts")); err != nil {
		t.Fatal(err)
	}
	var rep agent.Report
	if err := format.ReadJSON(filepath.Join(dir, "rollouts", "report.json"), &rep); err != nil || rep.Skipped != 1 || rep.Rollouts != 0 {
		t.Errorf("report %+v, %v", rep, err)
	}
}

func TestPaperTools(t *testing.T) {
	dir := t.TempDir()
	rows := []string{"--row", "SFT=paper/testdata/eval_base", "--row", "a=b=paper/testdata/eval_masked/eval.json"}
	md, csv := filepath.Join(dir, "t.md"), filepath.Join(dir, "t.csv")
	if err := run(t, paperTable, append(rows, "--column", "pass@1", "--md", md, "--csv", csv)...); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	if !strings.Contains(string(b), "| a=b |") || !strings.Contains(string(b), "| SFT |") {
		t.Errorf("table:\n%s", b)
	}
	svg, png := filepath.Join(dir, "f.svg"), filepath.Join(dir, "f.png")
	err := run(t, paperFigure, append(rows, "--kind", "no_such_kind", "--svg", svg, "--png", png)...)
	if err == nil {
		t.Fatal("an unknown kind drew a figure")
	}
	for _, f := range []string{svg, png} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("a failed figure left %s", f)
		}
	}
}

// The ranked policy's settings, as verifier_eval writes them, must be
// told apart from a scripted policy's and an endpoint's.
func TestPolicyKinds(t *testing.T) {
	dir := t.TempDir()
	scripted := writeJSON(t, filepath.Join(dir, "s.json"), ScriptedConfig{Kind: "scripted", Seed: 1})
	if _, err := policyMaker(scripted, format.Task{}, "pytest", "pytest", 1); err != nil {
		t.Errorf("scripted: %v", err)
	}
	ranked := writeJSON(t, filepath.Join(dir, "r.json"), RankedConfig{Kind: "ranked", Checkpoint: filepath.Join(dir, "none")})
	if _, err := policyMaker(ranked, format.Task{}, "pytest", "pytest", 1); err == nil {
		t.Error("ranked: a missing checkpoint loaded")
	}
	endpoint := filepath.Join(dir, "e.json")
	if err := os.WriteFile(endpoint, []byte(`{"base_url": "http://127.0.0.1:1/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policyMaker(endpoint, format.Task{}, "pytest", "pytest", 1); err == nil || !strings.Contains(err.Error(), "base_url and model are required") {
		t.Errorf("an endpoint without a model: %v", err)
	}
	b, _ := json.Marshal(map[string]any{"kind": 3})
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, b, 0o644)
	if _, err := policyMaker(bad, format.Task{}, "", "", 1); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad settings: %v", err)
	}
}

// An endpoint that answers 503 to every try: the rollout tool records
// the trajectory marked infra_error in its outcome and fails with an
// endpoint's error, which lego tool reports by its class; rollout-collect
// refuses such an outcome rather than count it unresolved.
func TestRolloutEndpointDown(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error": "overloaded"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	dir := t.TempDir()
	policy := writeJSON(t, filepath.Join(dir, "m.endpoint.json"), llm.Config{BaseURL: srv.URL + "/v1", Model: "m", Retries: 1})
	slot := writeJSON(t, filepath.Join(dir, "a.slot.json"), tasks.Slot{Env: "minicalc", Task: &format.Task{InstanceID: "minicalc-1", ProblemStatement: "it breaks"}})
	outcome := filepath.Join(dir, "a.0.json")
	err := run(t, rolloutTool, "--slot", slot, "--policy", policy, "--policy-name", "//:m", "--test-cmd", "python3 -m pytest",
		"--env-dir", "../../examples/swe-lego/repos/minicalc", "--out", outcome)
	line, ok := executors.InfraLine(err)
	if !ok || !strings.HasPrefix(line, "lego-infra-error: endpoint: rollout of minicalc-1: turn 1: ") || !strings.Contains(line, "answered 503") || requests.Load() != 2 {
		t.Fatalf("error %v (line %q), %d requests", err, line, requests.Load())
	}
	if ie := executors.InfraOf(executors.InfraExit, "ERROR: ...\n"+line+"\n"); ie == nil || ie.Class != executors.ClassEndpoint {
		t.Errorf("the line %q does not read back: %v", line, ie)
	}
	var o agent.Outcome
	if err := format.ReadJSON(outcome, &o); err != nil || o.Trajectory == nil || o.InfraError == nil || o.InfraError.Class != "endpoint" ||
		o.Teacher != "//:m" || o.Resolved || len(o.Messages) != 2 {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	plan := writeJSON(t, filepath.Join(dir, "plan.json"), []string{outcome})
	if err := run(t, rolloutCollect, "--plan", plan, "--out", filepath.Join(dir, "rollouts")); err == nil || !strings.Contains(err.Error(), "is no result") {
		t.Errorf("collecting an infra_error outcome: %v", err)
	}
}
