package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/swe/tts"
)

// executedTargets lists the targets with an action executed in an event
// file.
func executedTargets(t *testing.T, path string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(mustRead(t, path), "\n") {
		var ev engine.Event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == engine.EvActionExecuted {
			seen[ev.Label] = true
		}
	}
	var out []string
	for l := range seen {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// checkPaper builds //paper:table1 on top of the rollouts (short
// trainings, K = 2): the table has the four rows of the ablation and
// the figures are PNGs; then a change of error_patterns reruns the
// masking, the trainings on masked data and their evaluations, and
// nothing upstream of the masking nor on the unmasked side.
func checkPaper(t *testing.T, root, cache, addr string) {
	t.Helper()
	args := []string{"build", "//paper:table1", "--cache_dir=" + cache, "--containerd_address=" + addr, "--define", "tiny_epochs=1", "--define", "eval_k=2"}
	mustLego(t, root, args...)
	table := mustRead(t, filepath.Join(root, "lego-out/paper/ablation.md"))
	for _, row := range []string{"| SFT |", "| + error masking |", "| + curriculum |", "| + masking + curriculum |", "TTS@2"} {
		if !strings.Contains(table, row) {
			t.Errorf("table 1 lacks %q:\n%s", row, table)
		}
	}
	for _, fig := range []string{"ablation_bars", "tts_curve", "turns_vs_resolve"} {
		f, err := os.Open(filepath.Join(root, "lego-out/paper", fig+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s.png: %v", fig, err)
		}
		f.Close()
	}
	e, err := tts.Read(filepath.Join(root, "lego-out/eval/masked"))
	if err != nil {
		t.Fatal(err)
	}
	if e.K != 2 || e.Instances < 10 || len(e.Curve) != 2 || e.TTS < e.Curve[0].TTS-1e-9 || e.Best < e.TTS-1e-9 {
		t.Errorf("eval: K %d, %d instances, curve %+v, TTS %v, Best %v", e.K, e.Instances, e.Curve, e.TTS, e.Best)
	}

	// Mask only missing files: the failed edits of the missteps are now
	// trained on.
	writeFiles(t, root, map[string]string{"data/BUILD": strings.Replace(mustRead(t, filepath.Join(root, "data/BUILD")),
		"error_patterns = [],", `error_patterns = ["missing=No such file or directory"],`, 1)})
	ev := filepath.Join(t.TempDir(), "mask.jsonl")
	mustLego(t, root, append(args, "--build_event_json_file="+ev)...)
	// The paper's targets rerun when an evaluation's numbers moved (early
	// cutoff otherwise); the rest must rerun, and nothing else.
	got := executedTargets(t, ev)
	var rest []string
	for _, l := range got {
		if !strings.HasPrefix(l, "//paper:") {
			rest = append(rest, l)
		}
	}
	want := "//data:masked //data:masked_curriculum //eval:masked //eval:masked_curriculum " +
		"//train:masked //train:masked_stage1 //train:masked_stage2 //train:masked_stage3"
	if strings.Join(rest, " ") != want {
		t.Errorf("after an error_patterns change, executed\n  %s\nwant\n  %s (and //paper targets)", strings.Join(got, " "), want)
	}
}
