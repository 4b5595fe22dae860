package mask

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
)

// traj builds a trajectory from steps: each is "tool|arguments|result";
// a step without "|" is an assistant message with no tool call.
func traj(steps ...string) *format.Trajectory {
	t := &format.Trajectory{InstanceID: "x__y-1", Resolved: true, Messages: []format.Message{
		{Role: "system", Content: "sys"}, {Role: "user", Content: "fix the bug"},
	}}
	for i, s := range steps {
		parts := strings.SplitN(s, "|", 3)
		if len(parts) == 1 {
			t.Messages = append(t.Messages, format.Message{Role: "assistant", Content: s})
			continue
		}
		id := "c" + string(rune('a'+i))
		t.Messages = append(t.Messages,
			format.Message{Role: "assistant", Content: "step", ToolCalls: []format.ToolCall{{ID: id, Type: "function",
				Function: format.FunctionCall{Name: parts[0], Arguments: parts[1]}}}},
			format.Message{Role: "tool", ToolCallID: id, Content: parts[2]})
	}
	return t
}

func TestMaskDecisions(t *testing.T) {
	m, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		step   string
		masked string // reason, "" = trained
		exempt string
	}{
		{"clean command", `execute_bash|{"command": "ls"}|a b c` + "\n[The command completed with exit code 0.]", "", ""},
		{"traceback", `execute_bash|{"command": "python x.py"}|Traceback (most recent call last):` + "\n  File \"x.py\"", "traceback", ""},
		{"command not found", `execute_bash|{"command": "rg foo"}|bash: rg: command not found`, "command_not_found", ""},
		{"missing file", `execute_bash|{"command": "cat nope"}|cat: nope: No such file or directory`, "no_such_file", ""},
		{"non-zero exit", `execute_bash|{"command": "grep -q x f"}|[The command completed with exit code 1.]`, "nonzero_exit", ""},
		{"syntax error", `execute_bash|{"command": "python -c 'x='"}|SyntaxError: invalid syntax`, "syntax_error", ""},
		{"editor miss", `str_replace_editor|{"command": "str_replace", "path": "/a.py", "old_str": "x"}|ERROR: No replacement was performed, old_str did not appear verbatim`, "editor_error", ""},
		{"invalid JSON arguments", `execute_bash|{"command": |whatever`, "invalid_tool_call", ""},
		{"a tool its schemas do not list", `browse|{"url": "x"}|ok`, "invalid_tool_call", ""},
		{"no tool name", `|{"url": "x"}|ok`, "invalid_tool_call", ""},
		{"OpenHands editor error", `str_replace_editor|{"command": "view", "path": "/w/a.py", "view_range": [1, 500]}|ERROR:` + "\nInvalid `view_range` parameter: [1, 500]. Its second element `500` should be smaller than the number of lines in the file: `42`.", "editor_error", ""},
		{"an editor error on the reproduction script is still masked", `str_replace_editor|{"command": "create", "path": "/w/reproduce.py"}|ERROR:` + "\nInvalid `path` parameter: /w/reproduce.py. File already exists at: /w/reproduce.py.", "editor_error", ""},
		{"OpenHands error observation", `execute_bash|{"command": "ls"}|ERROR:` + "\nSomething failed", "tool_error", ""},
		{"command finished with exit code", `execute_bash|{"command": "false"}|[Command finished with exit code 1]`, "nonzero_exit", ""},
		{"timeout", `execute_bash|{"command": "sleep 999"}|[Command timed out after 120 seconds. SIGINT was sent to interrupt the command.]`, "timeout", ""},
		{"SWE-agent syntax check", `edit|{"command": "edit 3:4"}|Your proposed edit has introduced new syntax error(s). Please read this error message carefully`, "format_error", ""},
		{"pytest failure is exempt", `execute_bash|{"command": "python -m pytest tests/test_a.py"}|FAILED test_a` + "\n[The command completed with exit code 1.]", "", "tests"},
		{"reproduction is exempt", `execute_bash|{"command": "python reproduce_issue.py"}|Traceback (most recent call last):`, "", "reproduce"},
		{"clean test run is not counted exempt", `execute_bash|{"command": "pytest -q"}|3 passed`, "", ""},
		{"think", `think|{"thought": "hmm"}|Your thought has been logged.`, "", ""},
		{"plain text turn", `I will now finish.`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := traj(c.step)
			tr.Tools = json.RawMessage(format.ToolSchemas)
			if strings.HasPrefix(c.step, "edit|") {
				tr.Tools = json.RawMessage(`[{"type": "function", "function": {"name": "edit"}}]`)
			}
			ds := m.Decide(tr)
			if len(ds) != 1 {
				t.Fatalf("%d decisions", len(ds))
			}
			d := ds[0]
			if d.Masked != (c.masked != "") || d.Reason != c.masked || d.Exempt != c.exempt {
				t.Errorf("decision %+v, want masked by %q, exempt %q", d, c.masked, c.exempt)
			}
		})
	}
}

