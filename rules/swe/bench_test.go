package swe_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/filter"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/mask"
)

// BenchmarkDataPlane runs filter, masking and curriculum over trajectory
// sets of SWE-Lego's size, about 1 GB each (LEGO_BENCH_MB overrides):
// lego's own generated shape (18,000 trajectories of 10-100 turns;
// LEGO_BENCH_TRAJ overrides the count), and real-shaped records of the
// published shapes (GenerateShape: OpenHands' messages with explicit
// nulls, multi-part content and 4 KB tool schemas; SWE-agent's .traj;
// SWE-smith's ChatML), one sub-benchmark each. It reports input MB/s end
// to end, seconds per stage and the process's peak RSS. Inputs are
// generated once and kept in the temp dir. The collector runs as in
// `lego tool` (GOGC 300, see cmd/lego), which is what the actions run,
// unless GOGC is set.
func BenchmarkDataPlane(b *testing.B) {
	for _, shape := range []string{"lego", "openhands", "sweagent", "chatml"} {
		b.Run(shape, func(b *testing.B) { benchDataPlane(b, shape) })
	}
}

func benchDataPlane(b *testing.B, shape string) {
	mb := 1000
	if s := os.Getenv("LEGO_BENCH_MB"); s != "" {
		mb, _ = strconv.Atoi(s)
	}
	n := 18 * mb
	if s := os.Getenv("LEGO_BENCH_TRAJ"); s != "" && shape == "lego" {
		n, _ = strconv.Atoi(s)
	}
	if shape != "lego" {
		// Records of these shapes are larger: as many as make mb.
		var sample countWriter
		if err := format.GenerateShape(&sample, shape, 20, 1); err != nil {
			b.Fatal(err)
		}
		n = max(1, int(int64(mb)<<20/(sample.n/20)))
	}
	in := filepath.Join(os.TempDir(), fmt.Sprintf("lego-bench-%s-%d.jsonl", shape, n))
	if _, err := os.Stat(in); err != nil {
		w, err := format.Create(in)
		if err != nil {
			b.Fatal(err)
		}
		if err := format.GenerateShape(w, shape, n, 1); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	st, err := os.Stat(in)
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(300))
	}
	m, err := mask.New(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ResetTimer()
	var stages [3]time.Duration
	var floor, first time.Duration
	for range b.N {
		dir := b.TempDir()
		t0 := time.Now()
		if _, err := filter.Run([]string{in}, filepath.Join(dir, "f"), filter.Options{Keep: []string{"resolved", "semi_resolved"}, MaxTurns: 100}, ""); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := mask.Run(filepath.Join(dir, "f"), filepath.Join(dir, "m"), "m", format.ShareGPT, "", m); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := curriculum.Run(filepath.Join(dir, "m"), filepath.Join(dir, "c"), "c", curriculum.DefaultBins, true); err != nil {
			b.Fatal(err)
		}
		stages[0] += t1.Sub(t0)
		stages[1] += t2.Sub(t1)
		stages[2] += time.Since(t2)
		if first == 0 {
			first = time.Since(t0)
		}
		b.StopTimer()
		floor += copyOutputs(b, dir)
		os.RemoveAll(dir)
		b.StartTimer()
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(st.Size())/1e6, "input-MB")
	for i, name := range []string{"filter-s", "mask-s", "curriculum-s"} {
		b.ReportMetric(stages[i].Seconds()/float64(b.N), name)
	}
	b.ReportMetric(floor.Seconds()/float64(b.N), "copy-outputs-s")
	// The first pass writes into memory the VM has not touched lately;
	// later ones reuse what the last pass freed (see copyOutputs).
	b.ReportMetric(first.Seconds(), "first-pass-s")
}

// copyOutputs times the baseline: copying the data files the three steps
// wrote, from the page cache to new files, 4 MB at a time. No step can
// write its output faster than this; on a VM that hands freed memory back
// to its host, it is most of the cost.
func copyOutputs(b *testing.B, dir string) time.Duration {
	files, _ := filepath.Glob(filepath.Join(dir, "c", "bin*.jsonl"))
	files = append(files, filepath.Join(dir, "f", filter.DataFile), filepath.Join(dir, "m", mask.DataFile))
	buf := make([]byte, 4<<20)
	t0 := time.Now()
	for i, f := range files {
		src, err := os.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(dir, fmt.Sprintf("copy%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
			if err != nil {
				break
			}
		}
		src.Close()
		dst.Close()
	}
	return time.Since(t0)
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return len(b), nil
}
