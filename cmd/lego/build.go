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
	"github.com/legobuild/lego/executors/containerd"
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
	defines  stringList
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

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	jobs := fs.Int("j", 0, "actions to run at once (default: number of cores)")
	fs.IntVar(jobs, "jobs", 0, "same as -j")
	keepGoing := fs.Bool("keep_going", false, "build as much as possible after a failure")
	fs.BoolVar(keepGoing, "k", false, "same as --keep_going")
	bep := fs.String("build_event_json_file", "", "write one JSON build event per line to this file")
	memory := fs.String("local_memory", "", "memory the build's actions may use at once (e.g. 16GiB; default: unlimited)")
	progressMode := fs.String("progress", "auto", "auto, tty (live status) or lines (one line per finished action) or none")
	execMode := fs.String("executor", "auto", "auto (containerd for actions that name an image, local otherwise), local or containerd")
	ctrdAddr := fs.String("containerd_address", containerd.DefaultAddress, "containerd's socket")
	gpuFallback := fs.String("gpu_fallback", "none", "none (actions needing GPUs fail on a machine without them) or cpu (run them without GPUs)")
	cpuProfile := fs.String("cpu_profile", "", "write a Go CPU profile of lego itself to this file")
	memProfile := fs.String("mem_profile", "", "write a Go allocation profile of lego itself to this file at the end")
	nobuild := fs.Bool("nobuild", false, "load and analyse the targets, run nothing (as Bazel's --nobuild)")
	pats, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer writeHeapProfile(*memProfile)
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
	if *nobuild {
		fmt.Fprintf(os.Stderr, "INFO: analysed %d targets (%d in the graph), %d actions; %.2fs\n",
			len(targets), len(g.Targets), len(g.Actions), time.Since(start).Seconds())
		return nil
	}
	var memCap int64
	if *memory != "" {
		if memCap, err = engine.ParseSize(*memory); err != nil {
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
	prog := newProgress(os.Stderr, *progressMode)
	listeners = append(listeners, prog)
	if *bep != "" {
		w, err := newEventFile(*bep)
		if err != nil {
			return err
		}
		defer w.Close()
		listeners = append(listeners, w)
	}
	router, err := newRouter(ctx, *execMode, *ctrdAddr, store)
	if err != nil {
		return err
	}
	defer router.Close()
	exe, closeGPU, err := gpuExecutor(g, targets, router, *gpuFallback)
	if err != nil {
		return err
	}
	defer closeGPU()
	gpuClass, _ := exe.Class() // checked above for the actions that need it
	sum, berr := engine.Build(ctx, g, targets, engine.Options{
		Jobs: *jobs, KeepGoing: *keepGoing, Memory: memCap, GPUClass: gpuClass,
		Store: store, Files: files, Executor: exe,
		Listener: listeners, History: engine.OpenHistory(stateDir(l.Root())),
	})
	prog.stop()
	if err := files.Save(); err != nil {
		fmt.Fprintln(os.Stderr, "WARNING: saving the file digest cache:", err)
	}
	for _, e := range sum.Errors {
		fmt.Fprintln(os.Stderr, "ERROR: "+e.Error())
	}
	printGPUHours(sum.GPUSeconds)
	fmt.Fprintf(os.Stderr, "INFO: %d targets, %d actions: %d executed, %d cached%s%s; %.2fs\n",
		len(targets), sum.Total, sum.Executed, sum.Cached, failedNote(sum), allCached(sum), time.Since(start).Seconds())
	if berr != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "ERROR: "+berr.Error())
			return exitError{130}
		}
		return berr
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
