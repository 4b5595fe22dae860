// Package stack composes the executor a build runs its actions on, in one
// place, as Buck2 composes local, remote and hybrid execution: the local
// sandbox, containerd for actions that name an image or run containers of
// their own, the GPU allocator over both, or a remote REAPI service for
// everything. What the composition can do besides running actions is
// stated in its Capabilities.
package stack

import (
	"context"
	"fmt"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/gpu"
	"github.com/legobuild/lego/executors/local"
	rexec "github.com/legobuild/lego/executors/remote"
	"github.com/legobuild/lego/executors/sandbox"
)

// Options choose the executors.
type Options struct {
	// Mode is auto (containerd for actions that name an image, local
	// otherwise), local or containerd (--executor).
	Mode string
	// ContainerdAddress is containerd's socket ("" = the default).
	ContainerdAddress string
	// Store is where local executors read inputs and write outputs.
	Store *cas.Disk
	// GPUFallback is none (actions needing GPUs fail on a machine
	// without them) or cpu (they run without GPUs).
	GPUFallback string
	// Remote, when set, runs every action on that REAPI service.
	Remote *remote.Client
	// RemoteGPUClass is the GPU model class of the remote workers, for
	// GPU actions that name none (--remote_gpu_class).
	RemoteGPUClass string
	// GPUNeeds are the GPU actions of the build, checked before anything
	// runs: one that cannot get its GPUs would fail the build halfway.
	GPUNeeds []Need
	// Sandbox is how local actions are held (--sandbox): "linux", a
	// namespace sandbox, or "none", plain host processes.
	Sandbox string
}

// Need is one action's GPU request; Label names it in errors.
type Need struct {
	Label  string
	Limits executors.Limits
}

// Stack is a composed executor.
type Stack struct {
	executors.Executor
	Caps executors.Capabilities
	// GPUClass is the model class GPU actions that name none are keyed
	// with: the machine's, the remote workers', or "cpu" on fallback.
	GPUClass string
	// Sandbox describes what a host action can see, for its key.
	Sandbox string
	close   []func()
}

// Close releases what the stack opened (containerd, NVML).
func (s *Stack) Close() {
	for i := len(s.close) - 1; i >= 0; i-- {
		s.close[i]()
	}
}

// New composes the executor o asks for.
func New(ctx context.Context, o Options) (*Stack, error) {
	if o.Remote != nil {
		return remoteStack(o)
	}
	var fb gpu.Fallback
	switch o.GPUFallback {
	case "", "none":
	case "cpu":
		fb = gpu.FallbackCPU
	default:
		return nil, fmt.Errorf("--gpu_fallback=%s: want none or cpu", o.GPUFallback)
	}
	lo := local.Options{}
	switch o.Sandbox {
	case "", "linux":
	case "none":
		lo.Unsandboxed = true
	default:
		return nil, fmt.Errorf("--sandbox=%s: want linux or none", o.Sandbox)
	}
	r, err := newRouter(ctx, o.Mode, o.ContainerdAddress, o.Store, lo)
	if err != nil {
		return nil, err
	}
	s := &Stack{close: []func(){r.Close}, Sandbox: SandboxKey(o.Sandbox)}
	// NVML is opened only when some action needs GPUs: a machine without
	// the driver never touches it otherwise.
	var nv *gpu.NVML
	var why error
	if len(o.GPUNeeds) > 0 {
		if nv, why = gpu.Open(nil); nv != nil {
			s.close = append(s.close, nv.Close)
		}
	}
	g := gpu.New(r, nv, why, fb)
	for _, n := range o.GPUNeeds {
		if err := g.Check(n.Label, n.Limits); err != nil {
			s.Close()
			return nil, err
		}
		if n.Limits.GPUModel == "" {
			if _, err := g.Class(); err != nil {
				s.Close()
				return nil, fmt.Errorf("%s: %w", n.Label, err)
			}
		}
	}
	s.Executor = g
	s.Caps.Reserve = g.Reserve
	s.GPUClass, _ = g.Class() // checked above for the actions that need it
	return s, nil
}

// SandboxKey is the Sandbox of a local stack made with this --sandbox
// mode: what a build snapshot compares without making one.
func SandboxKey(mode string) string {
	if mode == "none" {
		return "none"
	}
	return sandbox.Platform()
}

// remoteStack sends every action to the REAPI service. The GPU class is
// in the key, and lego cannot see the workers' GPUs: a GPU action that
// names no model needs --remote_gpu_class.
func remoteStack(o Options) (*Stack, error) {
	if o.RemoteGPUClass == "" {
		for _, n := range o.GPUNeeds {
			if n.Limits.GPUModel == "" {
				return nil, fmt.Errorf("%s needs GPUs and names no gpu_model: with --remote_executor, pass --remote_gpu_class (e.g. H100)", n.Label)
			}
		}
	}
	return &Stack{
		Executor: rexec.New(o.Remote, o.Store),
		Caps:     executors.Capabilities{Remote: func(*executors.Request) bool { return true }},
		GPUClass: o.RemoteGPUClass,
		// Workers are trusted to hold actions as the local sandbox does:
		// one key for a result wherever it was made.
		Sandbox: sandbox.Platform(),
	}, nil
}
