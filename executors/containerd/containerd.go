// Package containerd runs REAPI actions in containerd containers: the
// action's image (a manifest in the CAS, named by platform property) is
// imported into containerd if missing, the exec root is bind-mounted
// read-only with the outputs' directories writable, and the container,
// task and snapshot are removed afterwards whatever happened.
//
// The exec root is prepared and checked by the local executor; this
// package supplies the local.Runner that starts the container.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/local"
)

// Namespace is the default containerd namespace of everything lego
// creates.
const Namespace = "lego"

// DefaultAddress is containerd's usual socket.
const DefaultAddress = "/run/containerd/containerd.sock"

// Snapshotter is the snapshotter images are unpacked with.
const Snapshotter = "overlayfs"

// Paths inside the container.
const (
	ExecRoot = "/lego/exec"
	TmpDir   = "/lego/tmp"
)

// Executor runs actions that name an image in containers.
type Executor struct {
	*local.Executor
	r *runner
}

// Options configure an Executor.
type Options struct {
	Address   string            // containerd socket; "" = DefaultAddress
	Namespace string            // "" = Namespace
	ExtraEnv  map[string]string // as local.Options.ExtraEnv
}

// New connects to containerd. The error says how to start containerd when
// it is not reachable.
func New(ctx context.Context, store *cas.Disk, o Options) (*Executor, error) {
	addr := o.Address
	if addr == "" {
		addr = DefaultAddress
	}
	ns := o.Namespace
	if ns == "" {
		ns = Namespace
	}
	r := &runner{store: store, addr: addr, ns: ns, imports: map[string]*importOnce{}}
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	return &Executor{
		Executor: local.New(store, local.Options{ExtraEnv: o.ExtraEnv, Runner: r, Worker: "containerd"}),
		r:        r,
	}, nil
}

// Close closes the connection to containerd.
func (e *Executor) Close() error { return e.r.client.Close() }

// Client is the containerd client (for tests and tools).
func (e *Executor) Client() *ctrd.Client { return e.r.client }

// Execute runs an action that names an image; one that does not is an
// error (it has no root filesystem to run in).
func (e *Executor) Execute(ctx context.Context, req *executors.Request) (*repb.ActionResult, error) {
	if req == nil || req.Action == nil || req.Command == nil {
		return nil, errors.New("containerd executor: request needs an Action and a Command")
	}
	if executors.Property(req, executors.PropImage) == "" {
		return nil, errors.New("containerd executor: the action names no image")
	}
	return e.Executor.Execute(ctx, req)
}

// NotReachable explains how to get a containerd to talk to.
func NotReachable(addr string, err error) error {
	return fmt.Errorf("containerd is not reachable at %s (%v): install it with `apt-get install containerd runc` and start it "+
		"(`containerd &`, or `containerd --address SOCKET --root DIR --state DIR &` for a private one, then --containerd_address=SOCKET)", addr, err)
}

type runner struct {
	store   *cas.Disk
	addr    string
	ns      string
	client  *ctrd.Client
	seq     atomic.Int64
	mu      sync.Mutex
	imports map[string]*importOnce // manifest digest -> import
}

func (r *runner) connect(ctx context.Context) error {
	if _, err := os.Stat(r.addr); err != nil {
		return NotReachable(r.addr, err)
	}
	c, err := ctrd.New(r.addr, ctrd.WithDefaultNamespace(r.ns), ctrd.WithTimeout(5*time.Second))
	if err != nil {
		return NotReachable(r.addr, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Version(cctx); err != nil {
		c.Close()
		return NotReachable(r.addr, err)
	}
	r.client = c
	if _, sandboxed := os.LookupEnv(executors.EnvOwner); !sandboxed {
		// In a session action's PID namespace, no pid on a label is
		// one this process can check.
		r.sweep(namespaces.WithNamespace(ctx, r.ns))
	}
	return nil
}

// owner is the pid containers are labelled with: this process's, or, in
// a session action, the lego's that runs it (which the sandbox dies with).
func owner() string {
	if v := os.Getenv(executors.EnvOwner); v != "" {
		return v
	}
	return strconv.Itoa(os.Getpid())
}

// Labels on every container lego creates: the owning process, so that a
// later lego can remove what a killed one left behind.
const (
	labelPID  = "lego.pid"
	labelBoot = "lego.boot" // boot id: a pid from an earlier boot is no owner
)

// sweep deletes containers (with their tasks and snapshots) left by lego
// processes that no longer run, e.g. after a SIGKILL.
func (r *runner) sweep(ctx context.Context) {
	cs, err := r.client.Containers(ctx, "labels."+strconv.Quote(labelPID))
	if err != nil {
		return
	}
	boot := bootID()
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(labels[labelPID])
		if labels[labelBoot] == boot && pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its owner still runs
		}
		r.remove(ctx, c)
	}
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return string(b)
}

// writableDirs are the exec-root-relative directories mounted writable:
// the parents of the outputs, without those inside another. "" is the
// exec root itself.
func writableDirs(outputs []string) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, o := range outputs {
		d := path.Dir(o)
		if d == "." {
			d = ""
		}
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	// Shorter first, so that a dir's ancestors are already in out.
	sort.Slice(dirs, func(i, j int) bool {
		if len(dirs[i]) != len(dirs[j]) {
			return len(dirs[i]) < len(dirs[j])
		}
		return dirs[i] < dirs[j]
	})
	var out []string
next:
	for _, d := range dirs {
		for _, o := range out {
			if within(d, o) {
				continue next
			}
		}
		out = append(out, d)
	}
	sort.Strings(out) // parents before children is all mounting needs
	return out
}

// within tells whether d equals dir or lies below it.
func within(d, dir string) bool {
	return dir == "" || d == dir || len(d) > len(dir) && d[:len(dir)] == dir && d[len(dir)] == '/'
}
