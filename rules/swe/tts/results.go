package tts

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/legobuild/lego/rules/swe/format"
)

// Score is one run as scores.json holds it: the ground truth, the
// verifier's predicted score and its logits.
type Score struct {
	Run            int     `json:"run"`
	Score          int     `json:"score"` // ground truth: 1 = resolved
	PredictedScore float64 `json:"predicted_score"`
	LogitYes       float64 `json:"logit_yes"`
	LogitNo        float64 `json:"logit_no"`
}

// Results gathers a verifier_eval's scored runs, per instance.
type Results struct {
	Runs   map[string][]Run
	Scores map[string][]Score
}

// Add records one run of instance id.
func (r *Results) Add(id string, run, turns int, resolved bool, score, logitYes, logitNo float64) {
	if r.Runs == nil {
		r.Runs, r.Scores = map[string][]Run{}, map[string][]Score{}
	}
	r.Runs[id] = append(r.Runs[id], Run{Run: run, Resolved: resolved, PredictedScore: score, Turns: turns})
	truth := 0
	if resolved {
		truth = 1
	}
	r.Scores[id] = append(r.Scores[id], Score{run, truth, score, logitYes, logitNo})
}

// Write summarizes the runs as the evaluation name with k rollouts per
// instance and writes it into dir: eval.json (Eval), scores.json (per
// instance, each run's Score, in run order) and eval.md (Markdown).
func (r *Results) Write(dir, name string, k int) (*Eval, error) {
	if len(r.Runs) == 0 {
		return nil, fmt.Errorf("no rollouts to evaluate")
	}
	for id, rs := range r.Scores {
		sort.Slice(rs, func(a, b int) bool { return rs[a].Run < rs[b].Run })
		r.Scores[id] = rs
	}
	e := Summarize(name, k, r.Runs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := format.WriteJSON(filepath.Join(dir, FileName), e); err != nil {
		return nil, err
	}
	if err := format.WriteJSON(filepath.Join(dir, "scores.json"), r.Scores); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "eval.md"))
	if err != nil {
		return nil, err
	}
	err = Markdown(f, e)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return e, err
}
