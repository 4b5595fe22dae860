package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
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
	// Sandbox describes how host actions (those that name no image) are
	// held; it is part of their keys.
	Sandbox string
	// Store holds blobs and action results: the layers a build stacks
	// (memory, disk, remote), seen through one interface.
	Store    cas.Store
	Files    *cas.FileCache
	Executor executors.Executor
	// Caps are what Executor does besides running actions.
	Caps     executors.Capabilities
	Listener Listener
	History  *History
	// Lazy materializes only the outputs of the targets asked for ("build
	// without the bytes", for --remote_executor); the others stay where
	// Store has them, which may be a remote server.
	Lazy bool
	// Prior, from the last build's snapshot, lets actions whose inputs
	// did not change be taken as up to date without keying them.
	Prior *Prior
	// Snapshot, when set, is where a successful build leaves its own.
	Snapshot *SnapshotSpec
	// Collected names the store's last GC (cas.Disk.Collected): a prior
	// snapshot made before another one is not used.
	Collected string
}

// SnapshotSpec says where a build writes its snapshot and for what.
type SnapshotSpec struct {
	Path   string
	Key    SnapshotKey
	Labels []Label
	// Reads are the loading and analysis reads; nil for a graph
	// restored from a snapshot, whose Prior has them.
	Reads *Reads
}

type node struct {
	a       *Action
	deps    []*node
	rdeps   []*node
	pending int
	outs    map[string]*artifact
	failed  bool
	// What the snapshot records of the action: its key, its outputs in
	// lego-out (nil: unknown) and its tally word; prior is set when the
	// last build's outputs were taken as they are.
	key   *repb.Digest
	state []outState
	word  string
	prior bool
	done  bool
	// triedPrior: the prior snapshot was asked about n already, and
	// could not vouch for it.
	triedPrior bool
}

type builder struct {
	g      *Graph
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	pool   *pool
	// check bounds the actions computing their keys, which is CPU work;
	// lookups bounds those reading the cache, which waits on the disk or
	// the network.
	check   chan struct{}
	lookups chan struct{}
	sources sync.Map // path -> *sourceOnce
	tools   sync.Map // host path -> *sourceOnce
	warned  sync.Map // Label of a target warned about -> true
	gpuMu   sync.Mutex
	gpuSecs map[string]float64 // target label -> GPU-seconds

	order     []*node
	nodes     map[*Action]*node
	keyAll    bool // the prior snapshot's keys are not this build's
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
	once  sync.Once
	art   *artifact
	err   error
	state fileState
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
	if p := o.Prior; p != nil && (p.snap.gpuClass != o.GPUClass || p.snap.sandbox != o.Sandbox || p.snap.collected != o.Collected) {
		b.keyAll = true // the keys would differ: every action is keyed
	}
	b.order = order
	if b.o.Prior != nil && !b.keyAll {
		b.settle(order)
	}
	// Roots first, then spawn: a finished root spawns its dependents and
	// brings their pending count to 0 while this loop would still be
	// reading it, and they would run twice.
	var roots []*node
	for _, n := range order {
		if n.pending == 0 && !n.done {
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
	if ok && o.Snapshot != nil && !o.Lazy {
		if err := b.saveSnapshot(); err != nil {
			o.Listener.Event(&Event{Type: EvWarning, Time: time.Now(), Message: "build snapshot not saved (the next build checks everything again): " + err.Error()})
		}
	}
	o.Listener.Event(&Event{Type: EvBuildFinished, Time: time.Now(), Success: &ok, Total: s.Total,
		Executed: s.Executed, Cached: s.Cached, Failed: s.Failed, FailedBy: s.FailedBy, Skipped: s.Skipped, Tallies: s.Tallies})
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
	b.lookups = make(chan struct{}, max(8, 2*runtime.GOMAXPROCS(0)))
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
		// Most actions have a few producers, found faster in n.deps
		// than in a map made for each.
		var seen map[*node]bool
		for _, in := range a.Inputs {
			if p := in.producer; p != nil {
				d := visit(p)
				if seen == nil && len(n.deps) > 16 {
					seen = make(map[*node]bool, len(a.Inputs))
					for _, x := range n.deps {
						seen[x] = true
					}
				}
				if (seen == nil && slices.Contains(n.deps, d)) || seen[d] {
					continue
				}
				if seen != nil {
					seen[d] = true
				}
				n.deps = append(n.deps, d)
				d.rdeps = append(d.rdeps, n)
			}
		}
		n.pending = len(n.deps)
		order = append(order, n)
		b.remaining[a.Owner]++
		return n
	}
	b.nodes = nodes
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

// finish accounts for n and starts the dependents it made ready. One
// that the prior snapshot shows up to date is taken here, in this
// goroutine, and so on down the graph: after an edit, thousands of
// actions downstream of one that reran are each settled in microseconds.
func (b *builder) finish(n *node, cached bool, err error) {
	ready := b.release(n, cached, err)
	for len(ready) > 0 {
		r := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		if b.o.Prior != nil && !b.keyAll && b.ctx.Err() == nil {
			r.triedPrior = true
			if b.usePrior(r) {
				ready = append(ready, b.release(r, true, nil)...)
				continue
			}
		}
		b.spawn(r)
	}
}

// release accounts for n and returns the dependents now ready.
func (b *builder) release(n *node, cached bool, err error) []*node {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.account(n, cached, err) {
		return nil
	}
	var ready []*node
	for _, r := range n.rdeps {
		r.pending--
		if r.pending == 0 {
			ready = append(ready, r)
		}
	}
	return ready
}

// account counts n's end and reports whether its dependents may go on;
// b.mu is held.
func (b *builder) account(n *node, cached bool, err error) bool {
	n.done = true
	owner := n.a.Owner
	if b.ctx.Err() != nil && err != nil && !n.failed && errors.Is(err, context.Canceled) {
		return false // cancelled because of another failure or an interrupt: counted as skipped
	}
	if err != nil {
		n.failed = true
		class := executors.ClassOf(err)
		b.sum.Failed++
		if b.sum.FailedBy == nil {
			b.sum.FailedBy = map[string]int{}
		}
		b.sum.FailedBy[class]++
		b.sum.Errors = append(b.sum.Errors, err)
		b.failedT[owner] = true
		b.o.Listener.Event(&Event{Type: EvActionFailed, Time: time.Now(), Label: owner.String(),
			Action: n.a.Describe(), Mnemonic: n.a.Mnemonic, Error: err.Error(), FailureClass: class})
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
	return err == nil && b.ctx.Err() == nil
}

// settle takes, in dependency order, every action whose inputs are known
// unchanged from the prior snapshot as done, without a goroutine, a key
// or a lookup: in a null build, all of them. The others are left to run.
func (b *builder) settle(order []*node) {
	for _, n := range order {
		if n.pending != 0 {
			continue
		}
		if !b.usePrior(n) {
			continue
		}
		b.mu.Lock()
		b.account(n, true, nil)
		for _, r := range n.rdeps {
			r.pending--
		}
		b.mu.Unlock()
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
