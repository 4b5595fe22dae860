package gpu

import (
	"context"
	"sync"
	"time"
)

// Allocator hands out exclusive devices to concurrent callers, in the
// order and by the policy of sched. It is safe for concurrent use.
type Allocator struct {
	inv *Inventory

	mu      sync.Mutex
	s       *sched
	waiters map[*job]chan struct{}
}

// NewAllocator allocates the devices of inv.
func NewAllocator(inv *Inventory) *Allocator {
	return &Allocator{inv: inv, s: newSched(inv), waiters: map[*job]chan struct{}{}}
}

// Inventory is the allocator's inventory.
func (a *Allocator) Inventory() *Inventory { return a.inv }

// Acquire blocks until the job's devices are free and returns them, with
// the function that frees them. A job this machine can never run is an
// error at once; a cancelled ctx gives up the place in the queue.
func (a *Allocator) Acquire(ctx context.Context, j Job) ([]Device, func(), error) {
	a.mu.Lock()
	q, err := a.s.submit(j)
	if err != nil {
		a.mu.Unlock()
		return nil, nil, err
	}
	ready := make(chan struct{})
	a.waiters[q] = ready
	a.stepLocked()
	a.mu.Unlock()

	select {
	case <-ready:
	case <-ctx.Done():
		a.mu.Lock()
		delete(a.waiters, q)
		if q.devs == nil {
			a.s.cancel(q)
		} else {
			a.s.finish(q) // granted meanwhile: give it back
		}
		a.stepLocked()
		a.mu.Unlock()
		return nil, nil, ctx.Err()
	}
	devs := make([]Device, len(q.devs))
	for i, d := range q.devs {
		devs[i] = a.inv.Devices[d]
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			a.mu.Lock()
			a.s.finish(q)
			a.stepLocked()
			a.mu.Unlock()
		})
	}
	return devs, release, nil
}

func (a *Allocator) stepLocked() {
	for _, q := range a.s.step(time.Now()) {
		if ch, ok := a.waiters[q]; ok {
			delete(a.waiters, q)
			close(ch)
		}
	}
}

// InUse is the number of devices held (for tests and status).
func (a *Allocator) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, o := range a.s.owner {
		if o >= 0 {
			n++
		}
	}
	return n
}
