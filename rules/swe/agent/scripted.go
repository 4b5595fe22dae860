package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
)

// Scripted is the offline policy: a deterministic stand-in for a teacher
// model, for the example and CI only. It goes through the same loop and
// tools as a model would: it explores (lists files, views the files the
// fix touches, greps), reproduces the failure by running the failing
// tests, makes occasional real missteps (a command that fails, an edit
// that does not match, a wrong edit it then undoes) so that error masking
// has something to mask, applies the gold patch through
// str_replace_editor, runs the tests again and finishes.
type Scripted struct {
	steps []step
	next  int
}

type step struct {
	text  string
	calls []call
}

type call struct {
	name string
	args map[string]any
}

// ScriptedTask is what the scripted policy knows of a task: more than a
// model would (the gold patch), which is why it is no model.
type ScriptedTask struct {
	Workdir   string
	GoldPatch string
	TestCmd   string   // the env's test command
	Framework string   // pytest or unittest
	Tests     []string // tests to run to reproduce and to check
}

// ScriptedTaskOf is what the scripted (and the ranked) policy knows of t
// in workdir.
func ScriptedTaskOf(t format.Task, workdir, testCmd, framework string) ScriptedTask {
	return ScriptedTask{Workdir: workdir, GoldPatch: t.Patch, TestCmd: testCmd, Framework: framework, Tests: reproTests(t)}
}

