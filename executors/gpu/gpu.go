package gpu

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/executors"
)

// NVML is an initialized NVML library and the inventory read through it.
type NVML struct {
	Lib       nvml.Interface
	Inventory *Inventory
}

// Open initializes NVML (lib nil = the system's libnvidia-ml) and reads
// the inventory. On a machine with no driver the error says so; lego goes
// on without GPUs.
func Open(lib nvml.Interface) (*NVML, error) {
	if lib == nil {
		lib = nvml.New()
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, fmt.Errorf("no NVIDIA driver: NVML's library libnvidia-ml.so.1 was not found")
		}
		return nil, fmt.Errorf("NVML: %v", nvml.ErrorString(ret))
	}
	inv, err := Read(lib)
	if err != nil {
		lib.Shutdown()
		return nil, err
	}
	return &NVML{Lib: lib, Inventory: inv}, nil
}

// Close shuts NVML down.
func (n *NVML) Close() { n.Lib.Shutdown() }

// Fallback says what to do with a GPU action on a machine without GPUs.
type Fallback string

const (
	FallbackNone Fallback = ""    // fail before anything starts
	FallbackCPU  Fallback = "cpu" // run without GPUs
)

// Executor gives GPU actions exclusive devices and runs them with inner.
type Executor struct {
	inner    executors.Executor
	nv       *NVML // nil: no GPUs
	why      error // why nv is nil
	alloc    *Allocator
	fallback Fallback
	poll     time.Duration
}

// New wraps inner. nv is nil when NVML could not be opened; why says why.
func New(inner executors.Executor, nv *NVML, why error, fallback Fallback) *Executor {
	e := &Executor{inner: inner, nv: nv, why: why, fallback: fallback, poll: time.Second}
	if nv != nil {
		e.alloc = NewAllocator(nv.Inventory)
	}
	return e
}

// Allocator is nil on a machine without GPUs.
func (e *Executor) Allocator() *Allocator { return e.alloc }

// Class is the model class actions that name none are keyed with: the
// machine's, or "cpu" when they will run without GPUs.
func (e *Executor) Class() (string, error) {
	if e.alloc == nil || len(e.nv.Inventory.Devices) == 0 {
		if e.fallback == FallbackCPU {
			return "cpu", nil
		}
		return "", nil
	}
	return e.nv.Inventory.Class()
}

// Check says whether an action of label needing lim's GPUs can run here,
// before anything starts.
func (e *Executor) Check(label string, lim executors.Limits) error {
	if lim.GPUs <= 0 || e.fallback == FallbackCPU {
		return nil
	}
	if e.alloc == nil || len(e.nv.Inventory.Devices) == 0 {
		why := "no GPU was found"
		if e.why != nil {
			why = e.why.Error()
		}
		return fmt.Errorf("%s needs %d GPU(s) but this machine has none (%s); to run it without GPUs, pass --gpu_fallback=cpu", label, lim.GPUs, why)
	}
	s := newSched(e.nv.Inventory)
	if _, err := s.submit(jobOf(lim, 0)); err != nil {
		return fmt.Errorf("%s %v", label, err)
	}
	return nil
}

func jobOf(lim executors.Limits, est time.Duration) Job {
	return Job{GPUs: lim.GPUs, Memory: uint64(lim.GPUMemory), Model: lim.GPUModel, Estimate: est}
}

// Reserve implements executors.Reserver: it waits for the action's
// devices and records them in req, so that the engine admits the action
// for CPU and memory only once its GPUs are free (a GPU action waiting in
// the queue must not hold a CPU slot).
func (e *Executor) Reserve(ctx context.Context, req *executors.Request) (func(), error) {
	lim := req.Limits
	if lim.GPUs <= 0 || len(req.Devices) > 0 || e.alloc == nil || len(e.nv.Inventory.Devices) == 0 {
		return func() {}, nil // Execute decides
	}
	devs, release, err := e.alloc.Acquire(ctx, jobOf(lim, req.Estimate))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("action cancelled: %w", ctx.Err())
		}
		return nil, err
	}
	uuids := make([]string, len(devs))
	for i, d := range devs {
		uuids[i] = d.UUID
	}
	list := strings.Join(uuids, ",")
	req.Env = append(append([]string(nil), req.Env...), "CUDA_VISIBLE_DEVICES="+list, "NVIDIA_VISIBLE_DEVICES="+list)
	req.Devices = uuids
	return release, nil
}

// Execute implements executors.Executor.
func (e *Executor) Execute(ctx context.Context, req *executors.Request) (*repb.ActionResult, error) {
	lim := req.Limits
	if lim.GPUs <= 0 {
		return e.inner.Execute(ctx, req)
	}
	if e.alloc == nil || len(e.nv.Inventory.Devices) == 0 {
		if e.fallback == FallbackCPU {
			return e.inner.Execute(ctx, req)
		}
		return nil, e.Check("the action", lim)
	}
	r := *req
	if len(r.Devices) == 0 { // not reserved beforehand
		release, err := e.Reserve(ctx, &r)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	var devs []Device
	for _, u := range r.Devices {
		for _, d := range e.nv.Inventory.Devices {
			if d.UUID == u {
				devs = append(devs, d)
			}
		}
	}
	uuids := r.Devices

	stop := e.watch(devs)
	start := time.Now()
	res, err := e.inner.Execute(ctx, &r)
	u := executors.GPUUsage{Devices: uuids, GPUSeconds: time.Since(start).Seconds() * float64(len(devs)), PeakMemory: stop()}
	if res != nil {
		if res.ExecutionMetadata == nil {
			res.ExecutionMetadata = &repb.ExecutedActionMetadata{}
		}
		if a, aerr := u.Marshal(); aerr == nil {
			res.ExecutionMetadata.AuxiliaryMetadata = append(res.ExecutionMetadata.AuxiliaryMetadata, a)
		}
	}
	return res, err
}

// watch samples the memory of the processes on devs until the returned
// function is called, which gives the peak of the sums.
func (e *Executor) watch(devs []Device) func() int64 {
	var mu sync.Mutex
	var peak int64
	sample := func() {
		var sum int64
		for _, d := range devs {
			h, ret := e.nv.Lib.DeviceGetHandleByUUID(d.UUID)
			if ret != nvml.SUCCESS {
				continue
			}
			procs, ret := h.GetComputeRunningProcesses()
			if ret != nvml.SUCCESS {
				continue
			}
			for _, p := range procs {
				sum += int64(p.UsedGpuMemory)
			}
		}
		mu.Lock()
		peak = max(peak, sum)
		mu.Unlock()
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(e.poll)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

var _ executors.Executor = (*Executor)(nil)
