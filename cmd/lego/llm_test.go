package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tasks"
)

const testAPIKey = "sk-lego-test-0b5e11c3a9"

// chatServer is a local OpenAI-compatible server (the one test double
// allowed for a model): it checks the protocol and answers a rewrite
// request with a wrong body and an issue request with an issue text. Its
// first request gets a 429, which the client must retry.
type chatServer struct {
	t       *testing.T
	mu      sync.Mutex
	calls   map[string]int
	started bool // the first request has come (requests arrive concurrently)
}

func (s *chatServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	first := !s.started
	if first {
		s.started, s.calls = true, map[string]int{}
	}
	s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+testAPIKey ||
		r.Header.Get("Content-Type") != "application/json" {
		s.t.Errorf("request %s %s, headers %v", r.Method, r.URL.Path, r.Header)
	}
	var req struct {
		Model       string           `json:"model"`
		Temperature *float64         `json:"temperature"`
		Seed        *int64           `json:"seed"`
		Messages    []map[string]any `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "teacher" || req.Temperature == nil ||
		*req.Temperature != 0.2 || req.Seed == nil || len(req.Messages) < 2 || req.Messages[0]["role"] != "system" || req.Messages[1]["role"] != "user" {
		s.t.Errorf("chat request %+v (%v)", req, err)
		return
	}
	if first {
		s.mu.Lock()
		s.calls["429"]++
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error": "slow down"}`, http.StatusTooManyRequests)
		return
	}
	kind, answer := "issue", "Reported by the fake model: the calculator gives wrong answers."
	system := req.Messages[0]["content"].(string)
	switch {
	case strings.Contains(system, "body of a function"):
		kind, answer = "rewrite", "```python\nreturn 0\n```"
	case strings.Contains(system, "fixing an issue"):
		// An agent's turn: first try to read the key from the env, then
		// finish.
		s.mu.Lock()
		s.calls["agent"]++
		s.mu.Unlock()
		call := `{"id": "c1", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"echo key=$LEGO_TEST_API_KEY\"}"}}`
		if len(req.Messages) > 2 {
			call = `{"id": "c2", "type": "function", "function": {"name": "finish", "arguments": "{}"}}`
		}
		fmt.Fprintf(w, `{"choices": [{"index": 0, "message": {"role": "assistant", "content": "", "tool_calls": [%s]}, "finish_reason": "tool_calls"}]}`, call)
		return
	}
	s.mu.Lock()
	s.calls[kind]++
	s.mu.Unlock()
	b, _ := json.Marshal(answer)
	fmt.Fprintf(w, `{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": %s}, "finish_reason": "stop"}]}`, b)
}

// calcRepo is a small Python repository with unittest tests, for a
// directory env (package calc).
var calcRepo = map[string]string{
	"calc/calc/__init__.py": "from .ops import add, scale\n",
	"calc/calc/ops.py": `"""Arithmetic."""


def add(a, b):
    """The sum of a and b."""
    total = a + b
    return total


def scale(xs, k):
    """Every element of xs times k."""
    out = []
    for x in xs:
        out.append(x * k)
    return out
`,
	"calc/tests/__init__.py": "",
	"calc/tests/test_ops.py": `import unittest

from calc import add, scale


class OpsTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_scale(self):
        self.assertEqual(scale([1, 2], 3), [3, 6])
`,
}

