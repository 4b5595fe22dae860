// Command bench measures lego on generated workspaces of N genrules
// (-n, packages of 100; -shape chain, tree, wide or the older packages; see
// NewGraph), each row with wall time and the peak RSS of the lego process:
//
//   - first: the first build (for the sizes in -first; others are built
//     untimed);
//   - null: a build with nothing to do, the median of -runs;
//   - touch: after a new mtime on one source deep in the graph, content
//     unchanged; nothing may run;
//   - change: after new content, of another size, in that source (target
//     N/2's; in packages, its package's input.txt). The build must run
//     exactly the targets reading it and those one of whose direct deps'
//     outputs changed (read from lego-out before and after; what ran, from
//     the build's history), or bench fails. Printed: how many ran, the
//     overhead (wall time less the actions' summed durations) and what of
//     it is beyond a null build's wall time. The source is then restored
//     and rebuilt.
//
// -peers bazel builds the same workspaces with Bazel too (first, null with
// a warm server, null after `bazel shutdown`) and prints the ratios Bazel
// / lego. -generate DIR only writes a workspace. -swe_envs, -rebench_repos
// and -image_sharing measure other things instead. `make bench` and `make
// bench-peers` run it; it is a benchmark, not a test.
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

// sandboxMode is lego build's --sandbox for every build bench runs: none
// makes the first build of 100,000 actions minutes rather than an hour on
// a small machine, and no null, touch or change build runs one.
var sandboxMode = flag.String("sandbox", "linux", "lego build --sandbox for every build (linux or none)")

func main() {
	lego := flag.String("lego", "bin/lego", "the lego binary")
	sizes := flag.String("n", "1000,10000,100000", "workspace sizes (targets)")
	first := flag.String("first", "1000,10000", "sizes whose first build is timed too (others are built untimed, quietly)")
	dir := flag.String("dir", "", "where to generate workspaces (default: a temp dir, removed afterwards)")
	runs := flag.Int("runs", 3, "null builds per size (with -peers, per Bazel server state too); the median is reported")
	shape := flag.String("shape", "chain", "the generated graph: "+strings.Join(Shapes, ", ")+" (see NewGraph)")
	peers := flag.String("peers", "", "instead: build the -shape workspaces with this peer too (bazel) and print the ratios to lego")
	genOnly := flag.String("generate", "", "only write a workspace of the first -n size and -shape (or the -rebench_repos one) to this directory (e.g. to build it with Bazel)")
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
			err = Generate(*genOnly, *shape, n)
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
	ns, err := parseSizes(*sizes)
	if err != nil {
		fail(err)
	}
	if *peers != "" {
		if err := benchPeers(*peers, bin, base, *shape, ns, *runs); err != nil {
			fail(err)
		}
		return
	}
	header()
	for _, n := range ns {
		g, err := NewGraph(*shape, n)
		if err != nil {
			fail(err)
		}
		ws := filepath.Join(base, fmt.Sprintf("ws%d", n))
		cache := filepath.Join(base, fmt.Sprintf("cache%d", n))
		if err := g.Write(ws); err != nil {
			fail(err)
		}
		if _, _, err := benchLego(bin, ws, cache, g, *runs, timedFirst[n]); err != nil {
			fail(err)
		}
		if *dir == "" {
			// A -dir is kept: a later run there starts from its cache
			// (its first build is then all hits).
			os.RemoveAll(ws)
			os.RemoveAll(cache)
		}
	}
}

// measure is one timed build: wall time and peak RSS.
type measure struct {
	wall time.Duration
	rss  int64
}

func header() {
	fmt.Printf("%-8s %-8s %-10s %-10s %10s %10s %9s %10s %12s\n",
		"targets", "shape", "tool", "build", "wall", "peak RSS", "executed", "overhead", "beyond null")
}

// row prints one line of the table; the last columns only where given.
func row(g *Graph, tool, build, wall, rss string, more ...string) {
	fmt.Printf("%-8d %-8s %-10s %-10s %10s %10s", len(g.nodes), g.shape, tool, build, wall, rss)
	for i, m := range more {
		fmt.Printf(" %*s", []int{9, 10, 12}[i], m)
	}
	fmt.Println()
}

