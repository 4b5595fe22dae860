package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/executors"
)

// Options configure a build.
type Options struct {
	Jobs      int // concurrent actions (cpu capacity); 0 = number of cores
	KeepGoing bool
	Memory    int64 // memory capacity in bytes for admission; 0 = unlimited
	// GPUClass is the GPU model class actions that name none are keyed
	// with: the machine's, or "cpu" when they run without GPUs.
	GPUClass string
	Store    *cas.Disk
	Files    *cas.FileCache
	Executor executors.Executor
	Listener Listener
	History  *History
	// Remote is the remote cache under Store (nil: none). Hits are
	// verified and written to Store; results made here are uploaded when
	// it was opened to upload.
	Remote *remote.Cache
	// Lazy leaves outputs on the remote server ("build without the
	// bytes", for --remote_executor): only the outputs of the targets
	// asked for, and the inputs of actions run here, are fetched.
	Lazy bool
}

// Summary is what a build did.
type Summary struct {
	Total    int
	Executed int
	Cached   int
	// RemoteHits counts the cached actions whose result came from the
	// remote cache; RemoteRuns the executed ones that ran remotely.
	RemoteHits int
	RemoteRuns int
	Failed     int
	Skipped    int
	// Ran lists the executed actions (Action.Describe), sorted.
	Ran    []string
	Errors []error
	// GPUSeconds sums the GPU time of executed actions per target label.
	GPUSeconds map[string]float64
}

type node struct {
	a       *Action
	deps    []*node
	rdeps   []*node
	pending int
	outs    map[string]*artifact
	failed  bool
}

type builder struct {
	g      *Graph
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	pool   *pool
	check  chan struct{}
	// remoteSlots bounds remote cache lookups in flight.
	remoteSlots chan struct{}
	sources     sync.Map // path -> *sourceOnce
	tools       sync.Map // host path -> *sourceOnce
	gpuMu       sync.Mutex
	gpuSecs     map[string]float64 // target label -> GPU-seconds

	mu        sync.Mutex
	sum       Summary
	wg        sync.WaitGroup
	remaining map[Label]int
	started   map[Label]bool
	failedT   map[Label]bool
	used      []*repb.Digest
	// wanted holds the paths of the outputs the build was asked for: in
	// a lazy build, the only ones materialized.
	wanted map[string]bool
}

type sourceOnce struct {
	once sync.Once
	art  *artifact
	err  error
}

// Build brings the default outputs of targets up to date.
func Build(ctx context.Context, g *Graph, targets []*Target, o Options) (*Summary, error) {
	b := newBuilder(ctx, g, o)
	defer b.cancel()
	o = b.o
	order := b.plan(targets)
	b.sum.Total = len(order)
	o.Listener.Event(&Event{Type: EvBuildStarted, Time: time.Now(), Total: len(order)})
	for _, t := range targets {
		if b.remaining[t.Label] == 0 {
			ok := true
			o.Listener.Event(&Event{Type: EvTargetStarted, Time: time.Now(), Label: t.Label.String()})
			o.Listener.Event(&Event{Type: EvTargetFinished, Time: time.Now(), Label: t.Label.String(), Success: &ok})
		}
	}
	// Roots first, then spawn: a finished root spawns its dependents and
	// brings their pending count to 0 while this loop would still be
	// reading it, and they would run twice.
	var roots []*node
	for _, n := range order {
		if n.pending == 0 {
			roots = append(roots, n)
		}
	}
	for _, n := range roots {
		b.spawn(n)
	}
	b.wg.Wait()

	s := &b.sum
	s.Skipped = s.Total - s.Executed - s.Cached - s.Failed
	sort.Strings(s.Ran)
	s.GPUSeconds = b.gpuSecs
	if len(b.used) > 0 {
		if err := o.Store.RecordUse(b.used); err != nil {
			s.Errors = append(s.Errors, fmt.Errorf("record cache use: %w", err))
		}
	}
	if o.History != nil {
		if err := o.History.Save(); err != nil {
			s.Errors = append(s.Errors, fmt.Errorf("save build history: %w", err))
		}
	}
	ok := s.Failed == 0 && ctx.Err() == nil
	o.Listener.Event(&Event{Type: EvBuildFinished, Time: time.Now(), Success: &ok, Total: s.Total,
		Executed: s.Executed, Cached: s.Cached, Failed: s.Failed, Skipped: s.Skipped})
	if ctx.Err() != nil {
		return s, fmt.Errorf("build interrupted: %d of %d actions done", s.Executed+s.Cached, s.Total)
	}
	if s.Failed > 0 {
		return s, fmt.Errorf("build failed: %d action(s) failed", s.Failed)
	}
	return s, nil
}