// Without tool schemas in the trajectory any tool name goes; chatml-like
// assistant turns (no tool calls, the observation a tool message) are
// judged by their text's last code block.
func TestMaskWithoutSchemasOrCalls(t *testing.T) {
	m, _ := New(nil, nil)
	tr := traj(`browse|{"url": "x"}|ok`)
	if ds := m.Decide(tr); ds[0].Masked {
		t.Errorf("an unlisted tool masked with no schemas to list it: %+v", ds[0])
	}
	tr.Messages = append(tr.Messages,
		format.Message{Role: "assistant", Content: "Run it.\n```\npython reproduce_bug.py\n```"},
		format.Message{Role: "tool", Content: "OBSERVATION:\nTraceback (most recent call last):\n"},
		format.Message{Role: "assistant", Content: "Look.\n```\nnope\n```"},
		format.Message{Role: "tool", Content: "OBSERVATION:\nbash: nope: command not found"},
		format.Message{Role: "assistant", Content: "done", SourceMask: true})
	ds := m.Decide(tr)
	if len(ds) != 4 || ds[1].Masked || ds[1].Exempt != "reproduce" || ds[2].Reason != "command_not_found" || ds[3].Reason != "source_mask" {
		t.Errorf("decisions %+v", ds)
	}
}

// A masked turn stays in the example, as context and as a response with
// turn_mask true; every message's text survives.
func TestBuildKeepsContext(t *testing.T) {
	m, _ := New(nil, nil)
	tr := traj(
		`execute_bash|{"command": "cat a.py"}|print(1)`,
		`execute_bash|{"command": "python a.py"}|Traceback (most recent call last): boom`,
		`execute_bash|{"command": "pytest"}|1 failed`+"\nexit code 1",
		`finish|{"message": "done"}|ok`,
	)
	ds := m.Decide(tr)
	e, err := Build(tr, ds)
	if err != nil {
		t.Fatal(err)
	}
	var roles, masks []string
	for _, turn := range e.Turns {
		roles = append(roles, turn.Role)
		if turn.Mask != nil {
			masks = append(masks, map[bool]string{true: "1", false: "0"}[*turn.Mask])
		}
	}
	if got := strings.Join(roles, ","); got != "user,assistant,observation,assistant,observation,assistant,observation,assistant" {
		t.Errorf("roles %s", got)
	}
	if got := strings.Join(masks, ""); got != "0100" {
		t.Errorf("masks %s, want 0100 (only the traceback turn)", got)
	}
	if e.System.String() != "sys" || e.NumTurns != 4 {
		t.Errorf("system %q, turns %d", e.System, e.NumTurns)
	}
	all := e.System.String()
	for _, turn := range e.Turns {
		all += "\n" + turn.Text.String()
	}
	// All but the last tool result, which has no answer after it: the
	// only thing left out, as LLaMA-Factory needs prompt/response pairs.
	for _, msg := range tr.Messages[:len(tr.Messages)-1] {
		if !strings.Contains(all, msg.Content) {
			t.Errorf("message %q was dropped", msg.Content)
		}
		for _, c := range msg.ToolCalls {
			if !strings.Contains(all, `"name":"`+c.Function.Name+`"`) {
				t.Errorf("tool call %s was dropped", c.Function.Name)
			}
		}
	}
	if last := e.Turns[len(e.Turns)-1]; last.Role != "assistant" {
		t.Errorf("the example ends with %s", last.Role)
	}
}

func TestCustomPatterns(t *testing.T) {
	m, err := New([]string{"oops=OOPS", `panic: \w+`}, []string{"mytest=run_tests\\.sh"})
	if err != nil {
		t.Fatal(err)
	}
	tr := traj(
		`execute_bash|{"command": "go run ."}|panic: nil map`,
		`execute_bash|{"command": "./run_tests.sh"}|OOPS`,
		`execute_bash|{"command": "python x.py"}|Traceback (most recent call last):`,
	)
	ds := m.Decide(tr)
	got := []string{ds[0].Reason, ds[1].Exempt, ds[2].Reason}
	if strings.Join(got, ",") != `panic: \w+,mytest,` {
		t.Errorf("decisions %+v", ds)
	}
	if _, err := New([]string{"bad=("}, nil); err == nil || !strings.Contains(err.Error(), "error_patterns") {
		t.Errorf("bad regex: %v", err)
	}
}

