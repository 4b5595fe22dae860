package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/containerd"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/starlark"
)

func findRoot(wd string) (string, error) {
	if real, err := filepath.EvalSymlinks(wd); err == nil {
		wd = real
	}
	return starlark.FindRoot(wd)
}

// commonFlags are the flags every workspace command takes.
type commonFlags struct {
	defines  legotool.Strings
	cacheDir string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.defines, "define", "KEY=VALUE read by config() in BUILD files (repeatable)")
	fs.StringVar(&c.cacheDir, "cache_dir", defaultCacheDir(), "content-addressed store and action cache")
}

func (c *commonFlags) loader() (*starlark.Loader, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := findRoot(wd)
	if err != nil {
		return nil, err
	}
	defs := map[string]string{}
	for _, d := range c.defines {
		k, v, ok := strings.Cut(d, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--define %q: want KEY=VALUE", d)
		}
		defs[k] = v
	}
	return starlark.NewLoader(root, defs)
}

// expand turns patterns into a sorted, de-duplicated label list.
func expand(l *starlark.Loader, args []string) ([]engine.Label, error) {
	pats, err := parsePatterns(args, relPkg(l.Root()))
	if err != nil {
		return nil, err
	}
	seen := map[engine.Label]bool{}
	var out []engine.Label
	for _, p := range pats {
		labels, err := l.Expand(p)
		if err != nil {
			return nil, err
		}
		for _, lab := range labels {
			if !seen[lab] {
				seen[lab] = true
				out = append(out, lab)
			}
		}
	}
	return out, nil
}

func stateDir(root string) string { return filepath.Join(root, engine.OutDir, ".lego") }

// buildFlags are lego build's flags; lego repro takes them too.
type buildFlags struct {
	commonFlags
	jobs                   int
	keepGoing              bool
	bep, memory            string
	progress               string
	executor, ctrdAddr     string
	gpuFallback            string
	cpuProfile, memProfile string
	nobuild                bool
	remote                 remoteFlags
}

func (f *buildFlags) register(fs *flag.FlagSet) {
	f.commonFlags.register(fs)
	fs.IntVar(&f.jobs, "j", 0, "actions to run at once (default: number of cores)")
	fs.IntVar(&f.jobs, "jobs", 0, "same as -j")
	fs.BoolVar(&f.keepGoing, "keep_going", false, "build as much as possible after a failure")
	fs.BoolVar(&f.keepGoing, "k", false, "same as --keep_going")
	fs.StringVar(&f.bep, "build_event_json_file", "", "write one JSON build event per line to this file")
	fs.StringVar(&f.memory, "local_memory", "", "memory the build's actions may use at once (e.g. 16GiB; default: unlimited)")
	fs.StringVar(&f.progress, "progress", "auto", "auto, tty (live status) or lines (one line per finished action) or none")
	fs.StringVar(&f.executor, "executor", "auto", "auto (containerd for actions that name an image, local otherwise), local or containerd")
	fs.StringVar(&f.ctrdAddr, "containerd_address", containerd.DefaultAddress, "containerd's socket")
	fs.StringVar(&f.gpuFallback, "gpu_fallback", "none", "none (actions needing GPUs fail on a machine without them) or cpu (run them without GPUs)")
	fs.StringVar(&f.cpuProfile, "cpu_profile", "", "write a Go CPU profile of lego itself to this file")
	fs.StringVar(&f.memProfile, "mem_profile", "", "write a Go allocation profile of lego itself to this file at the end")
	fs.BoolVar(&f.nobuild, "nobuild", false, "load and analyse the targets, run nothing (as Bazel's --nobuild)")
	f.remote.register(fs)
}

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var f buildFlags
	f.register(fs)
	pats, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	return f.build(pats, nil)
}

// built is what a successful build had loaded and opened, for a command
// that goes on from there (repro).
type built struct {
	ctx     context.Context
	g       *engine.Graph
	targets []*engine.Target
	store   *cas.Disk
	opts    engine.Options // as the build ran, less its executor and listener
}

