// Package curriculum orders SFT data by difficulty, measured in turns: bins
// (by default 0–50, 51–70, 71–100 turns: easy, medium, hard) and stage
// datasets, stage k holding bins 1..k when cumulative (SWE-Lego trains
// the stages one after the other) or bin k alone otherwise.
package curriculum

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// DefaultBins are the upper turn counts of the bins.
var DefaultBins = []int{50, 70, 100}

// CheckBins wants positive, strictly increasing edges.
func CheckBins(bins []int) error {
	if len(bins) == 0 {
		return fmt.Errorf("bins: at least one bin is needed")
	}
	for i, b := range bins {
		if b <= 0 || i > 0 && b <= bins[i-1] {
			return fmt.Errorf("bins: %v must be positive and increasing", bins)
		}
	}
	return nil
}

// Bin is the 0-based bin of an example with this many turns: the first
// bin whose upper edge is at least turns; -1 past the last edge.
func Bin(turns int, bins []int) int {
	i := sort.SearchInts(bins, turns)
	if i == len(bins) {
		return -1
	}
	return i
}

// Stages lists the 0-based stages an example of bin b goes into.
func Stages(b, nbins int, cumulative bool) []int {
	if b < 0 {
		return nil
	}
	if !cumulative {
		return []int{b}
	}
	out := make([]int, 0, nbins-b)
	for s := b; s < nbins; s++ {
		out = append(out, s)
	}
	return out
}

// Stats describe a curriculum.
type Stats struct {
	Bins       []int     `json:"bins"`
	Cumulative bool      `json:"cumulative"`
	PerBin     []int     `json:"examples_per_bin"`
	PerStage   []int     `json:"examples_per_stage"`
	OverMax    int       `json:"dropped_over_last_bin"`
	Resolve    []float64 `json:"resolve_rate_per_bin,omitempty"`
	// Pearson correlation between turns and resolution over the examples
	// that say whether they resolved (nil when fewer than two or no
	// variance), and between the turn count and the resolve rate of
	// 10-turn buckets, the paper's r = -0.95.
	PearsonExamples *float64 `json:"pearson_turns_resolved,omitempty"`
	PearsonBuckets  *float64 `json:"pearson_turns_resolve_rate,omitempty"`

	turns    []float64
	resolved []float64
	hist     map[int]int // turn count -> examples
	binRes   []int
	binKnown []int
}

// NewStats starts the stats of a curriculum.
func NewStats(bins []int, cumulative bool) *Stats {
	return &Stats{Bins: bins, Cumulative: cumulative, PerBin: make([]int, len(bins)), PerStage: make([]int, len(bins)),
		hist: map[int]int{}, binRes: make([]int, len(bins)), binKnown: make([]int, len(bins))}
}

// Add counts one example.
func (s *Stats) Add(turns int, resolved *bool) {
	s.hist[turns]++
	b := Bin(turns, s.Bins)
	if b < 0 {
		s.OverMax++
		return
	}
	s.PerBin[b]++
	for _, st := range Stages(b, len(s.Bins), s.Cumulative) {
		s.PerStage[st]++
	}
	if resolved != nil {
		r := 0.0
		if *resolved {
			r = 1
			s.binRes[b]++
		}
		s.binKnown[b]++
		s.turns = append(s.turns, float64(turns))
		s.resolved = append(s.resolved, r)
	}
}

// Finish computes the derived numbers.
func (s *Stats) Finish() {
	if len(s.turns) > 0 {
		s.Resolve = make([]float64, len(s.Bins))
		for b := range s.Bins {
			if s.binKnown[b] > 0 {
				s.Resolve[b] = float64(s.binRes[b]) / float64(s.binKnown[b])
			}
		}
	}
	s.PearsonExamples = Pearson(s.turns, s.resolved)
	buckets := map[int][2]int{}
	for i, t := range s.turns {
		k := int(t) / 10
		v := buckets[k]
		v[0]++
		v[1] += int(s.resolved[i])
		buckets[k] = v
	}
	var xs, ys []float64
	for _, k := range slices.Sorted(maps.Keys(buckets)) {
		v := buckets[k]
		xs = append(xs, float64(k*10+5))
		ys = append(ys, float64(v[1])/float64(v[0]))
	}
	s.PearsonBuckets = Pearson(xs, ys)
}

// Pearson is the correlation coefficient of xs and ys, nil when it is not
// defined (fewer than two points, or no variance).
func Pearson(xs, ys []float64) *float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return nil
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var cov, vx, vy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		cov += dx * dy
		vx += dx * dx
		vy += dy * dy
	}
	if vx == 0 || vy == 0 {
		return nil
	}
	r := cov / math.Sqrt(vx*vy)
	return &r
}

// Histogram draws examples per turn count, one bar per bin, as SVG.
func (s *Stats) Histogram(w io.Writer) error {
	p := plot.New()
	p.Title.Text = "Examples per curriculum bin"
	p.X.Label.Text = "turns"
	p.Y.Label.Text = "examples"
	vals := make(plotter.Values, len(s.Bins))
	names := make([]string, len(s.Bins))
	lo := 0
	for i, b := range s.Bins {
		vals[i] = float64(s.PerBin[i])
		names[i] = fmt.Sprintf("%d-%d", lo, b)
		lo = b + 1
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return err
	}
	p.Add(bars)
	p.NominalX(names...)
	wt, err := p.WriterTo(4*vg.Inch, 3*vg.Inch, "svg")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
