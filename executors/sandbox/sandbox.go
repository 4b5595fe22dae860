// Package sandbox runs a process in Linux namespaces, with the semantics
// of Bazel's linux-sandbox: new mount, PID, IPC and UTS namespaces, a new
// network namespace with only loopback unless asked otherwise, and a root
// that shows nothing of the host but its system directories (read-only),
// a minimal /etc, a private /tmp and the paths the caller binds in.
//
// It is built natively rather than on bubblewrap: lego re-executes itself
// (/proc/self/exe) as the sandbox's init, which sets up the mounts, starts
// the process and reaps what it leaves. That needs no binary outside
// lego's own (nothing to find, version or key), and the init is pid 1 of
// the sandbox, so every process of an action dies when it exits or when
// lego dies (PR_SET_PDEATHSIG on the init).
//
// As root, the process runs as an unprivileged uid (UID), so that it
// cannot write or chmod the store's read-only, root-owned blobs that its
// inputs are hardlinks of. Otherwise (or with Spec.UserNS) a user
// namespace maps the caller to root inside, with no capabilities left.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Bind is a host path shown inside the sandbox at the same path.
type Bind struct {
	Path     string
	Writable bool
}

// Spec is one sandboxed process.
type Spec struct {
	Path string   // the executable, a path visible inside
	Args []string // argv, Args[0] included
	Env  []string // the exact environment
	Dir  string   // working directory, a path visible inside
	// Binds are shown at their own paths; the parents of a bind come first
	// whatever the order given.
	Binds []Bind
	// Tmp is a host directory shown as /tmp; "" gives a private tmpfs.
	Tmp string
	// Network shares the host's network namespace; otherwise the sandbox
	// has its own, with loopback only.
	Network bool
	// UserNS runs the process in a user namespace even when lego is root
	// (a root inside mapped to the caller, with no capabilities): for
	// commands whose files are the caller's, like an agent's in a copy of
	// a repository.
	UserNS bool
	// KeepIdentity, as root, runs the process as root (with no
	// capabilities) rather than as UID: for lego's own tools that must
	// reach root's files, like a session action's containerd socket.
	KeepIdentity bool
	// HostRoot shows the host's whole filesystem, keeping the other
	// namespaces (and a /proc of the sandbox's own): for lego's own session
	// tool, which drives containerd, mounts its snapshots, and runs nothing
	// of the user's on the host (the agent's commands run in containers).
	HostRoot bool
	// KeepCaps, with KeepIdentity, leaves root its capabilities: for
	// lego's own debootstrap (chroot, device nodes, chown to any uid).
	KeepCaps bool
	// Devices are device nodes shown in addition to the standard ones
	// (null, zero, full, random, urandom, tty): GPUs.
	Devices []string
	// Root is an empty directory the sandbox's root is mounted on, in the
	// sandbox's own mount namespace, so one directory serves any number of
	// sandboxes at once. It must be given: the caller knows when it can go.
	Root string
}

// UID and GID are the identity a sandboxed process has when lego runs as
// root: nobody's, which owns no file lego makes.
const (
	UID = 65534
	GID = 65534
)

// The host paths every sandbox shows read-only. They are part of the
// platform in the action key (Platform): a change here changes what an
// action could read.
var (
	systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}
	// Only what programs need to start, resolve names and check TLS; no
	// passwd, shadow, machine-id or user configuration. passwd, group,
	// hosts and hostname are written fresh.
	etcEntries = []string{"alternatives", "ca-certificates", "ca-certificates.conf", "gai.conf",
		"host.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types",
		"nsswitch.conf", "protocols", "resolv.conf", "services", "ssl", "timezone"}
	devices = []string{"null", "zero", "full", "random", "urandom", "tty"}
)

// Platform describes what a sandbox shows of the host, for action keys.
func Platform() string {
	return "linux-namespaces/1 ro=" + strings.Join(systemDirs, ",") + ",/etc/{" + strings.Join(etcEntries, ",") + "}"
}

// initArg0 is how lego knows, at start-up, that it is a sandbox's init.
const initArg0 = "lego-sandbox-init"

// setupFailed is the init's exit code when it could not start the
// process; the reason is in the report file.
const setupFailed = 125

// Cmd is a started or startable sandbox.
type Cmd struct {
	*exec.Cmd
	spec, report *os.File
}

// Command returns the command that runs spec in a sandbox. Stdio is
// passed through as with exec.Cmd; the caller starts it, waits for it and
// then calls Err, and Close in any case.
func Command(spec *Spec, stdin io.Reader, stdout, stderr io.Writer) (*Cmd, error) {
	// Memory files, not pipes: the spec has no size limit and needs no
	// writer goroutine; the init's report is read after it exited.
	specF, err := memfd("sandbox-spec")
	if err != nil {
		return nil, err
	}
	report, err := memfd("sandbox-report")
	if err != nil {
		specF.Close()
		return nil, err
	}
	c := &Cmd{spec: specF, report: report}
	if spec.Root == "" {
		c.Close()
		return nil, errors.New("sandbox: no directory to mount the root on")
	}
	b, err := json.Marshal(spec)
	if err == nil {
		_, err = specF.Write(b)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
		// The init is pid 1: when it dies, every process of the sandbox
		// dies; it dies with lego.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if !spec.Network {
		attr.Cloneflags |= unix.CLONE_NEWNET
	}
	if spec.UserNS || os.Geteuid() != 0 {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	c.Cmd = &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{initArg0},
		// Nothing of lego's environment (model keys) reaches the init,
		// whose /proc entry the process may be able to read.
		Env:         []string{},
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		ExtraFiles:  []*os.File{specF, report},
		SysProcAttr: attr,
	}
	return c, nil
}

// Err returns the sandbox's own failure (it could not be set up or could
// not start the process) once the command has exited; nil means the exit
// status is the process's.
func (c *Cmd) Err() error {
	st, err := c.report.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		// Whatever the exit code (125 included), it is the process's.
		return nil
	}
	b := make([]byte, min(st.Size(), 4096))
	n, _ := c.report.ReadAt(b, 0)
	return errors.New("sandbox: " + strings.TrimSpace(string(b[:n])))
}

// Close releases the command's files.
func (c *Cmd) Close() {
	c.spec.Close()
	c.report.Close()
}

func memfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

var (
	checkOnce sync.Once
	checkErr  error
)

// Check reports, once per process, whether sandboxes can be made here: it
// runs /bin/true in one, mounted on root (as Spec.Root).
func Check(root string) error {
	checkOnce.Do(func() {
		c, err := Command(&Spec{Path: "/bin/true", Args: []string{"true"}, Dir: "/", Root: root}, nil, nil, nil)
		if err != nil {
			checkErr = err
			return
		}
		defer c.Close()
		var out strings.Builder
		c.Stderr = &out
		runErr := c.Run()
		if err := c.Err(); err != nil {
			checkErr = err
		} else if runErr != nil {
			checkErr = fmt.Errorf("sandbox: %v %s", runErr, strings.TrimSpace(out.String()))
		}
	})
	return checkErr
}

// sortedBinds orders binds so that a parent is mounted before the paths
// inside it.
func sortedBinds(bs []Bind) []Bind {
	out := append([]Bind(nil), bs...)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Path) < len(out[j].Path) })
	return out
}
