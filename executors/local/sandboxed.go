package local

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	ns "github.com/legobuild/lego/executors/sandbox"
)

// sandboxRunner runs the process in a namespace sandbox that shows it the
// exec root (read-only but for the directories its outputs go in), its
// TMPDIR as /tmp, and the host's system directories read-only.
type sandboxRunner struct{ store *cas.Disk }

func (r *sandboxRunner) Run(ctx context.Context, p *Process) (*Outcome, error) {
	// The directory the sandbox's root is mounted on, in the sandbox's
	// own mount namespace; on the host it stays empty.
	mnt, err := r.store.TempDir("root-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(mnt)
	if err := ns.Check(mnt); err != nil {
		return nil, fmt.Errorf("%w\nlocal actions run in a Linux namespace sandbox, which this machine does not allow; pass --sandbox=none to run them unsandboxed (see the README)", err)
	}
	req := p.Request
	argv0, cwd, err := p.resolve()
	if err != nil {
		return nil, err
	}
	binds, err := r.prepare(p)
	if err != nil {
		return nil, err
	}
	// A session action is lego's own rollout tool: it drives containerd
	// (as root, through its socket), mounts snapshots from containerd's
	// own root and writes images' layers to the store, so it sees the
	// host's files; what the agent runs is in containers.
	session := executors.Property(req, executors.PropSession) == "containerd"
	asRoot := executors.Property(req, executors.PropAsRoot) == "true"
	if _, err := os.Stat("/etc/apt"); err == nil && asRoot {
		// debootstrap reads the machine's mirror from its apt sources.
		binds = append(binds, ns.Bind{Path: "/etc/apt"})
	}
	spec := &ns.Spec{
		Path:         argv0,
		Args:         req.Command.Arguments,
		Env:          p.Env,
		Dir:          cwd,
		Binds:        binds,
		Tmp:          p.Tmp,
		Network:      executors.Property(req, executors.PropNetwork) == "true",
		Root:         mnt,
		KeepIdentity: session || asRoot,
		KeepCaps:     session || asRoot,
		HostRoot:     session,
	}
	if n, _ := strconv.Atoi(executors.Property(req, executors.PropGPUs)); n > 0 {
		spec.Devices, _ = filepath.Glob("/dev/nvidia*")
	}
	c, err := ns.Command(spec, nil, p.Stdout, p.Stderr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("starting the sandbox of %s: %w", req.Command.Arguments[0], err)
	}
	out, err := supervise(ctx, c.Cmd, p)
	if err != nil || out.Cancelled != nil || out.TimedOut != nil {
		return out, err
	}
	if err := c.Err(); err != nil {
		// The sandbox's failure is not the action's answer.
		return nil, executors.Infra(executors.ClassRuntime, err)
	}
	return out, nil
}

// prepare opens the exec root to the sandboxed process and returns what
// the sandbox binds: the exec root read-only, over it the directories
// that receive outputs writable, and TMPDIR. As root, the process runs as
// an unprivileged uid: those directories become sticky and world-writable
// (it may add files but not remove or replace the inputs beside them,
// which are root's), and the inputs, the store's read-only blobs, stay
// out of its reach.
func (r *sandboxRunner) prepare(p *Process) ([]ns.Bind, error) {
	asRoot := os.Geteuid() == 0
	binds := []ns.Bind{{Path: p.Root}, {Path: p.Tmp, Writable: true}}
	if asRoot {
		if err := os.Chmod(p.Root, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(p.Tmp, 0o1777); err != nil {
			return nil, err
		}
	}
	if hp := executors.Property(p.Request, executors.PropHostPaths); hp != "" {
		for _, h := range strings.Split(hp, ":") {
			binds = append(binds, ns.Bind{Path: h})
		}
	}
	seen := map[string]bool{}
	for _, o := range p.Outputs {
		dir := path.Dir(o)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		abs := filepath.Join(p.Root, dir)
		if asRoot {
			if err := os.Chmod(abs, 0o1777); err != nil {
				return nil, err
			}
		}
		binds = append(binds, ns.Bind{Path: abs, Writable: true})
	}
	return binds, nil
}
