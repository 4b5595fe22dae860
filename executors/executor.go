// Package executors defines how an REAPI action is run. Implementations
// (local sandbox, containers, remote) live in subpackages; they take an
// Action/Command plus a CAS and know nothing of targets or the engine, so the
// engine imports them and never the other way round.
package executors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Request is one REAPI action to run. Executors know nothing of targets or the engine.
type Request struct {
	Action  *repb.Action
	Command *repb.Command
	// Dirs holds every Directory of the input root keyed by cas.Key(digest);
	// a directory missing here is read from the CAS. The engine already has
	// these messages in memory, so passing them saves a read and a decode
	// per directory per action.
	Dirs map[string]*repb.Directory
	// Limits bound the process. They are not in the action key: they
	// change whether an action fits, not what it computes.
	Limits Limits
	// Env is added to the process's environment for this run only (e.g.
	// CUDA_VISIBLE_DEVICES); it is not in the key.
	Env []string
	// Devices are the UUIDs of the GPUs the process may use, chosen by
	// the GPU executor; a container executor exposes exactly these.
	Devices []string
	// Estimate is how long the action took last time (0 = unknown): a
	// hint for schedulers.
	Estimate time.Duration
}

// Limits are the resources an executor lets an action use: CPUs (0 = no
// limit), memory in bytes (0 = no limit) and GPUs (with the memory each
// must have, and a model class such as "H100"; "" = any). Executors that
// cannot enforce CPU and memory (the local one) leave them to admission
// upstream.
type Limits struct {
	CPU       float64
	Memory    int64
	GPUs      int
	GPUMemory int64
	GPUModel  string
}

// Platform property names lego sets on actions. They are part of the key.
const (
	// PropImage is the manifest digest ("sha256:<hex>") of the OCI image an
	// action runs in; PropImageSize is the manifest's size in bytes.
	PropImage     = "lego.image"
	PropImageSize = "lego.image.size"
	// PropNetwork is "true" when the action may use the network.
	PropNetwork = "lego.network"
	// PropLayerOutput names an output file into which a container executor
	// writes the filesystem changes the action made, as an OCI layer
	// (an image's run step).
	PropLayerOutput = "lego.layer_output"
	// PropGPUs is the number of GPUs an action uses, and PropGPUModel
	// their model class ("H100", or "cpu" when run without GPUs):
	// numerics differ between models, device UUIDs do not matter.
	PropGPUs     = "lego.gpus"
	PropGPUModel = "lego.gpu_model"
	// PropSecretEnv lists, comma-separated, the environment variables
	// whose values the action gets from lego's own environment when it
	// runs (API keys): the names are in the key, the values never are.
	PropSecretEnv = "lego.secret_env"
	// PropSession is "containerd" for a host action that runs containers
	// of its own (an agent's rollout: one long-lived container, commands
	// exec'd into it). The executor tells it, outside the key, where
	// containerd and the store are: EnvContainerd and EnvCacheDir.
	PropSession = "lego.session"
	// PropSandbox says what a host action could see of the host (the
	// sandbox's kind and its visible paths, or "none").
	PropSandbox = "lego.sandbox"
	// PropHostPaths lists, colon-separated, the host paths a host action
	// may read besides its inputs (Action.HostPaths).
	PropHostPaths = "lego.host_paths"
	// PropAsRoot is "true" for a host action that runs as root in its
	// sandbox (Action.AsRoot).
	PropAsRoot = "lego.as_root"
)

// Variables a session action gets (see PropSession).
const (
	EnvContainerd = "LEGO_CONTAINERD"
	EnvCacheDir   = "LEGO_CACHE_DIR"
	// EnvOwner is the pid of the lego that runs the session action, as the
	// host sees it: the action is in a PID namespace of its own, where
	// its own pid means nothing to another process.
	EnvOwner = "LEGO_OWNER_PID"
)

