package tts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Results writes the three files of a verifier_eval; scores.json lists
// each instance's runs in run order, whatever the order they came in.
func TestResultsWrite(t *testing.T) {
	var r Results
	if _, err := r.Write(t.TempDir(), "e", 2); err == nil || err.Error() != "no rollouts to evaluate" {
		t.Errorf("no runs: %v", err)
	}
	r.Add("b", 1, 30, false, 0.2, -1, 1)
	r.Add("a", 0, 10, true, 0.9, 2, -2)
	r.Add("b", 0, 20, true, 0.7, 1, -1)
	r.Add("a", 1, 12, false, 0.1, -2, 2)
	dir := filepath.Join(t.TempDir(), "eval")
	e, err := r.Write(dir, "e", 2)
	if err != nil {
		t.Fatal(err)
	}
	if e.Instances != 2 || e.Pass1 != 0.5 || e.TTS != 1 || e.Best != 1 {
		t.Errorf("eval %+v", e)
	}
	back, err := Read(dir)
	if err != nil || back.Name != "e" || back.K != 2 {
		t.Fatalf("eval.json: %+v, %v", back, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "scores.json"))
	if i, j := strings.Index(string(b), `"run": 0`), strings.Index(string(b), `"run": 1`); i < 0 || j < i || !strings.Contains(string(b), `"logit_yes": 2`) {
		t.Errorf("scores.json:\n%s", b)
	}
	if md, err := os.ReadFile(filepath.Join(dir, "eval.md")); err != nil || !strings.HasPrefix(string(md), "# e\n") {
		t.Errorf("eval.md: %q, %v", md, err)
	}
}
