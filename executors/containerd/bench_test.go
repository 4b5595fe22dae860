package containerd

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/local"
)

// BenchmarkTrueOverhead measures what running `true` costs per action on
// containerd (create, start, wait, delete, with the exec root prepared and
// checked) beside the local executor, in the same run. It reports the
// median; run it with -benchtime 50x for the median of 50.
func BenchmarkTrueOverhead(b *testing.B) {
	a := action{outputs: []string{"lego-out/o"}}
	req := a.request(b)
	req.Command.Arguments = []string{"/bin/sh", "-c", "true > lego-out/o"}
	loc := local.New(store, local.Options{})
	for _, tc := range []struct {
		name string
		exe  executors.Executor
	}{{"local", loc}, {"containerd", exe}} {
		b.Run(tc.name, func(b *testing.B) {
			// Warm: the image is imported and unpacked once per process.
			if _, err := tc.exe.Execute(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				res, err := tc.exe.Execute(context.Background(), req)
				if err != nil || res.ExitCode != 0 {
					b.Fatalf("%v, %v", res, err)
				}
				times = append(times, time.Since(start))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}

// BenchmarkSessionExec measures one command exec'd into a running session
// container (an agent's turn) beside a fresh container per command (an
// action), in the same run: what one container per rollout saves.
func BenchmarkSessionExec(b *testing.B) {
	s, err := OpenSession(context.Background(), SessionOptions{Address: addr, Namespace: testNamespace, Store: store,
		Manifest: image.Digest, Size: image.Size, Workdir: "/"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := action{outputs: []string{"lego-out/o"}}
	req := a.request(b)
	req.Command.Arguments = []string{"/bin/sh", "-c", "true > lego-out/o"}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"exec", func() error {
			_, code, err := s.Run(context.Background(), []string{"true"}, nil, time.Minute)
			if err == nil && code != 0 {
				b.Fatalf("exit %d", code)
			}
			return err
		}},
		{"container", func() error { _, err := exe.Execute(context.Background(), req); return err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if err := tc.run(); err != nil {
				b.Fatal(err)
			}
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := tc.run(); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}
