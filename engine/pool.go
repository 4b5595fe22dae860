package engine

import (
	"context"
	"fmt"
	"sync"
)

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