func (m measure) cols() (string, string) {
	return secs(m.wall), fmt.Sprintf("%d MB", m.rss>>20)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// benchLego prints lego's rows for the workspace ws of g, generated and
// not built yet: first (when timed), null, touch and change. It returns
// the first and null builds.
func benchLego(bin, ws, cache string, g *Graph, runs int, timed bool) (first, null measure, err error) {
	n := len(g.nodes)
	if first.wall, first.rss, err = run(bin, ws, cache, "build", "//...", "--progress=none"); err != nil {
		return first, null, fmt.Errorf("first build of %d targets: %w", n, err)
	}
	if timed {
		w, r := first.cols()
		row(g, "lego", "first", w, r)
	}
	if null.wall, null.rss, err = nullBuilds(bin, ws, cache, runs); err != nil {
		return first, null, fmt.Errorf("null build of %d targets: %w", n, err)
	}
	w, r := null.cols()
	row(g, "lego", "null", w, r)
	build := func(what string) (measure, map[string]time.Duration, error) {
		var m measure
		var err error
		if m.wall, m.rss, err = run(bin, ws, cache, "build", "//...", "--progress=none"); err != nil {
			return m, nil, fmt.Errorf("build after %s %s: %w", what, g.probe, err)
		}
		ran, err := executed(ws)
		return m, ran, err
	}

	// touch: a new mtime, the same content; nothing needs to run.
	probe := filepath.Join(ws, g.probe)
	now := time.Now()
	if err := os.Chtimes(probe, now, now); err != nil {
		return first, null, err
	}
	m, ran, err := build("touching")
	if err != nil {
		return first, null, err
	}
	if err := sameSet(ran, nil); err != nil {
		return first, null, fmt.Errorf("build after touching %s, content unchanged: %w", g.probe, err)
	}
	w, r = m.cols()
	row(g, "lego", "touch", w, r, "0", secs(m.wall))

	// change: new content of another size, so that the probe's target's
	// output changes; how far that spreads depends on the outputs' sizes.
	orig, err := os.ReadFile(probe)
	if err != nil {
		return first, null, err
	}
	before, err := g.outputs(ws)
	if err != nil {
		return first, null, err
	}
	changed := "changed " + string(orig) + strings.Repeat("x", 100) + "\n"
	if err := os.WriteFile(probe, []byte(changed), 0o644); err != nil {
		return first, null, err
	}
	if m, ran, err = build("changing"); err != nil {
		return first, null, err
	}
	after, err := g.outputs(ws)
	if err != nil {
		return first, null, err
	}
	if err := sameSet(ran, g.mustRun(g.probe, before, after)); err != nil {
		return first, null, fmt.Errorf("build after changing %s: %w", g.probe, err)
	}
	var sum time.Duration
	for _, d := range ran {
		sum += d
	}
	w, r = m.cols()
	row(g, "lego", "change", w, r, fmt.Sprint(len(ran)), secs(m.wall-sum), secs(m.wall-sum-null.wall))

	// Back to the generated state, so that a later measurement starts
	// from it.
	if err := os.WriteFile(probe, orig, 0o644); err != nil {
		return first, null, err
	}
	if _, _, err := run(bin, ws, cache, "build", "//...", "--progress=none"); err != nil {
		return first, null, fmt.Errorf("build after restoring %s: %w", g.probe, err)
	}
	return first, null, nil
}

// nullBuilds runs runs null builds: their median wall time, the peak RSS
// of them all.
func nullBuilds(bin, ws, cache string, runs int) (time.Duration, int64, error) {
	var walls []time.Duration
	var peak int64
	for i := 0; i < max(runs, 1); i++ {
		w, r, err := run(bin, ws, cache, "build", "//...", "--progress=none")
		if err != nil {
			return 0, 0, err
		}
		walls = append(walls, w)
		peak = max(peak, r)
	}
	return median(walls), peak, nil
}

func parseSizes(list string) ([]int, error) {
	var ns []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-n: bad size %q", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
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
	if args[0] == "build" && *sandboxMode != "linux" {
		args = append(args, "--sandbox="+*sandboxMode)
	}
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