func TestStats(t *testing.T) {
	m, _ := New(nil, nil)
	var s Stats
	s.Add(m.Decide(traj(`execute_bash|{"command": "x"}|bash: x: command not found`, `execute_bash|{"command": "pytest"}|exit code 2`, "done")))
	b, _ := json.Marshal(s)
	if s.Turns != 3 || s.Masked != 1 || s.Exempted != 1 || s.PerPattern["command_not_found"] != 1 || s.PerExempt["tests"] != 1 {
		t.Errorf("stats %s", b)
	}
}

// The literal prefilter never changes a verdict: on texts built around
// each default pattern's literals, with and without them, pattern and
// regexp agree.
func TestPrefilterAgreesWithRegexp(t *testing.T) {
	pats, err := Compile(append(append([]string(nil), DefaultErrors...), append(DefaultExempt, "accents=(?i)échec total")...))
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"", "all good", "[The command completed with exit code 0.]", "exit code 12", "EXIT CODE 1",
		"Invalid tool call", "INVALID TOOL CALL here", "parameter `path` is required", "Parameter path is Required",
		"IndentationError: x", "TabError:", "python -m pytest -x", "python repro_bug.py", "test_foo.py", "foo_test.py",
		"No replacement was performed", "bash: x: command not found", "Traceback (most recent call last):", "échec total", "ÉCHEC TOTAL"}
	texts = append(texts, "a \"quoted\" Traceback (most recent call last)\n\tat", "C:\\dir: No such file or directory",
		"html <b>exit code 3</b> & more", "exit code\t1")
	scan := newMulti(pats)
	for _, s := range texts {
		hit := make([]bool, len(pats))
		scan.candidates(s, hit)
		// The same text as JSON, scanned before decoding: plainly
		// escaped, and with every letter as a \u escape (the scan must
		// then refuse and let the decoded string decide).
		rawHit := make([]bool, len(pats))
		if esc := format.Escape(s); !scan.rawCandidates(esc, rawHit) {
			if !strings.Contains(string(esc), `\u`) {
				t.Errorf("raw scan refused %q, which has no \\u escape", s)
			}
			scan.candidates(s, rawHit) // what Decide does then
		}
		if s != "" && scan.rawCandidates(format.Text(uEscaped(s)), make([]bool, len(pats))) {
			t.Errorf("raw scan accepted the \\u-escaped %q", s)
		}
		for i, p := range pats {
			if p.Re.MatchString(s) && !hit[i] {
				t.Errorf("the one-pass scan misses %s in %q", p.Name, s)
			}
			if p.Re.MatchString(s) && !rawHit[i] {
				t.Errorf("the raw scan misses %s in %q", p.Name, s)
			}
		}
	}
	for _, p := range pats {
		if p.t == nil && p.Name != "tests" && p.Name != "accents" {
			t.Errorf("pattern %s has no trigger: it always runs the regexp", p.Name)
		}
	}
	// A successful command's ending does not wake the exit-code pattern.
	hit := make([]bool, len(pats))
	scan.candidates("[The command completed with exit code 0.]", hit)
	for i, p := range pats {
		if hit[i] && p.Name == "nonzero_exit" {
			t.Errorf("exit code 0 is a candidate for nonzero_exit (trigger %q)", p.t.lits)
		}
	}
	// A literal with a character JSON escapes cannot be looked for in
	// JSON text.
	quoted, err := Compile([]string{`File "[a-z]+\.py"`})
	if err != nil {
		t.Fatal(err)
	}
	if newMulti(quoted).rawCandidates(format.Escape(`File "x.py"`), make([]bool, 1)) {
		t.Error("raw scan accepted a pattern whose literal holds a quote")
	}
}

// uEscaped writes every character of s as a \u escape.
func uEscaped(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, "\\u%04x", r)
	}
	return b.String()
}

// The scan runs over quarters of a long text at once: a literal is found
// wherever it sits, across the quarters' borders too.
func TestPrefilterFindsLiteralsAnywhere(t *testing.T) {
	m, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("buffer raises test when request returns the path\n", 21)[:1000]
	if hit := make([]bool, len(m.errors)); true {
		m.errScan.candidates(filler, hit)
		for i, h := range hit {
			if h {
				t.Fatalf("the filler wakes %s", m.errors[i].Name)
			}
		}
	}
	for _, lit := range []string{"Traceback (most recent call last)", "exit code 7", "command not found", "INVALID TOOL CALL"} {
		for p := 0; p+len(lit) <= len(filler); p++ {
			text := filler[:p] + lit + filler[p+len(lit):]
			hit := make([]bool, len(m.errors))
			m.errScan.candidates(text, hit)
			found := false
			for i, pat := range m.errors {
				found = found || hit[i] && pat.Re.MatchString(text)
			}
			if !found {
				t.Fatalf("%q at byte %d of %d is not found", lit, p, len(text))
			}
		}
	}
}
