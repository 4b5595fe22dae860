package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors/local"
)

// judgeRule is a test rule declaring one action per command of cmds, as
// a task set declares a judge per instance; tally marks them Tally.
type judgeRule struct{}

func (judgeRule) Kind() string { return "judge" }
func (judgeRule) Attrs() []AttrSpec {
	return []AttrSpec{{Name: "cmds", Type: AttrStringList}, {Name: "tally", Type: AttrBool}}
}
func (judgeRule) Analyze(ctx *Context) error {
	for i, cmd := range ctx.Attr("cmds").([]string) {
		out, err := ctx.DeclareFile(fmt.Sprintf("%s.verdict%d", ctx.Target.Label.Name, i), false)
		if err != nil {
			return err
		}
		if err := ctx.AddAction(&Action{Mnemonic: "Judge", Args: []string{"/bin/bash", "-c", cmd + "; : > " + out.Path},
			Env: map[string]string{"PATH": DefaultPath}, Outputs: []*File{out}, Tools: []string{"/bin/bash"},
			Tally: ctx.Attr("tally").(bool)}); err != nil {
			return err
		}
	}
	return nil
}

// buildJudges analyses //p:real (its actions Tally when tally is set)
// and //p:plain (never Tally) afresh and builds them over cache, with a
// new memory layer, so that a second build's hits come from the disk.
func buildJudges(t *testing.T, root, cache string, tally bool) (*Summary, []string) {
	t.Helper()
	real := []string{
		"echo lego-tally: kept",
		"echo lego-tally: dropped",
		"echo work >&2; echo lego-tally: kept; echo done >&2", // stderr after it: still stdout's last line
		"seq 1 3000; echo lego-tally: dropped",                // 14 KB: only its end is read
		"echo lego-tally: kept; echo more",                    // not the last line: no tally
		"echo silent",
		"printf 'lego-tally: kept\\n\\n'", // trailing blank lines are no line
	}
	pk := &Package{Name: "p", BuildFile: "p/BUILD", Order: []string{"real", "plain"}, Targets: map[string]*Target{
		"real": {Label: Label{"p", "real"}, Rule: judgeRule{}, Pos: "p/BUILD:1:1",
			Attrs: map[string]any{"cmds": real, "tally": tally}},
		"plain": {Label: Label{"p", "plain"}, Rule: judgeRule{}, Pos: "p/BUILD:2:1",
			Attrs: map[string]any{"cmds": []string{"echo lego-tally: kept"}, "tally": false}},
	}}
	l := &memLoader{root: root, pkgs: map[string]*Package{"p": pk}}
	labels, _ := l.Expand(Pattern{Recursive: true})
	g, err := Analyze(l, labels)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := cas.Open(cache)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := cas.NewMemory(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	files, err := cas.OpenFileCache(filepath.Join(cache, "files"))
	if err != nil {
		t.Fatal(err)
	}
	var targets []*Target
	for _, lab := range labels {
		targets = append(targets, g.Targets[lab])
	}
	log := &eventLog{}
	sum, err := Build(context.Background(), g, targets, Options{Jobs: 4, Store: mem, Files: files,
		Executor: local.New(disk, local.Options{}), Listener: log})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	var tallies []string
	for _, e := range log.events {
		switch e.Type {
		case EvTally:
			tallies = append(tallies, e.Label+" "+e.Message)
			// As --build_event_json_file writes it.
			js, err := json.Marshal(&Event{Type: e.Type, Label: e.Label, Message: e.Message})
			if want := `{"type":"tally","time":"0001-01-01T00:00:00Z","label":"//p:real","message":"` + e.Message + `"}`; err != nil || string(js) != want {
				t.Errorf("tally event JSON %s (%v), want %s", js, err, want)
			}
		case EvBuildFinished:
			if !reflect.DeepEqual(e.Tallies, sum.Tallies) {
				t.Errorf("build_finished tallies %v, summary's %v", e.Tallies, sum.Tallies)
			}
		}
	}
	sort.Strings(tallies)
	return sum, tallies
}

// A Tally action's word is an event and a count whether the action ran
// or was a cache hit; the flag is no part of the key.
func TestTallyOfExecutedAndCachedActions(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	wantEvents := []string{"//p:real dropped", "//p:real dropped", "//p:real kept", "//p:real kept", "//p:real kept"}
	wantSum := map[string]map[string]int{"//p:real": {"dropped": 2, "kept": 3}}
	for i, want := range []struct{ executed, cached int }{{8, 0}, {0, 8}} {
		sum, events := buildJudges(t, root, cache, true)
		if sum.Executed != want.executed || sum.Cached != want.cached {
			t.Fatalf("build %d: %d executed, %d cached; want %d, %d", i+1, sum.Executed, sum.Cached, want.executed, want.cached)
		}
		if !reflect.DeepEqual(events, wantEvents) {
			t.Errorf("build %d: tally events %q, want %q", i+1, events, wantEvents)
		}
		if !reflect.DeepEqual(sum.Tallies, wantSum) {
			t.Errorf("build %d: Summary.Tallies %v, want %v", i+1, sum.Tallies, wantSum)
		}
		var out strings.Builder
		sum.Report(&out, 2, time.Second)
		if !strings.Contains(out.String(), "INFO: //p:real: 2 dropped, 3 kept\n") || strings.Contains(out.String(), "//p:plain") {
			t.Errorf("build %d: report\n%s", i+1, out.String())
		}
	}
	// Unmarked, the same actions are the same keys, all cached, and tell
	// nothing.
	sum, events := buildJudges(t, root, cache, false)
	if sum.Cached != 8 || len(events) != 0 || sum.Tallies != nil {
		t.Errorf("without Tally: %d of 8 cached, tally events %q, tallies %v", sum.Cached, events, sum.Tallies)
	}
}
