package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
