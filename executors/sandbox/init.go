package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sandbox's init is this binary started as initArg0 in the new
// namespaces; it never returns to the program that linked the package.
func init() {
	if len(os.Args) == 1 && os.Args[0] == initArg0 {
		os.Exit(initMain())
	}
}

func initMain() int {
	// Neither file may reach the process: it could forge a report.
	unix.CloseOnExec(3)
	unix.CloseOnExec(4)
	report := os.NewFile(4, "report")
	fail := func(err error) int {
		fmt.Fprint(report, err)
		return setupFailed
	}
	b, err := io.ReadAll(io.NewSectionReader(os.NewFile(3, "spec"), 0, 1<<30))
	if err != nil {
		return fail(fmt.Errorf("reading the spec: %w", err))
	}
	var spec Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fail(fmt.Errorf("reading the spec: %w", err))
	}
	userNS := spec.UserNS || os.Geteuid() != 0 || isUserNS()
	if err := setup(&spec, userNS, spec.KeepIdentity && spec.KeepCaps); err != nil {
		return fail(err)
	}
	c := &exec.Cmd{Path: spec.Path, Args: spec.Args, Env: spec.Env, Dir: spec.Dir,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	if c.Env == nil {
		c.Env = []string{}
	}
	if !userNS && !spec.KeepIdentity {
		c.SysProcAttr.Credential = &syscall.Credential{Uid: UID, Gid: GID, Groups: []uint32{}}
	}
	if err := c.Start(); err != nil {
		return fail(fmt.Errorf("starting %s: %w", spec.Path, err))
	}
	// Reap everything (orphans are reparented to us) until the process
	// itself exits; the kernel kills the rest when we return.
	pid := c.Process.Pid
	for {
		var ws unix.WaitStatus
		w, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("waiting for %s: %w", spec.Path, err))
		}
		if w != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()) // as shells report it
		}
		return ws.ExitStatus()
	}
}

// isUserNS tells whether this process is already in a user namespace
// other than the initial one (lego itself sandboxed): then it cannot
// switch to UID and keeps the caller's identity.
func isUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// setup builds the sandbox's root on spec.Root and moves into it.
func setup(spec *Spec, userNS, keepCaps bool) error {
	// Nothing mounted from here on may propagate to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if spec.HostRoot {
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting /proc: %w", err)
		}
		return finish(spec, keepCaps)
	}
	root := spec.Root
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mounting the root on %s: %w", root, err)
	}
	for _, d := range systemDirs {
		if err := showSystem(root, d); err != nil {
			return err
		}
	}
	if err := makeEtc(root, userNS || spec.KeepIdentity); err != nil {
		return err
	}
	if err := makeDev(root, spec.Devices); err != nil {
		return err
	}
	if err := os.Mkdir(root+"/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", root+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := os.Mkdir(root+"/tmp", 0o1777); err != nil {
		return err
	}
	if spec.Tmp != "" {
		if err := bind(spec.Tmp, root+"/tmp", true); err != nil {
			return err
		}
	} else if err := unix.Mount("tmpfs", root+"/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	for _, b := range sortedBinds(spec.Binds) {
		if !filepath.IsAbs(b.Path) {
			return fmt.Errorf("bind %q: not an absolute path", b.Path)
		}
		if err := mountPoint(b.Path, root+b.Path); err != nil {
			return err
		}
		if err := bind(b.Path, root+b.Path, b.Writable); err != nil {
			return err
		}
	}

	// pivot_root(".", ".") stacks the old root under the new one; the
	// detach unmounts it, so no path leads back to the host.
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	return finish(spec, keepCaps)
}

// finish sets what every sandbox has besides its files.
func finish(spec *Spec, keepCaps bool) error {
	if err := unix.Sethostname([]byte("lego")); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if !spec.Network {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	// No setuid binary, file capability or capability left in the
	// bounding set can give the process more than it starts with.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	for c := 0; !keepCaps; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the last capability
			}
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	return nil
}

// showSystem shows the host's system directory d read-only, or its
// symlink as is (merged /usr: /bin -> usr/bin).
func showSystem(root, d string) error {
	fi, err := os.Lstat(d)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		t, err := os.Readlink(d)
		if err != nil {
			return err
		}
		return os.Symlink(t, root+d)
	}
	if err := os.MkdirAll(root+d, 0o755); err != nil {
		return err
	}
	return bind(d, root+d, false)
}

// makeEtc writes a minimal /etc: the listed host entries read-only, and
// identity files naming only the sandbox's users.
func makeEtc(root string, userNS bool) error {
	etc := root + "/etc"
	if err := os.Mkdir(etc, 0o755); err != nil {
		return err
	}
	for _, name := range etcEntries {
		src := "/etc/" + name
		if _, err := os.Stat(src); err != nil {
			continue // absent, or a dangling link (resolv.conf to /run)
		}
		if err := mountPoint(src, etc+"/"+name); err != nil {
			return err
		}
		if err := bind(src, etc+"/"+name, false); err != nil {
			return err
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\n"
	group := "root:x:0:\n"
	if !userNS {
		passwd += fmt.Sprintf("nobody:x:%d:%d:nobody:/nonexistent:/usr/sbin/nologin\n", UID, GID)
		group += fmt.Sprintf("nogroup:x:%d:\n", GID)
	}
	files := map[string]string{
		"passwd":   passwd,
		"group":    group,
		"hostname": "lego\n",
		"hosts":    "127.0.0.1\tlocalhost lego\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	}
	for name, text := range files {
		if err := os.WriteFile(etc+"/"+name, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeDev shows the standard device nodes and extra ones (GPUs) by bind
// mounts: a tmpfs made in a user namespace could not hold device nodes.
func makeDev(root string, extra []string) error {
	dev := root + "/dev"
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	nodes := make([]string, 0, len(devices)+len(extra))
	for _, d := range devices {
		nodes = append(nodes, "/dev/"+d)
	}
	nodes = append(nodes, extra...)
	for _, n := range nodes {
		if _, err := os.Stat(n); err != nil {
			continue
		}
		if !strings.HasPrefix(n, "/dev/") {
			return fmt.Errorf("device %q: not under /dev", n)
		}
		if err := mountPoint(n, root+n); err != nil {
			return err
		}
		if err := bind(n, root+n, true); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dev+"/shm", 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev+"/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting /dev/shm: %w", err)
	}
	return nil
}

// mountPoint creates, inside the new root, what src will be bound on: a
// directory or an empty file, with its parents.
func mountPoint(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	return f.Close()
}

// bind mounts src on dst, read-only unless writable. The read-only
// remount keeps the flags the source has: in a user namespace they are
// locked, and a remount that dropped one would be refused.
func bind(src, dst string, writable bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	const kept = unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_NOATIME | unix.ST_NODIRATIME | unix.ST_RELATIME
	flags := uintptr(st.Flags)&kept | unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remounting %s: %w", src, err)
	}
	return nil
}

// loopbackUp brings up lo in the sandbox's new network namespace: the
// process may talk to itself, and to nothing else.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	return nil
}
