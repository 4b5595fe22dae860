package tts

import (
	"math"
	"strings"
	"testing"
)

func runs(resolved []bool, scores []float64) []Run {
	var out []Run
	for i := range resolved {
		out = append(out, Run{Run: i, Resolved: resolved[i], PredictedScore: scores[i]})
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarize(t *testing.T) {
	e := Summarize("x", 4, map[string][]Run{
		// the verifier ranks the one resolved run first
		"a": runs([]bool{false, true, false, false}, []float64{0.2, 0.9, 0.1, 0.3}),
		// it ranks the resolved run last
		"b": runs([]bool{true, false, false, false}, []float64{0.1, 0.5, 0.6, 0.7}),
		// nothing resolved
		"c": runs([]bool{false, false, false, false}, []float64{0.5, 0.5, 0.5, 0.5}),
	})
	if e.Instances != 3 || len(e.Curve) != 4 || e.Curve[0].K != 1 {
		t.Fatalf("%+v", e)
	}
	if !near(e.Pass1, (0.25+0.25+0)/3) || !near(e.TTS, 1.0/3) || !near(e.Best, 2.0/3) {
		t.Fatalf("pass %v tts %v best %v", e.Pass1, e.TTS, e.Best)
	}
	// k = 1: one random run, so TTS@1 = Best@1 = Pass@1.
	if c := e.Curve[0]; !near(c.TTS, e.Pass1) || !near(c.Best, e.Pass1) {
		t.Fatalf("k=1: %+v, pass@1 %v", c, e.Pass1)
	}
	// k = 2 for "a": the resolved run tops every pair holding it: 3 of 6.
	// For "b": it tops only the pair it is in alone... never (it is last).
	if c := e.Curve[1]; !near(c.TTS, (0.5+0+0)/3) || !near(c.Best, (0.5+0.5+0)/3) {
		t.Fatalf("k=2: %+v", c)
	}
	if e.PerInstance[0].ID != "a" || e.PerInstance[0].TTS != 1 || e.PerInstance[1].TTS != 0 || e.PerInstance[1].Best != 1 {
		t.Fatalf("%+v", e.PerInstance)
	}
	// Ties go to the lower run number: all of "c"'s runs score 0.5.
	tie := Summarize("t", 2, map[string][]Run{"d": runs([]bool{true, false}, []float64{0.5, 0.5})})
	if tie.TTS != 1 {
		t.Fatalf("tie: %v", tie.TTS)
	}
	var md strings.Builder
	if err := Markdown(&md, e); err != nil || !strings.Contains(md.String(), "| 16.7 | 33.3 | 66.7 |") {
		t.Fatalf("%v\n%s", err, md.String())
	}
}
