package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/internal/testenv"
)

// BenchmarkRemoteCacheHit1000 builds 1,000 small genrules whose results
// are on a bazel-remote on loopback, from an empty local cache, beside
// the same build from a warm local cache and from an empty one with no
// remote (outputs deleted first in all three, so each materializes
// everything). It reports the three times and the ratios to the remote's.
func BenchmarkRemoteCacheHit1000(b *testing.B) {
	srv := testenv.StartBazelRemote(b)
	root := b.TempDir()
	var build strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&build, "genrule(name = \"g%d\", outs = [\"g%d.txt\"], cmd = \"echo %d > $@\")\n", i, i, i)
	}
	os.WriteFile(filepath.Join(root, "WORKSPACE"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "BUILD"), []byte(build.String()), 0o644)
	warm := b.TempDir()
	legoRun := func(cache string, extra ...string) time.Duration {
		os.RemoveAll(filepath.Join(root, "lego-out"))
		cmd := exec.Command(legoBin, append([]string{"build", "//...", "--progress=none", "--cache_dir=" + cache}, extra...)...)
		cmd.Dir = root
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		return time.Since(start)
	}
	legoRun(warm, "--remote_cache="+srv.Addr) // fills both caches
	var local, remote, cold time.Duration
	b.ResetTimer()
	for range b.N {
		local += legoRun(warm)
		remote += legoRun(b.TempDir(), "--remote_cache="+srv.Addr)
		cold += legoRun(b.TempDir())
	}
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(ms(local), "local-hit-ms")
	b.ReportMetric(ms(remote), "remote-hit-ms")
	b.ReportMetric(ms(cold), "run-all-ms")
	b.ReportMetric(float64(remote)/float64(local), "remote/local-hit")
	b.ReportMetric(float64(cold)/float64(remote), "run-all/remote")
}