// build brings the targets of the patterns up to date, then runs then (if
// not nil) before closing the store.
func (f *buildFlags) build(pats []string, then func(*built) error) error {
	c := &f.commonFlags
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	if f.memProfile != "" {
		defer writeHeapProfile(f.memProfile)
	}
	start := time.Now()
	l, err := c.loader()
	if err != nil {
		return err
	}
	labels, err := expand(l, pats)
	if err != nil {
		return err
	}
	g, err := engine.Analyze(l, labels)
	if err != nil {
		return err
	}
	targets := make([]*engine.Target, len(labels))
	for i, lab := range labels {
		targets[i] = g.Targets[lab]
	}
	if f.nobuild {
		fmt.Fprintf(os.Stderr, "INFO: analysed %d targets (%d in the graph), %d actions; %.2fs\n",
			len(targets), len(g.Targets), len(g.Actions), time.Since(start).Seconds())
		return nil
	}
	var memCap int64
	if f.memory != "" {
		if memCap, err = engine.ParseSize(f.memory); err != nil {
			return fmt.Errorf("--local_memory: %w", err)
		}
	}

	store, err := cas.Open(c.cacheDir)
	if err != nil {
		return err
	}
	defer store.Close()
	unlock, err := store.LockShared()
	if err != nil {
		return err
	}
	defer unlock()
	files, err := cas.OpenFileCache(fileCachePath(c.cacheDir, l.Root()))
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var listeners engine.Listeners
	prog := newProgress(os.Stderr, f.progress)
	listeners = append(listeners, prog)
	if f.bep != "" {
		w, err := newEventFile(f.bep)
		if err != nil {
			return err
		}
		defer w.Close()
		listeners = append(listeners, w)
	}
	rs, err := f.remote.open(ctx, store, warnf)
	if err != nil {
		return err
	}
	defer rs.close()
	var exe executors.Executor
	var gpuClass string
	if rs.executor != nil {
		exe, gpuClass = rs.executor, f.remote.gpuClass
		if err := remoteGPUCheck(g, targets, gpuClass); err != nil {
			return err
		}
	} else {
		router, err := newRouter(ctx, f.executor, f.ctrdAddr, store)
		if err != nil {
			return err
		}
		defer router.Close()
		gexe, closeGPU, err := gpuExecutor(g, targets, router, f.gpuFallback)
		if err != nil {
			return err
		}
		defer closeGPU()
		exe = gexe
		gpuClass, _ = gexe.Class() // checked above for the actions that need it
	}
	opts := engine.Options{
		Jobs: f.jobs, KeepGoing: f.keepGoing, Memory: memCap, GPUClass: gpuClass,
		Store: store, Files: files, Executor: exe,
		Listener: listeners, History: engine.OpenHistory(stateDir(l.Root())),
		Remote: rs.cache, Lazy: rs.lazy,
	}
	sum, berr := engine.Build(ctx, g, targets, opts)
	prog.stop()
	if err := files.Save(); err != nil {
		fmt.Fprintln(os.Stderr, "WARNING: saving the file digest cache:", err)
	}
	for _, e := range sum.Errors {
		fmt.Fprintln(os.Stderr, "ERROR: "+e.Error())
	}
	printGPUHours(sum.GPUSeconds)
	fmt.Fprintf(os.Stderr, "INFO: %d targets, %d actions: %d executed, %d cached%s%s%s; %.2fs\n",
		len(targets), sum.Total, sum.Executed, sum.Cached, remoteNote(sum), failedNote(sum), allCached(sum), time.Since(start).Seconds())
	if berr != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "ERROR: "+berr.Error())
			return exitError{130}
		}
		return berr
	}
	if then != nil {
		opts.Executor, opts.Listener = nil, nil
		return then(&built{ctx: ctx, g: g, targets: targets, store: store, opts: opts})
	}
	return nil
}

func failedNote(s *engine.Summary) string {
	out := ""
	if s.Failed > 0 {
		out += fmt.Sprintf(", %d failed", s.Failed)
	}
	if s.Skipped > 0 {
		out += fmt.Sprintf(", %d not run", s.Skipped)
	}
	return out
}

func allCached(s *engine.Summary) string {
	if s.Total > 0 && s.Cached == s.Total {
		return fmt.Sprintf(" (all %d cached)", s.Total)
	}
	return ""
}

func fileCachePath(cacheDir, root string) string {
	h := sha256.Sum256([]byte(root))
	return filepath.Join(cacheDir, "filecache", hex.EncodeToString(h[:8]))
}

// eventFile writes --build_event_json_file.
type eventFile struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
	e  *json.Encoder
}

func newEventFile(path string) (*eventFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--build_event_json_file: %w", err)
	}
	w := bufio.NewWriter(f)
	return &eventFile{f: f, w: w, e: json.NewEncoder(w)}, nil
}

func (ef *eventFile) Event(e *engine.Event) {
	ef.mu.Lock()
	ef.e.Encode(e)
	// Flushed per event: a killed build still leaves the events it had.
	ef.w.Flush()
	ef.mu.Unlock()
}

func (ef *eventFile) Close() error {
	ef.w.Flush()
	return ef.f.Close()
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "WARNING: mem_profile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "WARNING: mem_profile:", err)
	}
}