func newBuilder(ctx context.Context, g *Graph, o Options) *builder {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Listener == nil {
		o.Listener = Listeners(nil)
	}
	b := &builder{g: g, o: o, remaining: map[Label]int{}, started: map[Label]bool{}, failedT: map[Label]bool{}}
	b.ctx, b.cancel = context.WithCancel(ctx)
	b.pool = newPool(float64(o.Jobs), o.Memory)
	b.check = make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	b.remoteSlots = make(chan struct{}, 8)
	return b
}

// plan returns the nodes of the actions that make the targets' default
// outputs, each after those it depends on.
func (b *builder) plan(targets []*Target) []*node {
	nodes := map[*Action]*node{}
	var order []*node
	var visit func(a *Action) *node
	visit = func(a *Action) *node {
		if n, ok := nodes[a]; ok {
			return n
		}
		n := &node{a: a}
		nodes[a] = n
		seen := map[*node]bool{}
		for _, in := range a.Inputs {
			if p := in.producer; p != nil {
				d := visit(p)
				if !seen[d] {
					seen[d] = true
					n.deps = append(n.deps, d)
					d.rdeps = append(d.rdeps, n)
				}
			}
		}
		n.pending = len(n.deps)
		order = append(order, n)
		b.remaining[a.Owner]++
		return n
	}
	b.wanted = map[string]bool{}
	for _, t := range targets {
		for _, f := range t.Files {
			b.wanted[f.Path] = true
			if f.producer != nil {
				visit(f.producer)
			}
		}
	}
	return order
}

func (b *builder) spawn(n *node) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		cached, err := b.run(n)
		b.finish(n, cached, err)
	}()
}

func (b *builder) finish(n *node, cached bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	owner := n.a.Owner
	if b.ctx.Err() != nil && err != nil && !n.failed && errors.Is(err, context.Canceled) {
		return // cancelled because of another failure or an interrupt: counted as skipped
	}
	if err != nil {
		n.failed = true
		b.sum.Failed++
		b.sum.Errors = append(b.sum.Errors, err)
		b.failedT[owner] = true
		b.o.Listener.Event(&Event{Type: EvActionFailed, Time: time.Now(), Label: owner.String(),
			Action: n.a.Describe(), Mnemonic: n.a.Mnemonic, Error: err.Error()})
		if !b.o.KeepGoing {
			b.cancel()
		}
	} else if cached {
		b.sum.Cached++
	} else {
		b.sum.Executed++
		b.sum.Ran = append(b.sum.Ran, n.a.Describe())
	}
	b.remaining[owner]--
	if b.remaining[owner] == 0 {
		ok := !b.failedT[owner]
		b.o.Listener.Event(&Event{Type: EvTargetFinished, Time: time.Now(), Label: owner.String(), Success: &ok})
	}
	if err != nil || b.ctx.Err() != nil {
		return
	}
	for _, r := range n.rdeps {
		r.pending--
		if r.pending == 0 {
			b.spawn(r)
		}
	}
}

func (b *builder) targetStarted(l Label) {
	b.mu.Lock()
	first := !b.started[l]
	b.started[l] = true
	b.mu.Unlock()
	if first {
		b.o.Listener.Event(&Event{Type: EvTargetStarted, Time: time.Now(), Label: l.String()})
	}
}

