package main

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bazelBuildFlags are passed to every `bazel build`.
var bazelBuildFlags = []string{
	// Debian's /etc/bazel/bazelrc sets --sandbox_debug: every action
	// would print its sandbox's mounts and keep the sandbox.
	"--nosandbox_debug",
	// No bazel-* links in the workspace.
	"--symlink_prefix=/",
	"--noshow_progress",
}

// benchPeers builds each size's workspace of shape with lego and with
// peer (only bazel), the same graph in two copies so that neither walks
// the other's outputs: lego's rows as without -peers (first always
// timed), the peer's first and null builds, and the ratios peer / lego. Bazel's null build is timed with its server warm and
// after `bazel shutdown` (cold). Without the peer on PATH it says so and
// measures nothing.
func benchPeers(peer, bin, base, shape string, sizes []int, runs int) error {
	if peer != "bazel" {
		return fmt.Errorf("-peers: %q: only bazel is known", peer)
	}
	bazel, err := exec.LookPath("bazel")
	if err != nil {
		fmt.Println("bench: bazel is not on PATH (Debian: apt-get install bazel-bootstrap): no peer measured")
		return nil
	}
	header()
	for _, n := range sizes {
		if err := peerSize(bazel, bin, base, shape, n, runs); err != nil {
			return err
		}
	}
	return nil
}

func peerSize(bazel, bin, base, shape string, n, runs int) (err error) {
	g, err := NewGraph(shape, n)
	if err != nil {
		return err
	}
	lws := filepath.Join(base, fmt.Sprintf("ws%d-lego", n))
	bws := filepath.Join(base, fmt.Sprintf("ws%d-bazel", n))
	cache := filepath.Join(base, fmt.Sprintf("cache%d", n))
	defer os.RemoveAll(lws)
	defer os.RemoveAll(bws)
	defer os.RemoveAll(cache)
	for _, ws := range []string{lws, bws} {
		if err := g.Write(ws); err != nil {
			return err
		}
	}
	lf, ln, err := benchLego(bin, lws, cache, g, runs, true)
	if err != nil {
		return err
	}

	b, err := newBazel(bazel, filepath.Join(base, "bazel-root"), bws)
	if err != nil {
		return err
	}
	defer func() {
		// A failed run leaves no server behind; a good one leaves no
		// output base either.
		if err != nil {
			b.cmd("shutdown").Run()
		} else if out, cerr := b.cmd("clean", "--expunge").CombinedOutput(); cerr != nil {
			err = fmt.Errorf("bazel clean --expunge: %v: %s", cerr, tail(string(out), 20))
		}
	}()
	var bf, bn, bc measure
	// The first build starts the server too, as a user's first build does.
	if bf.wall, err = b.build(); err != nil {
		return fmt.Errorf("bazel: first build of %d targets: %w", n, err)
	}
	if bf.rss, err = b.serverPeakRSS(); err != nil {
		return err
	}
	w, r := bf.cols()
	row(g, "bazel", "first", w, r)
	var warm, cold []time.Duration
	for i := 0; i < max(runs, 1); i++ {
		w, err := b.build()
		if err != nil {
			return fmt.Errorf("bazel: null build of %d targets: %w", n, err)
		}
		warm = append(warm, w)
	}
	bn.wall = median(warm)
	// The server's high-water mark covers the first build too.
	if bn.rss, err = b.serverPeakRSS(); err != nil {
		return err
	}
	w, r = bn.cols()
	row(g, "bazel", "null", w, r)
	for i := 0; i < max(runs, 1); i++ {
		if out, err := b.cmd("shutdown").CombinedOutput(); err != nil {
			return fmt.Errorf("bazel shutdown: %v: %s", err, tail(string(out), 20))
		}
		w, err := b.build()
		if err != nil {
			return fmt.Errorf("bazel: cold null build of %d targets: %w", n, err)
		}
		cold = append(cold, w)
		// A fresh server per run: its mark is that build's alone.
		r, err := b.serverPeakRSS()
		if err != nil {
			return err
		}
		bc.rss = max(bc.rss, r)
	}
	bc.wall = median(cold)
	w, r = bc.cols()
	row(g, "bazel", "null-cold", w, r)

	ratio := func(build string, p, l measure) {
		row(g, "bazel/lego", build, fmt.Sprintf("%.2fx", p.wall.Seconds()/l.wall.Seconds()),
			fmt.Sprintf("%.2fx", float64(p.rss)/float64(max(l.rss, 1))))
	}
	ratio("first", bf, lf)
	ratio("null", bn, ln)
	ratio("null-cold", bc, ln)
	return nil
}

// bazelRun runs Bazel in one workspace, its output base under root.
type bazelRun struct {
	bin, root, ws string
}

func newBazel(bin, root, ws string) (*bazelRun, error) {
	// Bazel names the output base after the workspace's real path.
	ws, err := filepath.EvalSymlinks(ws)
	if err != nil {
		return nil, err
	}
	return &bazelRun{bin: bin, root: root, ws: ws}, nil
}

func (b *bazelRun) cmd(args ...string) *exec.Cmd {
	// Its default output root is under ~/.cache; a server left behind by
	// a failed bench exits after 5 idle minutes, not 3 hours.
	c := exec.Command(b.bin, append([]string{"--output_user_root=" + b.root, "--max_idle_secs=300"}, args...)...)
	c.Dir = b.ws
	return c
}

// build times `bazel build //...`.
func (b *bazelRun) build() (time.Duration, error) {
	c := b.cmd(append([]string{"build", "//..."}, bazelBuildFlags...)...)
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	wall := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, tail(out.String(), 20))
	}
	return wall, nil
}

// serverPeakRSS is the running server's peak RSS (VmHWM): the server
// loads, analyses and runs; the client only forwards. Its pid is read
// from the output base, not from `bazel info`, which would be one more
// command on the server.
func (b *bazelRun) serverPeakRSS() (int64, error) {
	sum := md5.Sum([]byte(b.ws))
	pidFile := filepath.Join(b.root, hex.EncodeToString(sum[:]), "server", "server.pid.txt")
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("bazel server: %w", err)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "status"))
	if err != nil {
		return 0, fmt.Errorf("bazel server: %w", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("bazel server: no VmHWM in /proc/%s/status", strings.TrimSpace(string(pid)))
}
