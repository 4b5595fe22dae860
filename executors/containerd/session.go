package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// SessionOptions say which image a session runs and how.
type SessionOptions struct {
	Address   string // containerd socket; "" = DefaultAddress
	Namespace string // "" = Namespace
	Store     *cas.Disk
	Manifest  string // the image's manifest digest, its blobs in Store
	Size      int64  // the manifest's size
	Workdir   string // where commands run
	Env       []string
	Network   bool
}

// ioDrain bounds the wait for a command's output after it exits.
const ioDrain = 5 * time.Second

// Session is one long-lived container of an image into which commands are
// exec'd one after another (an agent's rollout: one container per
// rollout, not one per command). Close removes it.
type Session struct {
	r       *runner
	ctx     context.Context // holds the namespace
	c       ctrd.Container
	task    ctrd.Task
	workdir string
	env     []string
	fifos   string
	seq     int
	mu      sync.Mutex
}

// OpenSession starts a container of the image that idles until Close.
func OpenSession(ctx context.Context, o SessionOptions) (*Session, error) {
	addr, ns := o.Address, o.Namespace
	if addr == "" {
		addr = DefaultAddress
	}
	if ns == "" {
		ns = Namespace
	}
	r := &runner{store: o.Store, addr: addr, ns: ns, imports: map[string]*importOnce{}}
	if err := r.connect(ctx); err != nil {
		return nil, executors.Infra(executors.ClassRuntime, err)
	}
	ctx = namespaces.WithNamespace(context.WithoutCancel(ctx), ns)
	// Python writes no bytecode, as in actions (engine.ActionEnv): an
	// agent's same-size edit within the second a .pyc was written would
	// otherwise run the stale code, and a test's outcome would depend on
	// timing.
	env := append([]string{"PYTHONDONTWRITEBYTECODE=1"}, o.Env...)
	s := &Session{r: r, ctx: ctx, workdir: o.Workdir, env: env}
	if err := s.start(ctx, o); err != nil {
		s.Close()
		return nil, executors.Infra(executors.ClassRuntime, err)
	}
	return s, nil
}

func (s *Session) start(ctx context.Context, o SessionOptions) error {
	img, err := s.r.image(ctx, o.Manifest, o.Size)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("lego-session-%d-%d", os.Getpid(), time.Now().UnixNano())
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		// The container's own process only keeps it alive.
		oci.WithProcessArgs("sleep", "infinity"),
		oci.WithProcessCwd("/"),
	}
	if o.Network {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	}
	labels := map[string]string{labelPID: owner(), labelBoot: bootID()}
	c, err := s.r.client.NewContainer(ctx, id, ctrd.WithNewSnapshot(id, img), ctrd.WithNewSpec(opts...), ctrd.WithContainerLabels(labels))
	if err != nil {
		return fmt.Errorf("creating the session's container: %w", err)
	}
	s.c = c
	if s.fifos, err = os.MkdirTemp("", "lego-session-"); err != nil {
		return err
	}
	t, err := c.NewTask(ctx, cio.NewCreator(cio.WithFIFODir(s.fifos)))
	if err != nil {
		return fmt.Errorf("creating the session's task: %w", err)
	}
	s.task = t
	if err := t.Start(ctx); err != nil {
		return fmt.Errorf("starting the session's task: %w", err)
	}
	return nil
}

// Workdir is where commands run.
func (s *Session) Workdir() string { return s.workdir }

// Run execs argv in the container, in Workdir, with stdin; out holds
// stdout and stderr together (two pipes: their relative order is not
// kept). A command still running after timeout is
// killed and the error wraps executors.ErrTimeout; any other error is an
// executors.InfraError of class runtime.
func (s *Session) Run(ctx context.Context, argv []string, stdin []byte, timeout time.Duration) ([]byte, int, error) {
	out, code, err := s.run(ctx, argv, stdin, timeout)
	if err != nil && !errors.Is(err, executors.ErrTimeout) && ctx.Err() == nil {
		// The command did not run, or its end was lost: the runtime's
		// failure, not an outcome of the command.
		err = executors.Infra(executors.ClassRuntime, err)
	}
	return out, code, err
}

func (s *Session) run(ctx context.Context, argv []string, stdin []byte, timeout time.Duration) ([]byte, int, error) {
	s.mu.Lock()
	s.seq++
	execID := fmt.Sprintf("exec-%d", s.seq)
	s.mu.Unlock()
	spec, err := s.c.Spec(s.ctx)
	if err != nil {
		return nil, -1, err
	}
	pspec := *spec.Process
	pspec.Args, pspec.Cwd, pspec.Terminal = argv, s.workdir, false
	pspec.Env = append(append([]string{}, spec.Process.Env...), s.env...)
	var in io.Reader
	if len(stdin) > 0 {
		// The shim does not pass on the end of stdin (and CloseIO could
		// cut it short): the command reads exactly its length.
		pspec.Args = append([]string{"sh", "-c", `head -c "$0" | "$@"`, strconv.Itoa(len(stdin))}, argv...)
		in = bytes.NewReader(stdin)
	}
	var out syncBuffer
	p, err := s.task.Exec(s.ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(in, &out, &out), cio.WithFIFODir(s.fifos)))
	if err != nil {
		return nil, -1, fmt.Errorf("exec in the session: %w", err)
	}
	defer p.Delete(s.ctx, ctrd.WithProcessKill)
	exitCh, err := p.Wait(s.ctx)
	if err != nil {
		return nil, -1, err
	}
	if err := p.Start(s.ctx); err != nil {
		return nil, -1, fmt.Errorf("exec in the session: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var status ctrd.ExitStatus
	var timedOut error
	select {
	case status = <-exitCh:
	case <-timer.C:
		timedOut = fmt.Errorf("%w after %v", executors.ErrTimeout, timeout)
	case <-ctx.Done():
		timedOut = ctx.Err()
	}
	if timedOut != nil {
		// The exec'd process and what it started: the whole container's
		// processes but its init are not ours to keep.
		_ = p.Kill(s.ctx, syscall.SIGKILL)
		_ = s.killChildren()
		status = <-exitCh
	}
	// Delete cancels the output copy: let it drain first. It ends when
	// the process's streams close, which a background job the command
	// left running can delay: wait a little, not for ever.
	drained := make(chan struct{})
	go func() { p.IO().Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(ioDrain):
	}
	if _, err := p.Delete(s.ctx); err != nil && timedOut == nil {
		return out.Bytes(), -1, err
	}
	if timedOut != nil {
		return out.Bytes(), -1, timedOut
	}
	code, _, err := status.Result()
	return out.Bytes(), int(code), err
}

// killChildren kills every process of the container but its idle init,
// so that a timed-out command leaves nothing running.
func (s *Session) killChildren() error {
	pids, err := s.task.Pids(s.ctx)
	if err != nil {
		return err
	}
	for _, p := range pids {
		if int(p.Pid) != int(s.task.Pid()) {
			_ = syscall.Kill(int(p.Pid), syscall.SIGKILL)
		}
	}
	return nil
}

// Close removes the container, its task and snapshot.
func (s *Session) Close() error {
	if s.c != nil {
		cctx, cancel := context.WithTimeout(s.ctx, cleanupTimeout)
		defer cancel()
		s.r.remove(cctx, s.c)
	}
	if s.fifos != "" {
		os.RemoveAll(s.fifos)
	}
	if s.r.client != nil {
		return s.r.client.Close()
	}
	return nil
}

// syncBuffer is a buffer both output streams write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}
