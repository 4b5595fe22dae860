// Command bench measures lego on generated workspaces: a first build and a
// null build of N chained and fanned genrules, with wall time and the peak
// RSS of the lego process. `make bench` runs it; it is a benchmark, not a
// test.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	lego := flag.String("lego", "bin/lego", "the lego binary")
	sizes := flag.String("n", "1000,10000,100000", "workspace sizes (targets)")
	first := flag.String("first", "1000,10000", "sizes whose first build is timed too (others are built untimed, quietly)")
	dir := flag.String("dir", "", "where to generate workspaces (default: a temp dir, removed afterwards)")
	runs := flag.Int("runs", 3, "null builds per size; the median is reported")
	genOnly := flag.String("generate", "", "only write a workspace of the first -n size (or the -rebench_repos one) to this directory (e.g. to build it with Bazel)")
	sweEnvs := flag.Int("swe_envs", 0, "instead: time load and analysis of this many swe_env targets and -swe_tasks task sets")
	sweTasks := flag.Int("swe_tasks", 32000, "task_set targets of the -swe_envs workspace")
	sharing := flag.String("image_sharing", "", "instead: report the images under this lego-out, their summed sizes beside the store's distinct bytes")
	rebenchRepos := flag.Int("rebench_repos", 0, "instead: time load and analysis of a swe_env_set and a task_set over this many repositories")
	rebenchInstances := flag.Int("rebench_instances", 20000, "instances (with install_config) in the -rebench_repos workspace's one file")
	flag.Parse()
	if *genOnly != "" && *rebenchRepos > 0 {
		if err := GenerateRebench(*genOnly, *rebenchRepos, *rebenchInstances); err != nil {
			fail(err)
		}
		return
	}
	if *genOnly != "" {
		n, err := strconv.Atoi(strings.Split(*sizes, ",")[0])
		if err == nil {
			err = Generate(*genOnly, n)
		}
		if err != nil {
			fail(err)
		}
		return
	}
	bin, err := filepath.Abs(*lego)
	if err != nil {
		fail(err)
	}
	base := *dir
	if base == "" {
		if base, err = os.MkdirTemp("", "lego-bench-"); err != nil {
			fail(err)
		}
		defer os.RemoveAll(base)
	}
	if *sharing != "" {
		if err := imageSharing(*sharing); err != nil {
			fail(err)
		}
		return
	}
	if *rebenchRepos > 0 {
		if err := benchRebench(bin, base, *rebenchRepos, *rebenchInstances, *runs); err != nil {
			fail(err)
		}
		return
	}
	if *sweEnvs > 0 {
		if err := benchSWE(bin, base, *sweEnvs, *sweTasks, *runs); err != nil {
			fail(err)
		}
		return
	}
	timedFirst := map[int]bool{}
	for _, s := range strings.Split(*first, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(s))
		timedFirst[n] = true
	}
	fmt.Printf("%-8s %-12s %10s %10s\n", "targets", "build", "wall", "peak RSS")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-n: bad size %q", s))
		}
		ws := filepath.Join(base, fmt.Sprintf("ws%d", n))
		if err := Generate(ws, n); err != nil {
			fail(err)
		}
		cache := filepath.Join(base, fmt.Sprintf("cache%d", n))
		wall, rss, err := run(bin, ws, cache, "build", "//...", "--progress=none")
		if err != nil {
			fail(fmt.Errorf("first build of %d targets: %w", n, err))
		}
		if timedFirst[n] {
			fmt.Printf("%-8d %-12s %9.2fs %7d MB\n", n, "first", wall.Seconds(), rss>>20)
		}
		var walls []time.Duration
		var peak int64
		for i := 0; i < *runs; i++ {
			w, r, err := run(bin, ws, cache, "build", "//...", "--progress=none")
			if err != nil {
				fail(fmt.Errorf("null build of %d targets: %w", n, err))
			}
			walls = append(walls, w)
			peak = max(peak, r)
		}
		fmt.Printf("%-8d %-12s %9.3fs %7d MB\n", n, "null", median(walls).Seconds(), peak>>20)
		os.RemoveAll(ws)
		os.RemoveAll(cache)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration{}, ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// run times one lego command and reads its peak RSS from rusage.
func run(bin, ws, cache string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(bin, append(args, "--cache_dir="+cache)...)
	cmd.Dir = ws
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, tail(stderr.String(), 20))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, ru.Maxrss << 10, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