// TestLLMRewriteTasks: task_set's llm_rewrite strategy and model-written
// problem statements through a model_endpoint, on a directory env (no
// containerd needed); the API key reaches the calls and nothing else.
func TestLLMRewriteTasks(t *testing.T) {
	srv := &chatServer{t: t}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	t.Setenv("LEGO_TEST_API_KEY", testAPIKey)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"BUILD": fmt.Sprintf(`
git_repo(name = "calc", path = "calc", srcs = glob(["calc/**"]))
swe_env(name = "env", repo = ":calc", form = "dir", test_framework = "unittest",
        test_cmd = "python3 -m unittest discover -v -s tests -t .")
model_endpoint(name = "teacher", base_url = "%s/v1", model = "teacher", api_key_env = "LEGO_TEST_API_KEY", temperature = "0.2")
task_set(name = "with_model", source = "synthetic", envs = [":env"], strategies = ["ast", "llm_rewrite"],
         per_repo = 2, seed = 4, model = ":teacher")
task_set(name = "no_model", source = "synthetic", envs = [":env"], strategies = ["ast", "llm_rewrite"], per_repo = 1)
rollout(name = "agent", tasks = [":with_model"], policy = ":teacher", max_turns = 5)
`, hs.URL),
	})
	writeFiles(t, root, calcRepo)
	cache := t.TempDir()
	ev := filepath.Join(t.TempDir(), "events.jsonl")
	r := mustLego(t, root, "build", "//:with_model", "//:no_model", "--executor=local", "--cache_dir="+cache, "--build_event_json_file="+ev)
	// The model as an agent: it asks the env for the key, which is not there.
	r2 := mustLego(t, root, "build", "//:agent", "--executor=local", "--cache_dir="+cache, "--build_event_json_file="+ev+"2")
	r.stdout += r2.stdout
	r.stderr += r2.stderr
	trajs := mustRead(t, filepath.Join(root, "lego-out/agent/trajectories.jsonl"))
	if !strings.Contains(trajs, `key=\n`) || strings.Count(trajs, "\n") != len(readTasks(t, filepath.Join(root, "lego-out/with_model"))) {
		t.Errorf("agent trajectories:\n%s", trajs)
	}

	got := readTasks(t, filepath.Join(root, "lego-out/with_model"))
	llm := 0
	for id, task := range got {
		if task.Strategy == "llm_rewrite" {
			llm++
			if !strings.Contains(task.BugPatch, "+    return 0") || !strings.Contains(task.Patch, "-    return 0") {
				t.Errorf("%s: patches %q / %q", id, task.BugPatch, task.Patch)
			}
		}
		if !strings.HasPrefix(task.ProblemStatement, "Reported by the fake model") {
			t.Errorf("%s: problem statement %q is not the model's", id, task.ProblemStatement)
		}
	}
	if llm != 2 {
		t.Errorf("%d llm_rewrite tasks of %d; want both functions rewritten and kept", llm, len(got))
	}
	srv.mu.Lock()
	calls := fmt.Sprint(srv.calls)
	if srv.calls["429"] != 1 || srv.calls["rewrite"] != 2 || srv.calls["issue"] != len(got) || srv.calls["agent"] != 2*len(got) {
		t.Errorf("calls %v for %d tasks; want one 429 retried, 2 rewrites, an issue per kept task", srv.calls, len(got))
	}
	srv.mu.Unlock()
	var rep tasks.Report
	json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/with_model", tasks.ReportFile))), &rep)
	if why, ok := rep.Strategies["llm_rewrite"]; !ok || why != "" {
		t.Errorf("with a model, llm_rewrite is %q", why)
	}
	json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/no_model", tasks.ReportFile))), &rep)
	if !strings.HasPrefix(rep.Strategies["llm_rewrite"], "unavailable: no model endpoint") {
		t.Errorf("without a model, llm_rewrite is %q", rep.Strategies["llm_rewrite"])
	}

	// A rebuild calls no model.
	if total, ran, cached := counts(t, mustLego(t, root, "build", "//:with_model", "//:agent", "--executor=local", "--cache_dir="+cache)); ran != 0 || cached != total {
		t.Errorf("rebuild: %d executed, %d cached of %d", ran, cached, total)
	}
	srv.mu.Lock()
	if fmt.Sprint(srv.calls) != calls {
		t.Errorf("the rebuild called the model: %v, before %v", srv.calls, calls)
	}
	srv.mu.Unlock()

	// The key is in no store entry, output, log or event.
	for _, dir := range []string{cache, filepath.Join(root, "lego-out"), filepath.Dir(ev)} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), testAPIKey) {
				t.Errorf("the API key is in %s", p)
			}
			return nil
		})
	}
	if strings.Contains(r.stdout+r.stderr, testAPIKey) {
		t.Error("the API key is in lego's output")
	}
}

// agentServer is a local OpenAI-compatible server for agents: it checks
// the protocol, answers each rollout's first turn with a command and its
// second with finish, and answers 503 to every request of task down's
// rollout (while down is set).
type agentServer struct {
	t        *testing.T
	mu       sync.Mutex
	tasks    map[string]format.Task // by instance id
	down     string
	requests map[string]int // per instance id; "503" counts the refusals
}

func (s *agentServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string           `json:"model"`
		Messages []map[string]any `json:"messages"`
		Tools    []map[string]any `json:"tools"`
		Seed     *int64           `json:"seed"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Content-Type") != "application/json" ||
		json.NewDecoder(r.Body).Decode(&req) != nil || req.Model != "teacher" || len(req.Tools) != 4 || req.Seed == nil ||
		len(req.Messages) < 2 || req.Messages[0]["role"] != "system" || req.Messages[1]["role"] != "user" {
		s.t.Errorf("request %s %s: %+v", r.Method, r.URL.Path, req)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	user, _ := req.Messages[1]["content"].(string)
	s.mu.Lock()
	id := "unknown"
	for i, task := range s.tasks {
		if strings.Contains(user, task.ProblemStatement) {
			id = i
		}
	}
	s.requests[id]++
	refuse := id == s.down
	if refuse {
		s.requests["503"]++
	}
	s.mu.Unlock()
	if refuse {
		http.Error(w, `{"error": "overloaded"}`, http.StatusServiceUnavailable)
		return
	}
	call := `{"id": "c1", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"ls\"}"}}`
	if len(req.Messages) > 2 {
		call = `{"id": "c2", "type": "function", "function": {"name": "finish", "arguments": "{}"}}`
	}
	fmt.Fprintf(w, `{"choices": [{"index": 0, "message": {"role": "assistant", "content": "", "tool_calls": [%s]}, "finish_reason": "tool_calls"}]}`, call)
}

// TestRolloutEndpointFailureRerunsAlone: an endpoint that answers 503 to
// every try of one task's rollout fails that rollout alone, as the
// endpoint's (the summary says so), and caches nothing of it; once the
// endpoint is healthy, the next build runs that rollout and no other.
func TestRolloutEndpointFailureRerunsAlone(t *testing.T) {
	srv := &agentServer{t: t, requests: map[string]int{}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"BUILD": fmt.Sprintf(`