// run brings one action's outputs up to date; cached reports a cache hit.
func (b *builder) run(n *node) (cached bool, err error) {
	if err := b.ctx.Err(); err != nil {
		return false, err
	}
	a := n.a
	b.targetStarted(a.Owner)
	select {
	case b.check <- struct{}{}:
	case <-b.ctx.Done():
		return false, b.ctx.Err()
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-b.check
		}
	}
	defer release()

	if a.IsWrite {
		return b.runWrite(n)
	}
	k, err := computeKey(a, func(f *File) (*artifact, error) { return b.input(n, f) }, b.tool, b.blob, b.o.GPUClass)
	if err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	outs, remoteHit := b.lookup(k.key), false
	if outs == nil && b.o.Remote != nil {
		// A remote lookup waits on the network, not the CPU: it gives
		// its check slot back and takes one of the many remote slots.
		release()
		select {
		case b.remoteSlots <- struct{}{}:
		case <-b.ctx.Done():
			return false, b.ctx.Err()
		}
		outs, remoteHit = b.remoteLookup(a, k.key), true
		<-b.remoteSlots
	}
	if outs != nil {
		if err := b.materialize(outs); err != nil {
			return false, fmt.Errorf("%s: %w", a.Describe(), err)
		}
		n.outs = outs
		b.o.Listener.Event(&Event{Type: EvActionCached, Time: time.Now(), Label: a.Owner.String(),
			Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash, Remote: remoteHit})
		if remoteHit {
			b.mu.Lock()
			b.sum.RemoteHits++
			b.mu.Unlock()
		}
		return true, nil
	}
	release()

	var rec *ActionRecord
	var estimate time.Duration
	if b.o.History != nil {
		rec = b.recordOf(a, k)
		estimate = b.o.History.lastDuration(rec)
	}
	req := request(a, k, estimate)
	admitted, err := b.admit(a, req)
	if err != nil {
		return false, err
	}
	var freeOnce sync.Once
	free := func() { freeOnce.Do(admitted) }
	defer free()
	if rec != nil {
		b.o.History.record(rec)
	}
	rr, isRemote := b.o.Executor.(executors.RemoteRunner)
	remotely := isRemote && rr.RunsRemotely(req)
	if b.o.Lazy && !remotely {
		if err := b.fetchInputs(n); err != nil {
			return false, fmt.Errorf("%s: %w", a.Describe(), err)
		}
	}
	start := time.Now()
	b.o.Listener.Event(&Event{Type: EvActionStarted, Time: start, Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash, Remote: remotely})
	res, err := b.o.Executor.Execute(b.ctx, req)
	if rec != nil {
		b.o.History.ranFor(rec, time.Since(start))
	}
	if usage, ok := executors.GPUUsageOf(res); ok {
		b.addGPU(a.Owner.String(), usage.GPUSeconds)
	}
	if err != nil {
		if b.ctx.Err() != nil {
			return false, context.Canceled
		}
		return false, fmt.Errorf("%s: %w\n  command: %s%s", a.Describe(), err, shellQuote(a.Args), stderrTail(b.o.Store, res))
	}
	if res.ExitCode != 0 {
		return false, failure(b.o.Store, a, res)
	}
	outs, err = resultOutputs(b.o.Store, a, res)
	if err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	if err := b.o.Store.PutActionResult(k.key, res); err != nil {
		return false, fmt.Errorf("%s: store result: %w", a.Describe(), err)
	}
	if b.o.Remote != nil && !remotely {
		// A remote executor has cached its result already. The upload
		// holds no CPU or GPU: a checkpoint's upload must not idle GPUs.
		free()
		b.o.Remote.Store(b.ctx, k.key, res)
	}
	if err := b.materialize(outs); err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	n.outs = outs
	if remotely {
		b.mu.Lock()
		b.sum.RemoteRuns++
		b.mu.Unlock()
	}
	ev := &Event{Type: EvActionExecuted, Time: time.Now(), Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash, Duration: time.Since(start), Remote: remotely}
	if usage, ok := executors.GPUUsageOf(res); ok {
		ev.GPUs, ev.GPUSeconds, ev.GPUPeakMemory = usage.Devices, usage.GPUSeconds, usage.PeakMemory
	}
	b.o.Listener.Event(ev)
	return false, nil
}

// request is what the executor gets for a keyed action.
func request(a *Action, k *keyed, estimate time.Duration) *executors.Request {
	req := &executors.Request{Action: k.action, Command: k.command, Dirs: k.dirs,
		Limits: executors.Limits{CPU: a.Resources.CPU, Memory: a.Resources.Memory,
			GPUs: a.Resources.GPUs, GPUMemory: a.Resources.GPUMemory, GPUModel: a.Resources.GPUModel},
		Estimate: estimate}
	for _, n := range a.SecretEnv {
		if v, ok := os.LookupEnv(n); ok {
			req.Env = append(req.Env, n+"="+v)
		}
	}
	return req
}

