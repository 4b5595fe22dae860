package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// run brings one action's outputs up to date; cached reports a cache hit.
func (b *builder) run(n *node) (cached bool, err error) {
	if err := b.ctx.Err(); err != nil {
		return false, err
	}
	a := n.a
	if b.o.Prior != nil && !b.keyAll && !n.triedPrior && b.usePrior(n) {
		return true, nil
	}
	b.targetStarted(a.Owner)
	if err := b.g.complete(a); err != nil {
		return false, err
	}
	if err := acquire(b.ctx, b.check); err != nil {
		return false, err
	}
	if a.IsWrite {
		defer func() { <-b.check }()
		return b.runWrite(n)
	}
	k, err := computeKey(a, func(f *File) (*artifact, error) { return b.input(n, f) }, b.tool, b.blob, b.o.GPUClass, b.o.Sandbox)
	<-b.check
	if err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	n.key = k.key
	if hit, err := b.cached(n, k); hit || err != nil {
		return hit, err
	}

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
	remotely := b.o.Caps.Remote != nil && b.o.Caps.Remote(req)
	if b.o.Lazy && !remotely {
		if err := b.fetchInputs(n); err != nil {
			return false, fmt.Errorf("%s: %w", a.Describe(), err)
		}
	}
	start := time.Now()
	b.o.Listener.Event(&Event{Type: EvActionStarted, Time: start, Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash, Remote: remotely, Progress: a.ProgressMessage()})
	res, err := b.o.Executor.Execute(b.ctx, req)
	if rec != nil {
		b.o.History.ranFor(rec, time.Since(start))
	}
	usage, hasUsage := executors.GPUUsageOf(res)
	if hasUsage {
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
	outs, err := resultOutputs(b.o.Store, a, res)
	if err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	if err := b.materialize(outs); err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	n.outs = outs
	b.recordOutputs(n)
	// The result may go to a remote cache too: its upload holds no CPU or
	// GPU, since a checkpoint's upload must not idle GPUs.
	free()
	made := cas.Here
	if remotely {
		made = cas.Remotely
	}
	if err := b.o.Store.PutActionResult(b.ctx, k.key, res, made); err != nil {
		return false, fmt.Errorf("%s: store result: %w", a.Describe(), err)
	}
	if remotely {
		b.mu.Lock()
		b.sum.RemoteRuns++
		b.mu.Unlock()
	}
	if res.StderrDigest != nil && res.StderrDigest.SizeBytes > 0 {
		if tail, err := executors.Tail(b.o.Store, res.StderrDigest, 50); err == nil {
			for _, w := range executors.WarningsOf(tail) {
				b.o.Listener.Event(&Event{Type: EvWarning, Time: time.Now(), Label: a.Owner.String(), Message: w})
			}
		}
	}
	b.tally(n, res)
	ev := &Event{Type: EvActionExecuted, Time: time.Now(), Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash, Duration: time.Since(start), Remote: remotely}
	if hasUsage {
		ev.GPUs, ev.GPUSeconds, ev.GPUPeakMemory = usage.Devices, usage.GPUSeconds, usage.PeakMemory
	}
	b.o.Listener.Event(ev)
	return false, nil
}

// acquire takes a slot of sem, or fails when ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cached materializes the outputs of a cache hit for the keyed action of
// n; hit is false on a miss. A lookup waits on the disk or the network,
// not the CPU, so it holds a lookup slot rather than a check slot.
func (b *builder) cached(n *node, k *keyed) (hit bool, err error) {
	a := n.a
	if err := acquire(b.ctx, b.lookups); err != nil {
		return false, err
	}
	defer func() { <-b.lookups }()
	outs, res, layer := b.lookup(a, k.key)
	if outs == nil {
		return false, nil
	}
	if err := b.materialize(outs); err != nil {
		return false, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	n.outs = outs
	b.recordOutputs(n)
	b.tally(n, res)
	remote := layer == cas.Remote
	b.o.Listener.Event(&Event{Type: EvActionCached, Time: time.Now(), Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash, Remote: remote})
	if remote {
		b.mu.Lock()
		b.sum.RemoteHits++
		b.mu.Unlock()
	}
	return true, nil
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
	if b.o.Caps.Reserve != nil && a.Resources.GPUs > 0 {
		devices, err = b.o.Caps.Reserve(b.ctx, req)
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
	n.key = d
	b.recordOutputs(n)
	ev := EvActionExecuted
	if cached {
		ev = EvActionCached
	}
	b.o.Listener.Event(&Event{Type: ev, Time: time.Now(), Label: a.Owner.String(), Action: a.Describe(), Mnemonic: a.Mnemonic, Key: d.Hash})
	return cached, nil
}

func (b *builder) recordOf(a *Action, k *keyed) *ActionRecord {
	r := &ActionRecord{Label: a.Owner.String(), Mnemonic: a.Mnemonic, Output: a.Outputs[0].Path,
		Key: k.key.Hash, Args: a.Args, Env: a.Env, Inputs: k.inputs}
	r.Attrs = b.g.attrText(b.g.Targets[a.Owner])
	return r
}
