package containerd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/contrib/nvidia"
	"github.com/containerd/containerd/diff"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/rootfs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/local"
)

// cleanupTimeout bounds the removal of a container after the action: it
// runs on a context that survives the build's cancellation (Ctrl-C).
const cleanupTimeout = 30 * time.Second

func (r *runner) Run(ctx context.Context, p *local.Process) (*local.Outcome, error) {
	ctx = namespaces.WithNamespace(ctx, r.ns)
	req := p.Request
	manifest := executors.Property(req, executors.PropImage)
	size, err := strconv.ParseInt(executors.Property(req, executors.PropImageSize), 10, 64)
	if manifest == "" || err != nil {
		return nil, fmt.Errorf("containerd executor: the action needs %s and %s", executors.PropImage, executors.PropImageSize)
	}
	img, err := r.image(ctx, manifest, size)
	if err != nil {
		if ctx.Err() != nil {
			return &local.Outcome{Cancelled: fmt.Errorf("action cancelled: %w", ctx.Err())}, nil
		}
		return nil, executors.Infra(executors.ClassRuntime, err)
	}

	id := fmt.Sprintf("lego-%d-%d", os.Getpid(), r.seq.Add(1))
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(req.Command.Arguments...),
		oci.WithProcessCwd(path.Join(ExecRoot, p.WorkDir)),
		oci.WithEnv(containerEnv(p.Env)),
		oci.WithMounts(mounts(p)),
	}
	if executors.Property(req, executors.PropNetwork) == "true" {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	}
	if len(req.Devices) > 0 {
		// The device nodes and driver libraries come from
		// nvidia-container-cli, run as a prestart hook.
		opts = append(opts, nvidia.WithGPUs(nvidia.WithDeviceUUIDs(req.Devices...), nvidia.WithAllCapabilities))
	}
	if m := req.Limits.Memory; m > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(m)), oci.WithMemorySwap(m))
	}
	if c := req.Limits.CPU; c > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(int64(c*period), period))
	}
	labels := map[string]string{labelPID: owner(), labelBoot: bootID()}

	// Cleanup runs on contexts that survive the build's cancellation, each
	// step bounded from when it starts (an action may run for hours).
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	}
	cleanup, cancel := cleanupCtx()
	defer cancel()
	c, err := r.client.NewContainer(ctx, id, ctrd.WithNewSnapshot(id, img), ctrd.WithNewSpec(opts...), ctrd.WithContainerLabels(labels))
	if err != nil {
		return r.startFailed(ctx, "creating container", err)
	}
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		r.remove(cctx, c)
	}()

	fifos, err := r.store.TempDir("fifo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(fifos)
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, p.Stdout, p.Stderr), cio.WithFIFODir(fifos)))
	if err != nil {
		return r.startFailed(ctx, "creating task", err)
	}
	// Waiting on a context the build's cancellation does not end: after a
	// kill the exit status must still arrive.
	waitCtx, stopWait := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWait()
	exitCh, err := task.Wait(waitCtx)
	if err != nil {
		return nil, executors.Infra(executors.ClassRuntime, fmt.Errorf("waiting for the container: %w", err))
	}
	var timer <-chan time.Time
	var timeout time.Duration
	if t := req.Action.Timeout; t != nil && t.AsDuration() > 0 {
		timeout = t.AsDuration()
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		timer = tm.C
	}
	if err := task.Start(ctx); err != nil {
		return r.startFailed(ctx, "starting task", err)
	}

	out := &local.Outcome{}
	var status ctrd.ExitStatus
	select {
	case status = <-exitCh:
	case <-ctx.Done():
		out.Cancelled = fmt.Errorf("action cancelled: %w", ctx.Err())
	case <-timer:
		out.TimedOut = fmt.Errorf("%w after %v", executors.ErrTimeout, timeout)
	}
	cleanup, cancel = cleanupCtx()
	defer cancel()
	if out.Cancelled != nil || out.TimedOut != nil {
		_ = task.Kill(cleanup, syscall.SIGKILL, ctrd.WithKillAll)
		select {
		case status = <-exitCh:
		case <-cleanup.Done():
			return nil, executors.Infra(executors.ClassRuntime, fmt.Errorf("the container did not stop within %v of being killed", cleanupTimeout))
		}
	}
	code, _, err := status.Result()
	if err != nil {
		return nil, executors.Infra(executors.ClassRuntime, fmt.Errorf("waiting for the container: %w", err))
	}
	out.ExitCode = int32(code)
	if out.Cancelled == nil && out.TimedOut == nil && req.Limits.Memory > 0 && oomKilled(cleanup, c) {
		out.Err = executors.Infra(executors.ClassOOM, fmt.Errorf("OOM-killed: the action exceeded its memory limit of %s", executors.FormatSize(req.Limits.Memory)))
	}
	// Deleting the task waits for the log copies to finish and unmounts
	// the rootfs, which the layer diff below needs.
	if _, err := task.Delete(cleanup); err != nil {
		return nil, executors.Infra(executors.ClassRuntime, fmt.Errorf("deleting task: %w", err))
	}
	if lo := executors.Property(req, executors.PropLayerOutput); lo != "" && out.ExitCode == 0 && out.Err == nil &&
		out.Cancelled == nil && out.TimedOut == nil {
		if err := r.writeDiff(ctx, id, filepath.Join(p.Root, filepath.FromSlash(lo))); err != nil {
			return nil, fmt.Errorf("storing the filesystem changes as a layer: %w", err)
		}
	}
	return out, nil
}