git_repo(name = "calc", path = "calc", srcs = glob(["calc/**"]))
swe_env(name = "env", repo = ":calc", form = "dir", test_framework = "unittest",
        test_cmd = "python3 -m unittest discover -v -s tests -t .")
model_endpoint(name = "teacher", base_url = "%s/v1", model = "teacher", retries = 1)
task_set(name = "tasks", source = "synthetic", envs = [":env"], strategies = ["ast"], per_repo = 4, seed = 1)
rollout(name = "agent", tasks = [":tasks"], policy = ":teacher", max_turns = 4)
`, hs.URL),
	})
	writeFiles(t, root, calcRepo)
	cache := t.TempDir()
	flags := []string{"--executor=local", "--cache_dir=" + cache, "--keep_going"}
	mustLego(t, root, append([]string{"build", "//:tasks"}, flags...)...)
	got := readTasks(t, filepath.Join(root, "lego-out/tasks"))
	var bad string
	statements := map[string]int{}
	for id, task := range got {
		statements[task.ProblemStatement]++
		if bad == "" || id < bad {
			bad = id
		}
	}
	if len(got) < 2 || statements[got[bad].ProblemStatement] != 1 {
		t.Fatalf("want two tasks or more, the first with a problem statement of its own: %v", statements)
	}
	srv.tasks, srv.down = got, bad

	ev := filepath.Join(t.TempDir(), "events.jsonl")
	r := lego(t, root, append([]string{"build", "//:agent", "--build_event_json_file=" + ev}, flags...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "1 failed (1 endpoint)") || !strings.Contains(r.stderr, "failed (endpoint: ") ||
		!strings.Contains(r.stderr, "rollout of "+bad+": turn 1: model endpoint") || !strings.Contains(r.stderr, "answered 503") {
		t.Fatalf("with the endpoint down for %s: exit %d\n%s", bad, r.code, r.stderr)
	}
	if n := rolloutsRun(ev); n != len(got)-1 {
		t.Errorf("%d rollouts ran of %d; want all but %s", n, len(got), bad)
	}
	classes := map[string]int{}
	for _, e := range readEvents(t, ev) {
		if e.Type == engine.EvActionFailed {
			classes[e.Mnemonic+" "+e.FailureClass]++
		}
	}
	if want := map[string]int{"Rollout endpoint": 1}; !reflect.DeepEqual(classes, want) {
		t.Errorf("failed actions %v, want %v", classes, want)
	}
	srv.mu.Lock()
	if srv.requests["503"] != 2 {
		t.Errorf("%d refusals; want 2 (a try and one retry)", srv.requests["503"])
	}
	before := maps.Clone(srv.requests)
	srv.down = ""
	srv.mu.Unlock()

	// Healthy again: that rollout alone runs, asking the model twice.
	ev2 := filepath.Join(t.TempDir(), "events2.jsonl")
	r = mustLego(t, root, append([]string{"build", "//:agent", "--build_event_json_file=" + ev2}, flags...)...)
	if n := rolloutsRun(ev2); n != 1 {
		t.Errorf("the healthy rebuild ran %d rollouts; want only %s's", n, bad)
	}
	if total, ran, cached := counts(t, r); ran != 2 || cached != total-2 {
		t.Errorf("healthy rebuild: %d executed (want the rollout and the collection), %d cached of %d", ran, cached, total)
	}
	srv.mu.Lock()
	for id, n := range srv.requests {
		want := before[id]
		if id == bad {
			want += 2
		}
		if n != want {
			t.Errorf("%d requests for %s, before the rebuild %d; want %d", n, id, before[id], want)
		}
	}
	srv.mu.Unlock()
	trajs := mustRead(t, filepath.Join(root, "lego-out/agent/trajectories.jsonl"))
	if strings.Count(trajs, "\n") != len(got) || strings.Contains(trajs, "infra_error") || !strings.Contains(trajs, `"instance_id":"`+bad+`"`) {
		t.Errorf("trajectories after the rebuild:\n%.2000s", trajs)
	}
}
