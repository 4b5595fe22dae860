package filter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
)

func tr(resolved bool, turns int, patch, gold string) *format.Trajectory {
	t := &format.Trajectory{InstanceID: "a__b-1", Resolved: resolved, Patch: patch, GoldPatch: gold,
		Messages: []format.Message{{Role: "user", Content: "fix"}}}
	for range turns {
		// A turn is a run of assistant messages: each answered here.
		t.Messages = append(t.Messages, format.Message{Role: "assistant", Content: "x"}, format.Message{Role: "user", Content: "go on"})
	}
	return t
}

func TestJudge(t *testing.T) {
	gold := "--- a/x.py\n+++ b/x.py\n"
	both := gold + "--- a/y.py\n+++ b/y.py\n"
	all := Options{Keep: []string{Resolved, SemiResolved}, MaxTurns: 100}
	noSemi := Options{Keep: []string{Resolved}, MaxTurns: 100}
	flagged := tr(false, 5, "", "")
	flagged.SemiResolved = true
	cases := []struct {
		name string
		t    *format.Trajectory
		o    Options
		want string // kept kind, or the drop reason
	}{
		{"resolved", tr(true, 10, gold, gold), all, Resolved},
		{"semi by patch coverage", tr(false, 10, both, gold), all, SemiResolved},
		{"semi by flag", flagged, all, SemiResolved},
		{"semi not kept", tr(false, 10, both, gold), noSemi, "semi_resolved_not_kept"},
		{"wrong files", tr(false, 10, "--- a/z.py\n+++ b/z.py\n", gold), all, "unresolved"},
		{"no patch", tr(false, 10, "", gold), all, "unresolved"},
		{"at the turn limit", tr(true, 100, gold, gold), all, Resolved},
		{"over the turn limit", tr(true, 101, gold, gold), all, "too_many_turns"},
		{"no assistant turn", tr(true, 0, gold, gold), all, "malformed"},
		{"cut short by the infrastructure", func() *format.Trajectory {
			t := tr(true, 3, gold, gold)
			t.InfraError = &format.InfraError{Class: "endpoint", Message: "503"}
			return t
		}(), all, "infra_error"},
		{"unknown role", &format.Trajectory{InstanceID: "x", Messages: []format.Message{{Role: "bot"}}}, all, "malformed"},
	}
	for _, c := range cases {
		v := Judge(c.t, c.o)
		got := v.Reason
		if v.Keep {
			got = v.Kind
		}
		if got != c.want {
			t.Errorf("%s: %+v, want %s", c.name, v, c.want)
		}
	}
	if err := (Options{Keep: []string{"all"}}).Check(); err == nil {
		t.Error("unknown keep kind accepted")
	}
}

func TestRunReportsDrops(t *testing.T) {
	dir := t.TempDir()
	line := func(t *format.Trajectory) string { b, _ := json.Marshal(t); return string(b) }
	a := tr(true, 3, "", "")
	b := tr(true, 3, "", "")
	b.InstanceID, b.Teacher, b.Seed = "c__d-2", "qwen", 7
	rerun := *b
	rerun.Messages = append(rerun.Messages, format.Message{Role: "assistant", Content: "again"})
	lines := []string{line(a), line(a), line(b), line(&rerun), line(tr(false, 3, "", ""))}
	in := filepath.Join(dir, "t.jsonl")
	os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	rep, err := Run([]string{in}, filepath.Join(dir, "out"), Options{Keep: []string{Resolved}, MaxTurns: 100}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 5 || rep.Kept != 2 || rep.Dropped["duplicate"] != 2 || rep.Dropped["unresolved"] != 1 {
		t.Errorf("report %+v", rep)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out", DataFile))
	if got := strings.Count(string(out), "\n"); got != 2 {
		t.Errorf("%d lines written", got)
	}
	if ex := rep.Examples["unresolved"]; len(ex) != 1 || !strings.HasPrefix(ex[0], "t.jsonl:5 ") {
		t.Errorf("examples %v", ex)
	}
}

// A trajectory found semi-resolved by its patch says so in the output.
func TestRunMarksSemiResolved(t *testing.T) {
	dir := t.TempDir()
	gold := "--- a/x.py\n+++ b/x.py\n"
	semi := tr(false, 2, gold+"--- a/y.py\n+++ b/y.py\n", gold)
	semi.SemiResolved = false
	b, _ := json.Marshal(semi)
	in := filepath.Join(dir, "t.jsonl")
	os.WriteFile(in, append(b, '\n'), 0o644)
	rep, err := Run([]string{in}, filepath.Join(dir, "out"), Options{Keep: []string{Resolved, SemiResolved}}, "")
	if err != nil || rep.KeptSemi != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out", DataFile))
	var got format.Trajectory
	if err := json.Unmarshal(out, &got); err != nil || !got.SemiResolved || got.InstanceID != semi.InstanceID {
		t.Errorf("output %s: %v", out, err)
	}
}