// reproTests are the tests the scripted policy runs to see the failure: a
// synthetic task's FAIL_TO_PASS; a real task's come with its test_patch,
// which the agent does not have, so the files of its PASS_TO_PASS tests
// (pytest) or those tests (unittest ids).
func reproTests(t format.Task) []string {
	if t.TestPatch == "" {
		return t.FailToPass
	}
	var out []string
	for _, id := range t.PassToPass {
		if file, _, ok := strings.Cut(id, "::"); ok {
			id = file
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// ScriptedOptions are the scripted policy's rates (each 0..1).
type ScriptedOptions struct {
	MisstepRate float64 // chance of a misstep before each real step
	GiveUpRate  float64 // chance of finishing without a fix, once the failure is reproduced
}

// plan is a task's rollout as a sequence of right steps, and the steps a
// policy could take instead.
type plan struct {
	explore, repro, fix, check []step
	missteps                   [][]step // each one misstep (a step, or a step and its undo)
	giveUp                     step
}

func planOf(t ScriptedTask) (*plan, error) {
	files, err := ParsePatch(t.GoldPatch)
	if err != nil {
		return nil, fmt.Errorf("gold patch: %w", err)
	}
	abs := func(p string) string { return path.Join(t.Workdir, p) }
	tests := t.TestCmd
	switch {
	case len(t.Tests) == 0:
	case t.Framework == "unittest":
		// Test ids are not arguments of a discover command line.
		tests = "python3 -m unittest -v " + shellQuote(t.Tests...)
	default:
		tests = t.TestCmd + " " + shellQuote(t.Tests...)
	}
	one := func(text string, calls ...call) step { return step{text, calls} }
	p := &plan{giveUp: one("I could not find what causes this; stopping here.", call{ToolFinish, map[string]any{"message": "No fix found."}})}
	p.missteps = append(p.missteps, []step{one("Let me look at the configuration.", call{ToolBash, map[string]any{"command": "cat setup.cfg"}})})
	if len(files) > 0 {
		p.missteps = append(p.missteps, []step{one("I'll try a quick edit.", call{ToolEditor, map[string]any{"command": "str_replace", "path": abs(files[0].Path),
			"old_str": "if True:\n    pass  # lego: no such text", "new_str": "pass"}})})
		if !files[0].New {
			p.missteps = append(p.missteps, []step{
				one("Maybe a note at the top helps.", call{ToolEditor, map[string]any{"command": "insert", "path": abs(files[0].Path), "insert_line": 0, "new_str": "# TODO"}}),
				one("That was not right; undoing it.", call{ToolEditor, map[string]any{"command": "undo_edit", "path": abs(files[0].Path)}})})
		}
	}
	p.explore = append(p.explore, one("I'll start by looking at the repository's layout.", call{ToolEditor, map[string]any{"command": "view", "path": t.Workdir}}))
	for _, f := range files {
		if f.New {
			continue
		}
		p.explore = append(p.explore, one("Let me read "+f.Path+".", call{ToolEditor, map[string]any{"command": "view", "path": abs(f.Path)}}))
		if word := firstIdent(f); word != "" {
			p.explore = append(p.explore, one("Where else is "+word+" used?", call{ToolBash, map[string]any{"command": "grep -rn " + shellQuote(word) + " --include=*.py . | head -20"}}))
		}
	}
	p.repro = []step{one("Let me reproduce the failure.", call{ToolBash, map[string]any{"command": tests}}),
		one("", call{ToolThink, map[string]any{"thought": "The failing tests point at " + strings.Join(paths(files), ", ") + "; I will change that code."}})}
	for _, f := range files {
		if f.New {
			p.fix = append(p.fix, one("Creating "+f.Path+".", call{ToolEditor, map[string]any{"command": "create", "path": abs(f.Path), "file_text": f.Hunks[0].New}}))
			continue
		}
		for _, h := range f.Hunks {
			p.fix = append(p.fix, one("Fixing "+f.Path+".", call{ToolEditor, map[string]any{"command": "str_replace", "path": abs(f.Path), "old_str": h.Old, "new_str": h.New}}))
		}
	}
	p.check = []step{one("Now the tests again.", call{ToolBash, map[string]any{"command": tests}}),
		one("The fix is in.", call{ToolFinish, map[string]any{"message": "Fixed " + strings.Join(paths(files), ", ") + "."}})}
	return p, nil
}

// NewScripted plans a rollout of t; seed makes the plan reproducible.
func NewScripted(t ScriptedTask, o ScriptedOptions, seed int64) (*Scripted, error) {
	p, err := planOf(t)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewSource(seed))
	s := &Scripted{}
	misstep := func() {
		if rng.Float64() >= o.MisstepRate {
			return
		}
		if k := rng.Intn(3); k < len(p.missteps) {
			s.steps = append(s.steps, p.missteps[k]...)
		}
	}
	s.steps = append(s.steps, p.explore[0])
	misstep()
	s.steps = append(s.steps, p.explore[1:]...)
	misstep()
	s.steps = append(s.steps, p.repro...)
	if o.GiveUpRate > 0 && rng.Float64() < o.GiveUpRate {
		s.steps = append(s.steps, p.giveUp)
		return s, nil
	}
	for _, st := range p.fix {
		if st.calls[0].args["command"] != "create" {
			misstep()
		}
		s.steps = append(s.steps, st)
	}
	s.steps = append(s.steps, p.check...)
	return s, nil
}

// Next gives the next planned turn; after the plan it keeps finishing.
func (s *Scripted) Next(_ context.Context, _ []llm.Message, _ []llm.Tool) (llm.Message, error) {
	st := done
	if s.next < len(s.steps) {
		st = s.steps[s.next]
	}
	s.next++
	return st.message(s.next)
}

var done = step{text: "Done.", calls: []call{{ToolFinish, map[string]any{}}}}

// message is the step as an assistant message, its calls numbered by turn.
func (st step) message(turn int) (llm.Message, error) {
	m := llm.Message{Role: "assistant", Content: st.text}
	for i, c := range st.calls {
		b, err := json.Marshal(c.args)
		if err != nil {
			return m, err
		}
		var tc llm.ToolCall
		tc.ID, tc.Type = fmt.Sprintf("call_%d_%d", turn, i), "function"
		tc.Function.Name, tc.Function.Arguments = c.name, string(b)
		m.ToolCalls = append(m.ToolCalls, tc)
	}
	return m, nil
}

// FilePatch is one file of a unified diff; each hunk as the text it
// replaces (context and removed lines) and its replacement.
type FilePatch struct {
	Path  string
	New   bool // created by the patch
	Hunks []Hunk
}

// Hunk is one change of a file.
type Hunk struct{ Old, New string }

var hunkHeader = regexp.MustCompile(`^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@`)

// ParsePatch reads a unified diff (git's or diff -u's). Hunks are read by
// their line counts, so a removed line that looks like a header is not
// taken for one.
func ParsePatch(p string) ([]FilePatch, error) {
	var files []FilePatch
	lines := strings.SplitAfter(p, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "--- "):
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "+++ ") {
				return nil, fmt.Errorf("line %d: --- without +++", i+1)
			}
			from, to := diffPath(l[4:]), diffPath(lines[i+1][4:])
			if to == "/dev/null" {
				return nil, fmt.Errorf("line %d: deleting %s is not supported", i+1, from)
			}
			files = append(files, FilePatch{Path: to, New: from == "/dev/null"})
			i++
		case strings.HasPrefix(l, "@@ "):
			if len(files) == 0 {
				return nil, fmt.Errorf("line %d: hunk before a file header", i+1)
			}
			m := hunkHeader.FindStringSubmatch(l)
			if m == nil {
				return nil, fmt.Errorf("line %d: bad hunk header %q", i+1, strings.TrimSpace(l))
			}
			count := func(s string) int {
				if s == "" {
					return 1 // "-3" means one line
				}
				n, _ := strconv.Atoi(s)
				return n
			}
			var h Hunk
			for oldN, newN := count(m[1]), count(m[2]); oldN > 0 || newN > 0; {
				i++
				if i >= len(lines) || lines[i] == "" {
					return nil, fmt.Errorf("line %d: the hunk ends early", i+1)
				}
				l := lines[i]
				switch l[0] {
				case ' ', '\n':
					t := strings.TrimPrefix(l, " ")
					h.Old, h.New, oldN, newN = h.Old+t, h.New+t, oldN-1, newN-1
				case '-':
					h.Old, oldN = h.Old+l[1:], oldN-1
				case '+':
					h.New, newN = h.New+l[1:], newN-1
				default:
					return nil, fmt.Errorf("line %d: %q in a hunk", i+1, strings.TrimSpace(l))
				}
				if i+1 < len(lines) && strings.HasPrefix(lines[i+1], `\ No newline`) {
					i++
					if l[0] != '+' {
						h.Old = strings.TrimSuffix(h.Old, "\n")
					}
					if l[0] != '-' {
						h.New = strings.TrimSuffix(h.New, "\n")
					}
				}
			}
			f := &files[len(files)-1]
			f.Hunks = append(f.Hunks, h)
		}
	}
	for _, f := range files {
		if len(f.Hunks) == 0 {
			return nil, fmt.Errorf("%s: no hunks", f.Path)
		}
	}
	return files, nil
}

func diffPath(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		s = s[:i]
	}
	if s == "/dev/null" {
		return s
	}
	if len(s) > 2 && (s[:2] == "a/" || s[:2] == "b/") {
		return s[2:]
	}
	return s
}

func paths(files []FilePatch) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

// firstIdent is a name the patch removes (e.g. the function it fixes),
// for a grep.
func firstIdent(f FilePatch) string {
	for _, h := range f.Hunks {
		for _, l := range strings.Split(h.Old, "\n") {
			t := strings.TrimSpace(l)
			if rest, ok := strings.CutPrefix(t, "def "); ok {
				if i := strings.IndexByte(rest, '('); i > 0 {
					return rest[:i]
				}
			}
		}
	}
	return ""
}

func shellQuote(args ...string) string {
	var out []string
	for _, a := range args {
		out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return strings.Join(out, " ")
}
