package curriculum

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestBinEdges(t *testing.T) {
	bins := []int{50, 70, 100}
	for turns, want := range map[int]int{0: 0, 1: 0, 50: 0, 51: 1, 70: 1, 71: 2, 100: 2, 101: -1, 250: -1} {
		if got := Bin(turns, bins); got != want {
			t.Errorf("Bin(%d) = %d, want %d", turns, got, want)
		}
	}
}

func TestStages(t *testing.T) {
	for _, c := range []struct {
		bin        int
		cumulative bool
		want       []int
	}{
		{0, true, []int{0, 1, 2}}, // easy examples are in every stage
		{1, true, []int{1, 2}},
		{2, true, []int{2}},
		{-1, true, nil},
		{0, false, []int{0}},
		{2, false, []int{2}},
	} {
		if got := Stages(c.bin, 3, c.cumulative); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Stages(%d, cumulative=%v) = %v, want %v", c.bin, c.cumulative, got, c.want)
		}
	}
}

func TestStatsAndPearson(t *testing.T) {
	yes, no := true, false
	s := NewStats([]int{50, 70, 100}, true)
	for _, e := range []struct {
		turns int
		res   *bool
	}{{10, &yes}, {50, &yes}, {51, &yes}, {70, &no}, {71, &no}, {100, &no}, {101, &no}, {30, nil}} {
		s.Add(e.turns, e.res)
	}
	s.Finish()
	if !reflect.DeepEqual(s.PerBin, []int{3, 2, 2}) || !reflect.DeepEqual(s.PerStage, []int{3, 5, 7}) || s.OverMax != 1 {
		t.Errorf("per bin %v, per stage %v, over %d", s.PerBin, s.PerStage, s.OverMax)
	}
	if !reflect.DeepEqual(s.Resolve, []float64{1, 0.5, 0}) {
		t.Errorf("resolve per bin %v", s.Resolve)
	}
	if s.PearsonExamples == nil || *s.PearsonExamples > -0.5 {
		t.Errorf("pearson %v: resolution falls with turns here", s.PearsonExamples)
	}
	if r := Pearson([]float64{1, 2, 3}, []float64{2, 4, 6}); r == nil || math.Abs(*r-1) > 1e-12 {
		t.Errorf("perfect correlation: %v", r)
	}
	if r := Pearson([]float64{1, 2}, []float64{5, 5}); r != nil {
		t.Errorf("no variance: %v", *r)
	}
	var svg bytes.Buffer
	if err := s.Histogram(&svg); err != nil || !strings.Contains(svg.String(), "<svg") || !strings.Contains(svg.String(), "51-70") {
		t.Errorf("histogram: %v\n%.200s", err, svg.String())
	}
}

func TestCheckBins(t *testing.T) {
	for _, bad := range [][]int{nil, {50, 50}, {70, 50}, {0, 10}} {
		if CheckBins(bad) == nil {
			t.Errorf("bins %v accepted", bad)
		}
	}
}
