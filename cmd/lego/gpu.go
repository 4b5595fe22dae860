package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/gpu"
)

// gpuExecutor wraps inner with the GPU allocator. NVML is opened only when
// some action to build needs GPUs: a machine without the driver never
// touches it otherwise.
func gpuExecutor(g *engine.Graph, targets []*engine.Target, inner executors.Executor, fallback string) (*gpu.Executor, func(), error) {
	var fb gpu.Fallback
	switch fallback {
	case "", "none":
	case "cpu":
		fb = gpu.FallbackCPU
	default:
		return nil, nil, fmt.Errorf("--gpu_fallback=%s: want none or cpu", fallback)
	}
	need := gpuActions(g, targets)
	var nv *gpu.NVML
	var why error
	if len(need) > 0 {
		nv, why = gpu.Open(nil)
	}
	e := gpu.New(inner, nv, why, fb)
	closeFn := func() {
		if nv != nil {
			nv.Close()
		}
	}
	// Fail before anything starts: one action that cannot get its GPUs
	// would otherwise fail the build halfway.
	for _, a := range need {
		lim := executors.Limits{GPUs: a.Resources.GPUs, GPUMemory: a.Resources.GPUMemory, GPUModel: a.Resources.GPUModel}
		if err := e.Check(a.Owner.String(), lim); err != nil {
			closeFn()
			return nil, nil, err
		}
		if a.Resources.GPUModel == "" {
			if _, err := e.Class(); err != nil {
				closeFn()
				return nil, nil, fmt.Errorf("%s: %w", a.Owner, err)
			}
		}
	}
	return e, closeFn, nil
}

// gpuActions lists the actions of targets and their dependencies that
// need GPUs.
func gpuActions(g *engine.Graph, targets []*engine.Target) []*engine.Action {
	seen := map[engine.Label]bool{}
	var out []*engine.Action
	var walk func(t *engine.Target)
	walk = func(t *engine.Target) {
		if t == nil || seen[t.Label] {
			return
		}
		seen[t.Label] = true
		for _, a := range t.Actions {
			if a.Resources.GPUs > 0 {
				out = append(out, a)
			}
		}
		for _, d := range t.Deps() {
			walk(g.Targets[d])
		}
	}
	for _, t := range targets {
		walk(t)
	}
	return out
}

// printGPUHours prints the GPU-hours of the build per target.
func printGPUHours(secs map[string]float64) {
	if len(secs) == 0 {
		return
	}
	labels := make([]string, 0, len(secs))
	total := 0.0
	for l, s := range secs {
		labels = append(labels, l)
		total += s
	}
	sort.Strings(labels)
	fmt.Fprintf(os.Stderr, "INFO: GPU-hours: %.4f in all\n", total/3600)
	for _, l := range labels {
		fmt.Fprintf(os.Stderr, "INFO:   %s %.4f\n", l, secs[l]/3600)
	}
}