// startFailed reports a failure to start the container: a cancellation
// when the build is being cancelled, the runtime's failure otherwise.
func (r *runner) startFailed(ctx context.Context, what string, err error) (*local.Outcome, error) {
	if ctx.Err() != nil {
		return &local.Outcome{Cancelled: fmt.Errorf("action cancelled: %w", ctx.Err())}, nil
	}
	return nil, executors.Infra(executors.ClassRuntime, fmt.Errorf("%s: %w", what, err))
}

// containerEnv is the action's environment with TMPDIR moved to the
// container's scratch mount; it replaces the image's variables of the
// same names and keeps the others.
func containerEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "TMPDIR="+TmpDir)
}

// mounts puts the exec root read-only at ExecRoot, the outputs'
// directories writable over it, and the scratch dir at TmpDir.
func mounts(p *local.Process) []specs.Mount {
	ro := "ro"
	dirs := writableDirs(p.Outputs)
	if len(dirs) > 0 && dirs[0] == "" {
		ro, dirs = "rw", dirs[1:]
	}
	ms := []specs.Mount{{Destination: ExecRoot, Type: "bind", Source: p.Root, Options: []string{"rbind", ro}}}
	for _, d := range dirs {
		ms = append(ms, specs.Mount{Destination: path.Join(ExecRoot, d), Type: "bind",
			Source: filepath.Join(p.Root, filepath.FromSlash(d)), Options: []string{"rbind", "rw"}})
	}
	return append(ms, specs.Mount{Destination: TmpDir, Type: "bind", Source: p.Tmp, Options: []string{"rbind", "rw"}})
}

// oomKilled reads the container's memory cgroup (v1 or v2) for an OOM
// kill. The cgroup lives until the task is deleted.
func oomKilled(ctx context.Context, c ctrd.Container) bool {
	spec, err := c.Spec(ctx)
	if err != nil || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return false
	}
	cg := spec.Linux.CgroupsPath
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup", cg, "memory.events"),             // v2
		filepath.Join("/sys/fs/cgroup/memory", cg, "memory.oom_control"), // v1
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok && strings.TrimSpace(n) != "0" {
				return true
			}
		}
		return false
	}
	return false
}

// writeDiff stores the changes the container made to its root filesystem
// (containerd's snapshot diff, an uncompressed layer tar) at dst.
func (r *runner) writeDiff(ctx context.Context, id, dst string) error {
	ctx, done, err := r.client.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(context.WithoutCancel(ctx))
	desc, err := rootfs.CreateDiff(ctx, id, r.client.SnapshotService(Snapshotter), r.client.DiffService(),
		diff.WithMediaType(ocispec.MediaTypeImageLayer), diff.WithReference("lego-diff-"+id))
	if err != nil {
		return err
	}
	// No explicit delete: two actions making the same changes get the same
	// digest, and one must not remove it under the other. The lease keeps
	// it while this one reads; containerd's collector takes it after.
	cs := r.client.ContentStore()
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return err
	}
	defer ra.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, content.NewReader(ra))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// remove deletes a container with its task and snapshot.
func (r *runner) remove(ctx context.Context, c ctrd.Container) {
	if t, err := c.Task(ctx, nil); err == nil {
		_, _ = t.Delete(ctx, ctrd.WithProcessKill)
	}
	_ = c.Delete(ctx, ctrd.WithSnapshotCleanup)
}
