package executors

import (
	"errors"
	"fmt"
	"testing"
)

func TestFailureClasses(t *testing.T) {
	oom := Infra(ClassOOM, errors.New("OOM-killed"))
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("exit 1"), ClassAction},
		{fmt.Errorf("x: %w", ErrTimeout), ClassTimeout},
		{fmt.Errorf("//p:x: %w", oom), ClassOOM},
		{errors.Join(errors.New("undeclared output"), oom), ClassOOM},
		// The innermost class stands: an endpoint's failure inside a
		// session's command is the endpoint's.
		{Infra(ClassRuntime, fmt.Errorf("turn 3: %w", Infra(ClassEndpoint, errors.New("503")))), ClassEndpoint},
	} {
		if got := ClassOf(tc.err); got != tc.want {
			t.Errorf("ClassOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if Infra(ClassRuntime, nil) != nil {
		t.Error("Infra(nil) is an error")
	}
}

// The convention a host process reports by: exit 75 and the last marker
// line of a known class.
func TestInfraLineReadsBack(t *testing.T) {
	err := fmt.Errorf("tool rollout: %w", Infra(ClassEndpoint, errors.New("model endpoint answered 503:\n  overloaded (6 tries)")))
	line, ok := InfraLine(err)
	if !ok || line != "lego-infra-error: endpoint: tool rollout: model endpoint answered 503: overloaded (6 tries)" {
		t.Fatalf("line %q, %v", line, ok)
	}
	ie := InfraOf(InfraExit, "progress\n"+line+"\n")
	if ie == nil || ie.Class != ClassEndpoint || ie.Err.Error() != "tool rollout: model endpoint answered 503: overloaded (6 tries)" {
		t.Errorf("read back %+v", ie)
	}
	if _, ok := InfraLine(errors.New("plain")); ok {
		t.Error("a plain error has a marker line")
	}
	if _, ok := InfraLine(Infra(ClassAction, errors.New("mine"))); ok {
		t.Error("an action's own failure has a marker line")
	}
	for _, tc := range []struct {
		code   int32
		stderr string
		want   string // "" = none
	}{
		{1, line, ""}, // exit 1: the process's own failure, whatever it printed
		{InfraExit, "no marker", ""},
		{InfraExit, "lego-infra-error: weather: rain", ""},
		{InfraExit, "lego-infra-error: action: mine", ""},
		{InfraExit, "lego-infra-error: oom: first\nlego-infra-error: harness: last\ntrailing", ClassHarness},
		{InfraExit, "  lego-infra-error: runtime: indented\r", ClassRuntime},
	} {
		ie := InfraOf(tc.code, tc.stderr)
		if got := ""; ie != nil {
			got = ie.Class
			if got != tc.want {
				t.Errorf("InfraOf(%d, %q) = %s, want %q", tc.code, tc.stderr, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("InfraOf(%d, %q) = nil, want %s", tc.code, tc.stderr, tc.want)
		}
	}
}

// A tally is the word of stdout's last line, written by TallyLine.
func TestTallyLineReadsBack(t *testing.T) {
	line := TallyLine("  kept ")
	if line != "lego-tally: kept" {
		t.Fatalf("TallyLine = %q", line)
	}
	for _, tc := range []struct{ stdout, want string }{
		{line + "\n", "kept"},
		{"judging 3 tests\n" + line + "\n\n", "kept"},
		{TallyLine("dropped") + "\r\n", "dropped"},
		{line + "\nsummary: done\n", ""}, // not the last line
		{"lego-tally:kept\n", ""},
		{"", ""},
		{"no newline at all", ""},
	} {
		if got := TallyOf(tc.stdout); got != tc.want {
			t.Errorf("TallyOf(%q) = %q, want %q", tc.stdout, got, tc.want)
		}
	}
}