// Property returns the value of the platform property name of a command or
// action (the action's wins), or "".
func Property(req *Request, name string) string {
	for _, p := range req.Action.GetPlatform().GetProperties() {
		if p.Name == name {
			return p.Value
		}
	}
	for _, p := range req.Command.GetPlatform().GetProperties() {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Executor runs actions. Implementations are safe for concurrent use.
type Executor interface {
	// Execute runs the action. A non-zero exit is NOT an error: it is
	// reported in ActionResult.ExitCode, with stdout/stderr stored in the
	// CAS (StdoutDigest/StderrDigest). An error means the action could not
	// be run or broke the sandbox's rules (missing declared output,
	// undeclared output, modified input, cancelled, timeout).
	//
	// When the process did run, the result returned alongside an error may
	// be non-nil and carry ExitCode and the log digests so that failure
	// reports can show them; such a result must never be cached.
	Execute(ctx context.Context, req *Request) (*repb.ActionResult, error)
}

// Capabilities are what a build's executor does besides running
// actions. They are stated where the executor is composed
// (executors/stack), so that the engine finds nothing by type assertion.
type Capabilities struct {
	// Reserve takes the scarce devices (GPUs) req needs and records them
	// in req; the engine calls it before admitting the action for CPU and
	// memory, so that an action waiting for devices holds nothing else.
	// nil: the executor hands out no devices.
	Reserve func(ctx context.Context, req *Request) (release func(), err error)
	// Remote tells whether req runs on another machine (REAPI Execute).
	// Such an action's inputs need not be in the local store, and its
	// outputs stay on the server: the executor fetches only their trees
	// (and the logs of a failure). nil: every action runs here.
	Remote func(req *Request) bool
}

// ErrTimeout is wrapped by the error of an action killed for exceeding
// Action.Timeout, so callers can tell it from other failures.
var ErrTimeout = errors.New("action timed out")

// BlobGetter is the part of a CAS that Tail needs; cas.Disk satisfies it.
type BlobGetter interface {
	Get(d *repb.Digest) ([]byte, error)
}

// Tail returns the last n lines of a blob (for failure reports), without
// the final newline. A nil or empty digest gives "".
func Tail(s BlobGetter, d *repb.Digest, n int) (string, error) {
	if d == nil || d.GetSizeBytes() == 0 || n <= 0 {
		return "", nil
	}
	b, err := s.Get(d)
	if err != nil {
		return "", err
	}
	return string(tailLines(b, n)), nil
}

func tailLines(b []byte, n int) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	i := len(b)
	for ; n > 0; n-- {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return b
		}
		i = j
	}
	return b[i+1:]
}

// FormatSize renders a byte count for people: "64 MiB", "1.5 GiB".
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// GPUUsage is what a GPU action cost, carried in its result's
// ExecutionMetadata.AuxiliaryMetadata (the GPU executor writes it).
type GPUUsage struct {
	Devices    []string // UUIDs
	GPUSeconds float64
	PeakMemory int64 // bytes, summed over the devices, as NVML saw it
}

const gpuUsageKind = "lego.gpu_usage"

// Marshal encodes u for AuxiliaryMetadata.
func (u GPUUsage) Marshal() (*anypb.Any, error) {
	devs := make([]any, len(u.Devices))
	for i, d := range u.Devices {
		devs[i] = d
	}
	st, err := structpb.NewStruct(map[string]any{
		"kind": gpuUsageKind, "devices": devs, "gpu_seconds": u.GPUSeconds, "peak_memory_bytes": float64(u.PeakMemory),
	})
	if err != nil {
		return nil, err
	}
	return anypb.New(st)
}

// GPUUsageOf reads the GPU usage an action result carries, if any.
func GPUUsageOf(res *repb.ActionResult) (GPUUsage, bool) {
	for _, a := range res.GetExecutionMetadata().GetAuxiliaryMetadata() {
		st := &structpb.Struct{}
		if a.UnmarshalTo(st) != nil {
			continue
		}
		m := st.AsMap()
		if m["kind"] != gpuUsageKind {
			continue
		}
		var u GPUUsage
		if devs, ok := m["devices"].([]any); ok {
			for _, d := range devs {
				if s, ok := d.(string); ok {
					u.Devices = append(u.Devices, s)
				}
			}
		}
		u.GPUSeconds, _ = m["gpu_seconds"].(float64)
		if p, ok := m["peak_memory_bytes"].(float64); ok {
			u.PeakMemory = int64(p)
		}
		return u, true
	}
	return GPUUsage{}, false
}
