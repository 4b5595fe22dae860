package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/containerd"
	"github.com/legobuild/lego/executors/stack"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/starlark"
)

// commonFlags are the flags every workspace command takes.
type commonFlags struct {
	defines  legotool.Strings
	cacheDir string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.defines, "define", "KEY=VALUE read by config() in BUILD files (repeatable)")
	c.cacheDir = cas.DefaultDir()
	fs.Var(dirFlag{&c.cacheDir}, "cache_dir", "`directory` of the content-addressed store and action cache")
}

func (c *commonFlags) loader() (*starlark.Loader, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := starlark.FindRoot(wd)
	if err != nil {
		return nil, err
	}
	defs, err := starlark.ParseDefines(c.defines)
	if err != nil {
		return nil, err
	}
	return starlark.NewLoader(root, defs)
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
	sandbox                string
	cpuProfile, memProfile string
	nobuild                bool
	remote                 remoteFlags
	// keyed are the flags that change what a build makes, for its
	// snapshot's key; nil: the build leaves no snapshot.
	keyed []string
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
	fs.StringVar(&f.sandbox, "sandbox", "linux", "linux (local actions run in a namespace sandbox) or none (plain host processes: they can read and write what you can)")
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
	pats, err := parseCommand(fs, args)
	if err != nil {
		return err
	}
	f.keyed = keyedFlags(fs)
	return f.build(pats, nil)
}

// unkeyed are the build flags that change how a build runs or reports,
// not what it makes: they are not in its snapshot's key. containerd's
// socket is one: a test or CI run starts its own at a new path, and what
// an image action makes is keyed by the image's digest.
var unkeyed = map[string]bool{"progress": true, "build_event_json_file": true, "cpu_profile": true,
	"mem_profile": true, "j": true, "jobs": true, "keep_going": true, "k": true, "containerd_address": true}

// keyedFlags lists the values of fs's other flags, and the PATH that
// analysis finds executables on.
func keyedFlags(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if !unkeyed[f.Name] {
			out = append(out, f.Name+"="+f.Value.String())
		}
	})
	return append(out, "PATH="+os.Getenv("PATH"))
}

// built is what a successful build had loaded and opened, for a command
// that goes on from there (repro).
type built struct {
	ctx     context.Context
	g       *engine.Graph
	targets []*engine.Target
	disk    *cas.Disk
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
	files, err := cas.OpenFileCache(cas.FileCachePath(c.cacheDir, l.Root()))
	if err != nil {
		return err
	}
	snap, restored, prior := f.restore(pats, l.Root(), files, then != nil)
	if prior != nil && prior.Settled() {
		if done, err := f.replay(prior, snap, l.Root(), start); done || err != nil {
			return err
		}
	}
	var g *engine.Graph
	var targets []*engine.Target
	if prior != nil {
		if g, targets = restored.Graph(); g == nil {
			prior = nil
		}
	}
	if g == nil {
		labels, err := l.ExpandArgs(pats)
		if err != nil {
			return err
		}
		if g, err = engine.Analyze(l, labels); err != nil {
			return err
		}
		targets = make([]*engine.Target, len(labels))
		for i, lab := range labels {
			targets[i] = g.Targets[lab]
		}
		if snap != nil {
			snap.Reads = l.Reads()
		}
	}
	if snap != nil {
		for _, t := range targets {
			snap.Labels = append(snap.Labels, t.Label)
		}
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

	disk, err := cas.Open(c.cacheDir)
	if err != nil {
		return err
	}
	defer disk.Close() // what the executors left in tmp/
	unlock, err := disk.LockShared()
	if err != nil {
		return err
	}
	defer unlock()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var listeners engine.Listeners
	prog := newProgress(os.Stderr, f.progress)
	listeners = append(listeners, prog)
	if f.bep != "" {
		w, err := engine.CreateEventFile(f.bep)
		if err != nil {
			return err
		}
		defer w.Close()
		listeners = append(listeners, w)
	}
	rs, err := remote.Open(ctx, f.remote.Config, disk, warnf)
	if err != nil {
		return err
	}
	defer rs.Close()
	// The store's layers: memory over the disk, or over a remote tier
	// that keeps the disk.
	var lower cas.Store = disk
	if rs.Tier != nil {
		lower = rs.Tier
	}
	store, err := cas.NewMemory(lower)
	if err != nil {
		return err
	}
	defer store.Close()
	exe, err := f.executors(ctx, g, targets, disk, rs.Executor)
	if err != nil {
		return err
	}
	defer exe.Close()
	opts := engine.Options{
		Jobs: f.jobs, KeepGoing: f.keepGoing, Memory: memCap, GPUClass: exe.GPUClass, Sandbox: exe.Sandbox,
		Store: store, Files: files, Executor: exe, Caps: exe.Caps,
		Listener: listeners, History: engine.OpenHistory(stateDir(l.Root())), Lazy: rs.Lazy,
		Prior: prior, Snapshot: snap, Collected: disk.Collected(),
	}
	sum, berr := engine.Build(ctx, g, targets, opts)
	prog.stop()
	if err := files.Save(); err != nil {
		fmt.Fprintln(os.Stderr, "WARNING: saving the file digest cache:", err)
	}
	for _, e := range sum.Errors {
		fmt.Fprintln(os.Stderr, "ERROR: "+e.Error())
	}
	sum.Report(os.Stderr, len(targets), time.Since(start))
	if berr != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "ERROR: "+berr.Error())
			return exitError{130}
		}
		return berr
	}
	if then != nil {
		opts.Executor, opts.Caps, opts.Listener = nil, executors.Capabilities{}, nil
		return then(&built{ctx: ctx, g: g, targets: targets, disk: disk, opts: opts})
	}
	return nil
}

