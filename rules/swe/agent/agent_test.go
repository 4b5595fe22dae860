package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/legobuild/lego/rules/swe/llm"
)

// call is one scripted tool call: its name and raw arguments text.
type scriptCall struct{ name, args string }

// scripted is a local OpenAI-compatible server that answers turn i with
// the tool calls of script[i], and checks every request: the model and
// the four tools with their schemas, the system and user messages first,
// and for each call of the previous turn a tool result with its id.
type scripted struct {
	t      *testing.T
	script [][]scriptCall
	mu     sync.Mutex
	turn   int
	ids    []string // ids of the previous turn's calls
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var req struct {
		Model    string        `json:"model"`
		Messages []llm.Message `json:"messages"`
		Tools    []llm.Tool    `json:"tools"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.t.Errorf("turn %d: body: %v", s.turn, err)
	}
	if req.Model != "teacher" || len(req.Tools) != 4 {
		s.t.Errorf("turn %d: model %q, %d tools", s.turn, req.Model, len(req.Tools))
	}
	for i, want := range []string{ToolBash, ToolEditor, ToolThink, ToolFinish} {
		tl := req.Tools[i]
		var schema struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		}
		if tl.Type != "function" || tl.Function.Name != want || json.Unmarshal(tl.Function.Parameters, &schema) != nil || schema.Type != "object" {
			s.t.Errorf("tool %d: %+v", i, tl)
		}
	}
	if len(req.Messages) < 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" ||
		!strings.Contains(req.Messages[1].Content, "add() subtracts") {
		s.t.Errorf("turn %d: conversation starts %+v", s.turn, req.Messages[:min(2, len(req.Messages))])
	}
	// The previous turn's calls, each answered once, in order, by id.
	tail := req.Messages[len(req.Messages)-len(s.ids):]
	for i, id := range s.ids {
		if tail[i].Role != "tool" || tail[i].ToolCallID != id || tail[i].Content == "" {
			s.t.Errorf("turn %d: result %d is %+v, want a tool result for %s", s.turn, i, tail[i], id)
		}
	}
	var m llm.Message
	m.Role, m.Content = "assistant", fmt.Sprintf("step %d", s.turn)
	s.ids = nil
	for j, c := range s.script[s.turn] {
		var tc llm.ToolCall
		tc.ID, tc.Type = fmt.Sprintf("call-%d-%d", s.turn, j), "function"
		tc.Function.Name, tc.Function.Arguments = c.name, c.args
		m.ToolCalls = append(m.ToolCalls, tc)
		s.ids = append(s.ids, tc.ID)
	}
	s.turn++
	json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": m, "finish_reason": "tool_calls"}}})
}

const opsPy = `def add(a, b):
    """The sum."""
    return a - b
`

// TestLoopAgainstFakeServer runs the loop against scripted tool calls,
// malformed ones among them: those whose intent is clear are corrected
// and the corrections recorded, the others get their error back.
func TestLoopAgainstFakeServer(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "calc"), 0o755)
	os.WriteFile(filepath.Join(dir, "calc/ops.py"), []byte(opsPy), 0o644)
	ops := filepath.Join(dir, "calc/ops.py")
	q := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	srv := &scripted{t: t, script: [][]scriptCall{
		// view_range as strings, past the end: corrected.
		{{ToolEditor, q(map[string]any{"command": "view", "path": ops, "view_range": []string{"1", "200"}})}},
		// timeout as a string: corrected.
		{{ToolBash, q(map[string]any{"command": "grep -n 'a - b' calc/ops.py", "timeout": "30"})}},
		// a relative path: corrected; and a think in the same turn.
		{{ToolEditor, q(map[string]any{"command": "str_replace", "path": "calc/ops.py", "old_str": "a - b", "new_str": "a + b"})},
			{ToolThink, q(map[string]any{"thought": "that was the bug"})}},
		// not JSON: the error goes back.
		{{ToolEditor, `{"command": "view", "path": `}},
		// insert_line that is no number: the error goes back.
		{{ToolEditor, q(map[string]any{"command": "insert", "path": ops, "insert_line": "after the def", "new_str": "x"})}},
		// a tool that does not exist.
		{{"run_python", `{}`}},
		{{ToolFinish, q(map[string]any{"message": "fixed"})}},
	}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	client, err := llm.New(llm.Config{BaseURL: hs.URL + "/v1", Model: "teacher"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewDirSession(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr, exit, err := Run(context.Background(), &ModelPolicy{Client: client, Seed: 1}, NewToolbox(sess),
		Task{InstanceID: "calc-1", ProblemStatement: "add() subtracts"}, 20)
	if err != nil {
		t.Fatal(err)
	}
	if exit != ExitFinish || tr.Turns != 7 || tr.Check() != "" {
		t.Fatalf("exit %s after %d turns; check %q", exit, tr.Turns, tr.Check())
	}
	if b, _ := os.ReadFile(ops); !strings.Contains(string(b), "return a + b") {
		t.Errorf("ops.py after the run:\n%s", b)
	}
	var results []string
	var fixes [][]string
	for _, m := range tr.Messages {
		if m.Role == "tool" {
			results = append(results, m.Content)
			fixes = append(fixes, m.Corrections)
		}
	}
	want := []struct {
		result string
		fixes  []string
	}{
		{"     3\t    return a - b", []string{`the string "1" taken as the integer 1`, "end 200 clipped to the file's 3 lines"}},
		{"[exit code 0]", []string{`timeout: the string "30" taken as the integer 30`}},
		{"has been edited", []string{"the relative path \"calc/ops.py\" taken as \"" + ops + "\""}},
		{"Your thought has been logged.", nil},
		{"ERROR: the arguments of str_replace_editor are not a JSON object", nil},
		{"ERROR: parameter insert_line: \"after the def\" is not an integer", nil},
		{"ERROR: there is no tool \"run_python\"", nil},
		{"The task is marked as done.", nil},
	}
	if len(results) != len(want) {
		t.Fatalf("%d tool results, want %d: %q", len(results), len(want), results)
	}
	for i, w := range want {
		if !strings.Contains(results[i], w.result) {
			t.Errorf("result %d = %q, want it to contain %q", i, results[i], w.result)
		}
		joined := strings.Join(fixes[i], "; ")
		for _, f := range w.fixes {
			if !strings.Contains(joined, f) {
				t.Errorf("result %d: corrections %q lack %q", i, fixes[i], f)
			}
		}
		if len(w.fixes) == 0 && len(fixes[i]) > 0 {
			t.Errorf("result %d: unexpected corrections %q", i, fixes[i])
		}
	}
}

// The editor's commands behave as OpenHands' do.
func TestEditor(t *testing.T) {
	dir := t.TempDir()
	sess, _ := NewDirSession(dir)
	tb := NewToolbox(sess)
	ctx := context.Background()
	p := filepath.Join(dir, "a/new.py")
	do := func(args map[string]any) string {
		b, _ := json.Marshal(args)
		r, err := tb.Call(ctx, ToolEditor, string(b))
		if err != nil {
			t.Fatal(err)
		}
		return r.Output
	}
	if out := do(map[string]any{"command": "create", "path": p, "file_text": "x = 1\ny = 2\nx = 1\n"}); !strings.Contains(out, "created") {
		t.Fatal(out)
	}
	if out := do(map[string]any{"command": "create", "path": p, "file_text": ""}); !strings.Contains(out, "already exists") {
		t.Errorf("create over a file: %s", out)
	}
	if out := do(map[string]any{"command": "str_replace", "path": p, "old_str": "x = 1", "new_str": "x = 3"}); !strings.Contains(out, "occurs 2 times in") || !strings.Contains(out, "lines 1, 3") {
		t.Errorf("ambiguous old_str: %s", out)
	}
	do(map[string]any{"command": "insert", "path": p, "insert_line": 0, "new_str": "import os"})
	do(map[string]any{"command": "str_replace", "path": p, "old_str": "y = 2", "new_str": "y = 5"})
	if b, _ := os.ReadFile(p); string(b) != "import os\nx = 1\ny = 5\nx = 1\n" {
		t.Errorf("after insert and replace: %q", b)
	}
	do(map[string]any{"command": "undo_edit", "path": p})
	if b, _ := os.ReadFile(p); string(b) != "import os\nx = 1\ny = 2\nx = 1\n" {
		t.Errorf("after undo: %q", b)
	}
	if out := do(map[string]any{"command": "view", "path": p, "view_range": []int{2, -1}}); !strings.Contains(out, "     2\tx = 1\n     3\ty = 2\n     4\tx = 1\n") || strings.Contains(out, "import") {
		t.Errorf("view [2, -1]: %s", out)
	}
	if out := do(map[string]any{"command": "view", "path": dir}); !strings.Contains(out, "a/new.py") {
		t.Errorf("view of a directory: %s", out)
	}
	do(map[string]any{"command": "undo_edit", "path": p})
	do(map[string]any{"command": "undo_edit", "path": p})
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("undoing the create leaves the file: %v", err)
	}
	r, err := tb.Call(ctx, ToolBash, `{"command": "sleep 5", "timeout": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Output, "killed after 1s") {
		t.Errorf("timeout: %q", r.Output)
	}
}
