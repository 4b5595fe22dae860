// Package tts computes test-time-scaling results from scored rollouts:
// Pass@1, TTS@k (the resolution of the run the verifier scores highest)
// and Best@k (any run resolved, the oracle), per instance and in total,
// with the curve over k = 1..K as expectations over k-subsets of the K
// runs, so that the curve has no sampling noise of its own. It also
// defines the schema of an evaluation, eval.json (Eval), which
// verifier_eval writes and paper_table/paper_figure read (package paper).
package tts

import (
	"fmt"
	"io"
	"math/big"
	"sort"
)

// Summarize builds an evaluation from each instance's runs. Ties in
// predicted_score go to the lower run number.
func Summarize(name string, k int, runs map[string][]Run) *Eval {
	e := &Eval{Name: name, K: k, Instances: len(runs)}
	ids := make([]string, 0, len(runs))
	for id := range runs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	e.Curve = make([]Point, k)
	for j := range e.Curve {
		e.Curve[j].K = j + 1
	}
	for _, id := range ids {
		rs := append([]Run(nil), runs[id]...)
		sort.SliceStable(rs, func(a, b int) bool {
			if rs[a].PredictedScore != rs[b].PredictedScore {
				return rs[a].PredictedScore > rs[b].PredictedScore
			}
			return rs[a].Run < rs[b].Run
		})
		n := len(rs)
		in := Instance{ID: id}
		for j := range k {
			tts, best, pass := expected(rs, min(j+1, n))
			e.Curve[j].TTS += tts
			e.Curve[j].Best += best
			e.Curve[j].Pass1 += pass
			if j+1 == k {
				in.TTS, in.Best, in.Pass1 = tts, best, pass
			}
		}
		sort.Slice(rs, func(a, b int) bool { return rs[a].Run < rs[b].Run })
		in.Runs = rs
		e.PerInstance = append(e.PerInstance, in)
		e.Pass1 += in.Pass1
		e.TTS += in.TTS
		e.Best += in.Best
	}
	if len(ids) > 0 {
		f := float64(len(ids))
		e.Pass1, e.TTS, e.Best = e.Pass1/f, e.TTS/f, e.Best/f
		for j := range e.Curve {
			e.Curve[j].TTS /= f
			e.Curve[j].Best /= f
			e.Curve[j].Pass1 /= f
		}
	}
	return e
}

// expected returns, over the k-subsets of runs (sorted best score first),
// the expected resolution of the subset's top-scored run, the chance that
// any is resolved, and Pass@1. The run ranked r is the top of a subset
// when the subset holds it and k-1 of the n-1-r runs below it.
func expected(sorted []Run, k int) (tts, best, pass float64) {
	n := len(sorted)
	if n == 0 || k < 1 {
		return 0, 0, 0
	}
	all := binom(n, k)
	resolved := 0
	for r, run := range sorted {
		if run.Resolved {
			resolved++
			tts += ratio(binom(n-1-r, k-1), all)
		}
	}
	best = 1 - ratio(binom(n-resolved, k), all)
	return tts, best, float64(resolved) / float64(n)
}

func binom(n, k int) *big.Int {
	if k < 0 || n < k {
		return big.NewInt(0)
	}
	return new(big.Int).Binomial(int64(n), int64(k))
}

func ratio(a, b *big.Int) float64 {
	f, _ := new(big.Rat).SetFrac(a, b).Float64()
	return f
}

// Markdown writes the evaluation as a report: totals, the curve, then
// every instance's runs.
func Markdown(w io.Writer, e *Eval) error {
	pct := func(f float64) string { return fmt.Sprintf("%.1f", 100*f) }
	fmt.Fprintf(w, "# %s\n\n%d instances, K = %d rollouts each.\n\n", e.Name, e.Instances, e.K)
	fmt.Fprintf(w, "| Pass@1 | TTS@%d | Best@%d |\n|---|---|---|\n| %s | %s | %s |\n\n", e.K, e.K, pct(e.Pass1), pct(e.TTS), pct(e.Best))
	fmt.Fprintf(w, "## Over k\n\n| k | TTS@k | Best@k |\n|---|---|---|\n")
	for _, p := range e.Curve {
		fmt.Fprintf(w, "| %d | %s | %s |\n", p.K, pct(p.TTS), pct(p.Best))
	}
	fmt.Fprintf(w, "\n## Instances\n\n| instance | Pass@1 | TTS@%d | Best@%d | runs (resolved, score, turns) |\n|---|---|---|---|---|\n", e.K, e.K)
	for _, in := range e.PerInstance {
		fmt.Fprintf(w, "| %s | %s | %s | %s |", in.ID, pct(in.Pass1), pct(in.TTS), pct(in.Best))
		for _, r := range in.Runs {
			mark := "✗"
			if r.Resolved {
				mark = "✓"
			}
			fmt.Fprintf(w, " %d:%s %.3f %d", r.Run, mark, r.PredictedScore, r.Turns)
		}
		fmt.Fprintln(w, " |")
	}
	_, err := fmt.Fprintln(w)
	return err
}