// admit waits until the action's devices and resources are free and
// takes them; free gives them back.
func (b *builder) admit(a *Action, req *executors.Request) (free func(), err error) {
	devices := func() {}
	// Devices first: an action waiting for GPUs holds no CPU slot.
	if r, ok := b.o.Executor.(executors.Reserver); ok && a.Resources.GPUs > 0 {
		devices, err = r.Reserve(b.ctx, req)
		if err != nil {
			if b.ctx.Err() != nil {
				return nil, context.Canceled
			}
			return nil, fmt.Errorf("%s: %w", a.Describe(), err)
		}
	}
	if err := b.pool.acquire(b.ctx, a.Resources); err != nil {
		devices()
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	return func() {
		b.pool.release(a.Resources)
		devices()
	}, nil
}

func (b *builder) addGPU(label string, secs float64) {
	b.gpuMu.Lock()
	defer b.gpuMu.Unlock()
	if b.gpuSecs == nil {
		b.gpuSecs = map[string]float64{}
	}
	b.gpuSecs[label] += secs
}

func (b *builder) runWrite(n *node) (bool, error) {
	a := n.a
	out := a.Outputs[0]
	d := cas.DigestOf(a.Content)
	cached := b.o.Store.Has(d)
	if !cached {
		if _, err := b.o.Store.Put(a.Content); err != nil {
			return false, fmt.Errorf("%s: %w", a.Describe(), err)
		}
	}
	n.outs = map[string]*artifact{out.Path: {digest: d, exec: out.Executable}}
	if err := b.materialize(n.outs); err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	ev := EvActionExecuted
	if cached {
		ev = EvActionCached
	}
	b.o.Listener.Event(&Event{Type: ev, Time: time.Now(), Label: a.Owner.String(), Action: a.Describe(), Mnemonic: a.Mnemonic, Key: d.Hash})
	return cached, nil
}

// input returns the built state of an input file.
func (b *builder) input(n *node, f *File) (*artifact, error) {
	if p := f.producer; p != nil {
		for _, d := range n.deps {
			if d.a == p {
				if art := d.outs[f.Path]; art != nil {
					return art, nil
				}
			}
		}
		return nil, fmt.Errorf("input %s was not built", f.Path)
	}
	v, _ := b.sources.LoadOrStore(f.Path, &sourceOnce{})
	s := v.(*sourceOnce)
	s.once.Do(func() {
		abs := filepath.Join(b.g.Root, filepath.FromSlash(f.Path))
		d, exec, err := b.o.Files.Digest(abs)
		if err != nil {
			s.err = fmt.Errorf("source %s: %w", f.Path, err)
			return
		}
		if !b.o.Store.Has(d) {
			if _, err := b.o.Store.PutFile(abs); err != nil {
				s.err = fmt.Errorf("source %s: %w", f.Path, err)
				return
			}
		}
		s.art = &artifact{digest: d, exec: exec}
	})
	return s.art, s.err
}

// tool digests a host tool once per build: thousands of actions name the
// same shell.
func (b *builder) tool(path string) (*repb.Digest, error) {
	v, _ := b.tools.LoadOrStore(path, &sourceOnce{})
	s := v.(*sourceOnce)
	s.once.Do(func() {
		d, exec, err := b.o.Files.Digest(path)
		s.art, s.err = &artifact{digest: d, exec: exec}, err
	})
	if s.err != nil {
		return nil, s.err
	}
	return s.art.digest, nil
}

// lookup returns the outputs of a locally cached result, or nil when
// there is none or an output blob is gone (then the remote tier is asked).
func (b *builder) lookup(key *repb.Digest) map[string]*artifact {
	res, err := b.o.Store.GetActionResult(key)
	if err != nil || res == nil || res.ExitCode != 0 {
		return nil
	}
	outs := b.outputsOf(res)
	if outs == nil {
		return nil
	}
	b.mu.Lock()
	b.used = append(b.used, key)
	b.mu.Unlock()
	return outs
}

// outputsOf returns the outputs of res when their blobs are all in the
// local store, else nil.
func (b *builder) outputsOf(res *repb.ActionResult) map[string]*artifact {
	outs := make(map[string]*artifact, len(res.OutputFiles)+len(res.OutputDirectories))
	for _, f := range res.OutputFiles {
		if !b.o.Store.Has(f.Digest) {
			return nil
		}
		outs[f.Path] = &artifact{digest: f.Digest, exec: f.IsExecutable}
	}
	for _, d := range res.OutputDirectories {
		t := &repb.Tree{}
		if err := b.o.Store.GetProto(d.TreeDigest, t); err != nil {
			return nil
		}
		files, err := treeFiles(t)
		if err != nil {
			return nil
		}
		for _, f := range files {
			if !b.o.Store.Has(f.digest) {
				return nil
			}
		}
		outs[d.Path] = &artifact{digest: d.TreeDigest, tree: t}
	}
	return outs
}

// remoteLookup asks the remote cache. Its hits are verified and stored
// locally (trees only, in a lazy build), so the next build hits locally.
func (b *builder) remoteLookup(a *Action, key *repb.Digest) map[string]*artifact {
	res := b.o.Remote.Lookup(b.ctx, key, !b.o.Lazy)
	if res == nil {
		return nil
	}
	// Servers cache what a worker produced, which need not be what the
	// action declares: such a result is a miss.
	if b.o.Lazy {
		// Only the trees are local; resultOutputs needs no more.
		outs, err := resultOutputs(b.o.Store, a, res)
		if err != nil {
			return nil
		}
		return outs
	}
	outs := b.outputsOf(res)
	if outs == nil || checkDeclared(a, outs) != nil {
		return nil
	}
	if err := b.o.Store.PutActionResult(key, res); err != nil {
		return nil
	}
	return outs
}

// fetchInputs brings the files of an action's built inputs into the local
// store (a lazy build, an action run here).
func (b *builder) fetchInputs(n *node) error {
	var ds []*repb.Digest
	for _, f := range n.a.Inputs {
		if f.producer == nil {
			continue
		}
		art, err := b.input(n, f)
		if err != nil {
			return err
		}
		ds = appendBlobs(ds, art)
	}
	return b.fetch(ds)
}

// appendBlobs appends the file digests of art (a file, or a tree's files).
func appendBlobs(ds []*repb.Digest, art *artifact) []*repb.Digest {
	if art.tree == nil {
		return append(ds, art.digest)
	}
	return append(ds, remote.TreeFiles(art.tree)...)
}

// blob reads a blob the key needs (an image manifest), fetching it from
// the remote when a lazy build left it there.
func (b *builder) blob(d *repb.Digest) ([]byte, error) {
	if b.o.Remote != nil && !b.o.Store.Has(d) {
		if err := b.o.Remote.Fetch(b.ctx, []*repb.Digest{d}); err != nil {
			return nil, err
		}
	}
	return b.o.Store.Get(d)
}

// fetch brings the blobs ds that are not in the local store from the
// remote one.
func (b *builder) fetch(ds []*repb.Digest) error {
	var missing []*repb.Digest
	for _, d := range ds {
		if !b.o.Store.Has(d) {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if b.o.Remote == nil {
		return fmt.Errorf("%d blob(s) are neither here nor on a remote cache, e.g. %s", len(missing), cas.Key(missing[0]))
	}
	return b.o.Remote.Fetch(b.ctx, missing)
}

// resultOutputs reads the outputs of res, whose trees are in store, and
// checks them against a's declarations.
func resultOutputs(store *cas.Disk, a *Action, res *repb.ActionResult) (map[string]*artifact, error) {
	outs := map[string]*artifact{}
	for _, f := range res.OutputFiles {
		outs[f.Path] = &artifact{digest: f.Digest, exec: f.IsExecutable}
	}
	for _, d := range res.OutputDirectories {
		t := &repb.Tree{}
		if err := store.GetProto(d.TreeDigest, t); err != nil {
			return nil, fmt.Errorf("output directory %s: %w", d.Path, err)
		}
		outs[d.Path] = &artifact{digest: d.TreeDigest, tree: t}
	}
	return outs, checkDeclared(a, outs)
}

// checkDeclared checks outputs against a's declarations.
func checkDeclared(a *Action, outs map[string]*artifact) error {
	for _, o := range a.Outputs {
		art, ok := outs[o.Path]
		if !ok {
			return fmt.Errorf("declared output %s was not produced", o.Path)
		}
		if o.Dir != (art.tree != nil) {
			return fmt.Errorf("output %s: declared as %s", o.Path, map[bool]string{true: "a directory", false: "a file"}[o.Dir])
		}
	}
	return nil
}

// materialize links outputs into the workspace's lego-out tree; a lazy
// build fetches and links only those the build was asked for.
func (b *builder) materialize(outs map[string]*artifact) error {
	for p, art := range outs {
		if b.o.Lazy && !b.wanted[p] {
			continue
		}
		if b.o.Remote != nil {
			// A remote run leaves its outputs on the server.
			if err := b.fetch(appendBlobs(nil, art)); err != nil {
				return fmt.Errorf("fetch %s: %w", p, err)
			}
		}
		dst := filepath.Join(b.g.Root, filepath.FromSlash(p))
		if art.tree == nil {
			if err := b.linkFile(art.digest, art.exec, dst); err != nil {
				return fmt.Errorf("materialize %s: %w", p, err)
			}
			continue
		}
		files, err := treeFiles(art.tree)
		if err != nil {
			return err
		}
		// Rebuild the directory beside the old one and swap, so a reader
		// never sees a half-written tree.
		tmp := fmt.Sprintf("%s.lego-tmp-%d", dst, os.Getpid())
		os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return err
		}
		for _, f := range files {
			if err := b.o.Store.Link(f.digest, f.exec, filepath.Join(tmp, filepath.FromSlash(f.path))); err != nil {
				return fmt.Errorf("materialize %s/%s: %w", p, f.path, err)
			}
		}
		old := fmt.Sprintf("%s.lego-old-%d", dst, os.Getpid())
		os.Rename(dst, old)
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		os.RemoveAll(old)
	}
	return nil
}

// linkFile skips the link when dst already is the blob (a null build).
func (b *builder) linkFile(d *repb.Digest, exec bool, dst string) error {
	if st, err := os.Lstat(dst); err == nil && st.Size() == d.SizeBytes && st.Mode().IsRegular() {
		if bp, err := b.o.Store.BlobPath(d, exec); err == nil {
			if bst, err := os.Stat(bp); err == nil && os.SameFile(st, bst) {
				return nil
			}
		}
		// A blob past the filesystem's link limit (many outputs with the
		// same bytes) or on another device was copied: keep a copy whose
		// bytes and execute bit are already right rather than copy again.
		if (st.Mode()&0o111 != 0) == exec && b.holds(dst, d) {
			return nil
		}
	}
	return b.o.Store.Link(d, exec, dst)
}

// holds tells whether the file at path has digest d. Small files are read;
// big ones go through the file-digest cache so a null build does not
// rehash them.
func (b *builder) holds(path string, d *repb.Digest) bool {
	if d.SizeBytes <= 64<<10 {
		data, err := os.ReadFile(path)
		return err == nil && cas.DigestOf(data).Hash == d.Hash
	}
	got, _, err := b.o.Files.Digest(path)
	return err == nil && got.Hash == d.Hash
}

// failure reports a non-zero exit; store holds the logs.
func failure(store *cas.Disk, a *Action, res *repb.ActionResult) error {
	return fmt.Errorf("%s failed with exit code %d\n  command: %s%s", a.Describe(), res.ExitCode, shellQuote(a.Args), stderrTail(store, res))
}

// stderrTail is the last 50 lines of an action's stderr, indented, or "".
func stderrTail(store *cas.Disk, res *repb.ActionResult) string {
	if res == nil {
		return ""
	}
	tail, err := executors.Tail(store, res.StderrDigest, 50)
	if err != nil || tail == "" {
		return ""
	}
	return "\n  stderr (last 50 lines):\n    " + strings.ReplaceAll(tail, "\n", "\n    ")
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func (b *builder) recordOf(a *Action, k *keyed) *ActionRecord {
	r := &ActionRecord{Label: a.Owner.String(), Mnemonic: a.Mnemonic, Output: a.Outputs[0].Path,
		Key: k.key.Hash, Args: a.Args, Env: a.Env, Inputs: k.inputs}
	if t := b.g.Targets[a.Owner]; t != nil && t.Rule != nil {
		r.Attrs = map[string]string{}
		for _, s := range t.Rule.Attrs() {
			r.Attrs[s.Name] = FormatAttr(t.Attrs[s.Name])
		}
	}
	return r
}

// pool admits actions while their resources fit.
type pool struct {
	mu       sync.Mutex
	cpu, mem float64
	capCPU   float64
	capMem   float64
	changed  chan struct{}
}

func newPool(cpu float64, mem int64) *pool {
	return &pool{cpu: cpu, capCPU: cpu, mem: float64(mem), capMem: float64(mem), changed: make(chan struct{})}
}

func (p *pool) need(r Resources) (cpu, mem float64) {
	// An action wanting more cores than the build may use runs alone.
	return min(r.CPU, p.capCPU), float64(r.Memory)
}

func (p *pool) acquire(ctx context.Context, r Resources) error {
	cpu, mem := p.need(r)
	if p.capMem > 0 && mem > p.capMem {
		return fmt.Errorf("needs %d MiB of memory, the build may use %d MiB", int64(mem)>>20, int64(p.capMem)>>20)
	}
	for {
		p.mu.Lock()
		if p.cpu >= cpu-1e-9 && (p.capMem == 0 || p.mem >= mem) {
			p.cpu -= cpu
			p.mem -= mem
			p.mu.Unlock()
			return nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *pool) release(r Resources) {
	cpu, mem := p.need(r)
	p.mu.Lock()
	p.cpu += cpu
	p.mem += mem
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}