// restore gives back the graph of the last build with these flags from
// its snapshot, with the check of what changed since (prior), when what
// loading and analysis read is unchanged; g is nil otherwise. spec is
// where this build leaves its own snapshot, nil for none (repro).
func (f *buildFlags) restore(pats []string, root string, files *cas.FileCache, repro bool) (spec *engine.SnapshotSpec, s *engine.Snapshot, prior *engine.Prior) {
	if f.keyed == nil || repro || f.nobuild {
		return nil, nil, nil
	}
	// The running binary's own inode, even if its path was replaced since.
	bin, err := cas.Stat("/proc/self/exe")
	if err != nil {
		return nil, nil, nil
	}
	key := engine.SnapshotKey{Root: root, Patterns: pats, Flags: f.keyed, Binary: bin}
	spec = &engine.SnapshotSpec{Path: engine.SnapshotPath(stateDir(root), key), Key: key}
	s, why := engine.ReadSnapshot(spec.Path, key, root)
	if s != nil {
		if prior = s.Check(files); prior == nil {
			why = "a BUILD, .star or analysed file, or a listed directory, changed"
		}
	}
	if os.Getenv("LEGO_DEBUG_SNAPSHOT") != "" {
		if prior != nil {
			why = "used"
			if prior.Moved != "" {
				why += " (rehashed " + prior.Moved + ")"
			}
		}
		fmt.Fprintln(os.Stderr, "DEBUG: snapshot:", why)
	}
	return spec, s, prior
}

// replay is a build that the snapshot shows has nothing to do: each
// action is reported as the cache hit it would be, from the snapshot
// alone, without loading, analysis or executors. done is false when the
// store was collected since the snapshot (or the sandbox differs): the
// build goes on as usual.
func (f *buildFlags) replay(prior *engine.Prior, spec *engine.SnapshotSpec, root string, start time.Time) (done bool, err error) {
	disk, err := cas.Open(f.cacheDir)
	if err != nil {
		return false, err
	}
	defer disk.Close()
	unlock, err := disk.LockShared()
	if err != nil {
		return false, err
	}
	defer unlock()
	o := engine.Options{Store: disk, History: engine.OpenHistory(stateDir(root)), Snapshot: spec,
		Collected: disk.Collected(), Sandbox: stack.SandboxKey(f.sandbox)}
	if !prior.Replayable(o) {
		return false, nil
	}
	prog := newProgress(os.Stderr, f.progress)
	listeners := engine.Listeners{prog}
	if f.bep != "" {
		w, err := engine.CreateEventFile(f.bep)
		if err != nil {
			return false, err
		}
		defer w.Close()
		listeners = append(listeners, w)
	}
	o.Listener = listeners
	sum, err := engine.Replay(context.Background(), prior, o)
	prog.stop()
	if err != nil {
		return true, err
	}
	for _, e := range sum.Errors {
		fmt.Fprintln(os.Stderr, "ERROR: "+e.Error())
	}
	sum.Report(os.Stderr, prior.Targets(), time.Since(start))
	return true, nil
}

// executors composes the executor the flags ask for over store; client,
// when set, is the remote execution service.
func (f *buildFlags) executors(ctx context.Context, g *engine.Graph, targets []*engine.Target, store *cas.Disk, client *remote.Client) (*stack.Stack, error) {
	var needs []stack.Need
	for _, a := range engine.GPUActions(g, targets) {
		needs = append(needs, stack.Need{Label: a.Owner.String(), Limits: executors.Limits{
			GPUs: a.Resources.GPUs, GPUMemory: a.Resources.GPUMemory, GPUModel: a.Resources.GPUModel}})
	}
	if f.sandbox == "none" && client == nil {
		fmt.Fprintln(os.Stderr, "WARNING: --sandbox=none: local actions run as plain host processes; they can read and write everything you can, and what they make is cached as if they could not")
	}
	return stack.New(ctx, stack.Options{Mode: f.executor, ContainerdAddress: f.ctrdAddr, Store: store,
		GPUFallback: f.gpuFallback, Remote: client, RemoteGPUClass: f.remote.gpuClass, GPUNeeds: needs, Sandbox: f.sandbox})
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
