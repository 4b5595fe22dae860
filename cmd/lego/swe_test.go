package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe"
)

// Changing error_patterns reruns the masking and what follows only;
// changing bins reruns the curriculum only; the filter is never rerun.
func TestDataPlaneIncremental(t *testing.T) {
	root := t.TempDir()
	cache := t.TempDir()
	ev := filepath.Join(t.TempDir(), "events.jsonl")
	mustLego(t, root, "tool", swe.TrajGenerate.Name, "--n", "60", "--seed", "5", "--out", filepath.Join(root, "data/traj.jsonl"))
	build := func(masking, bins string) result {
		t.Helper()
		writeFiles(t, root, map[string]string{
			"WORKSPACE": "",
			"BUILD": `
trajectory_filter(name = "filtered", trajectories = ["data/traj.jsonl"], max_turns = 100)
masked_dataset(name = "masked", trajectories = ":filtered", error_patterns = ` + masking + `)
curriculum(name = "stages", dataset = ":masked", bins = ` + bins + `)
`})
		return mustLego(t, root, "build", "//:stages", "--cache_dir="+cache, "--build_event_json_file="+ev)
	}
	expect := func(want ...string) {
		t.Helper()
		if got := executedActions(t, ev); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("executed %v, want %v", got, want)
		}
	}
	build("[]", "[50, 70, 100]")
	expect("//:filtered TrajFilter", "//:masked TrajMask", "//:stages Curriculum")
	for k := 1; k <= 3; k++ {
		if _, err := os.Stat(filepath.Join(root, "lego-out/stages", "stage"+string(rune('0'+k)), "bin1.jsonl")); err != nil {
			t.Error(err)
		}
	}
	build(`["noisy=thought has been logged"]`, "[50, 70, 100]")
	expect("//:masked TrajMask", "//:stages Curriculum")
	if st := mustRead(t, filepath.Join(root, "lego-out/masked/stats.json")); !strings.Contains(st, `"noisy"`) {
		t.Errorf("masking stats do not show the new pattern:\n%s", st)
	}
	build(`["noisy=thought has been logged"]`, "[40, 80, 100]")
	expect("//:stages Curriculum")
	build(`["noisy=thought has been logged"]`, "[40, 80, 100]")
	expect()
}

func TestDataPlaneBadInput(t *testing.T) {
	root := t.TempDir()
	cache := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"traj.jsonl": `{"instance_id": "a", "resolved": true, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
{"instance_id": "b", "resolved": "yes"}
`,
		"BUILD": `
trajectory_filter(name = "filtered", trajectories = ["traj.jsonl"])
masked_dataset(name = "alpaca", trajectories = ":filtered", format = "alpaca")
`,
	})
	r := lego(t, root, "build", "//:filtered", "--cache_dir="+cache)
	if r.code == 0 || !strings.Contains(r.stderr, "traj.jsonl:2: field resolved: got JSON string, want bool") {
		t.Errorf("malformed line: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "lego-out/filtered")); err == nil {
		t.Error("a failed filter left output")
	}
	r = lego(t, root, "build", "//:alpaca", "--cache_dir="+cache)
	if r.code == 0 || !strings.Contains(r.stderr, `BUILD:3:`) || !strings.Contains(r.stderr, `unknown format "alpaca" (supported: sharegpt, openai)`) {
		t.Errorf("unknown format: exit %d\n%s", r.code, r.stderr)
	}
}
