package layout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// DebianOptions says what Debian builds.
type DebianOptions struct {
	Suite    string    // e.g. "bookworm"
	Packages []string  // given to debootstrap --include
	Mirror   string    // e.g. http://deb.debian.org/debian; "" = MirrorFromAptSources("/etc")
	TempDir  string    // where the rootfs is built ("" = os.TempDir()); a real fs allowing device nodes and exec
	Log      io.Writer // debootstrap's output (may be nil)
}

// debianPath is the PATH of Debian's own images.
const debianPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Debian runs `debootstrap --variant=minbase [--include=a,b] SUITE ROOTFS
// MIRROR` (as root), removes what makes a rootfs differ between runs and is
// useless in an image (apt lists and caches, logs, ldconfig's aux-cache,
// dpkg and debconf backups, the host's hostname and resolv.conf, the date in
// /etc/shadow), packs the rootfs into one uncompressed layer and writes a
// single-image layout at out (linux/GOARCH, PATH set, Cmd /bin/bash,
// created = Epoch). The rootfs is removed afterwards, also on error.
func Debian(ctx context.Context, out string, o DebianOptions) (res Result, err error) {
	if o.Suite == "" {
		return Result{}, errors.New("debian: no suite given")
	}
	bin, err := findDebootstrap()
	if err != nil {
		return Result{}, err
	}
	if os.Geteuid() != 0 {
		return Result{}, errors.New("debian: debootstrap must run as root")
	}
	mirror := o.Mirror
	if mirror == "" {
		if mirror, err = MirrorFromAptSources("/etc"); err != nil {
			return Result{}, fmt.Errorf("debian: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(o.TempDir, "lego-debian-")
	if err != nil {
		return Result{}, fmt.Errorf("debian: %w", err)
	}
	defer func() {
		if rerr := removeTree(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("debian: remove rootfs: %w", rerr)
		}
	}()
	rootfs := filepath.Join(tmp, "rootfs")

	args := []string{"--variant=minbase"}
	if len(o.Packages) > 0 {
		args = append(args, "--include="+strings.Join(o.Packages, ","))
	}
	args = append(args, o.Suite, rootfs, mirror)
	if err := runDebootstrap(ctx, bin, args, o.Log); err != nil {
		return Result{}, err
	}
	if err := scrubRootfs(rootfs); err != nil {
		return Result{}, fmt.Errorf("debian: clean rootfs: %w", err)
	}

	res, err = build(out, func() (v1.Image, error) {
		layer, err := spoolLayer(blobsDir(out), func(w io.Writer) error { return writeLayer(w, rootfs) })
		if err != nil {
			return nil, err
		}
		// The mirror is left out of the history: it says where the
		// packages came from, not what they are.
		createdBy := "debootstrap --variant=minbase"
		if len(o.Packages) > 0 {
			createdBy += " --include=" + strings.Join(o.Packages, ",")
		}
		cfg := &v1.ConfigFile{
			Architecture: runtime.GOARCH,
			OS:           "linux",
			Created:      v1.Time{Time: Epoch},
			Config: v1.Config{
				Env: []string{debianPath},
				Cmd: []string{"/bin/bash"},
			},
			History: []v1.History{{Created: v1.Time{Time: Epoch}, CreatedBy: createdBy + " " + o.Suite}},
		}
		return newImageFromConfig(cfg, []v1.Layer{layer})
	})
	if err != nil {
		return Result{}, fmt.Errorf("debian %s: %w", o.Suite, err)
	}
	return res, nil
}

func findDebootstrap() (string, error) {
	if p, err := exec.LookPath("debootstrap"); err == nil {
		return p, nil
	}
	// root's PATH has the sbin directories, a test runner's may not.
	for _, p := range []string{"/usr/sbin/debootstrap", "/sbin/debootstrap"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("debian: debootstrap not found; install it with `apt-get install debootstrap`")
}

func runDebootstrap(ctx context.Context, bin string, args []string, log io.Writer) error {
	tail := &tailWriter{max: 4096}
	var w io.Writer = tail
	if log != nil {
		w = io.MultiWriter(log, tail)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = append(os.Environ(), "PATH="+sbinPath(os.Getenv("PATH")), "DEBIAN_FRONTEND=noninteractive")
	// debootstrap is a shell script running dpkg in a chroot: cancel the
	// whole process group, not just the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("debootstrap %s: %w", strings.Join(args, " "), ctx.Err())
		}
		return fmt.Errorf("debootstrap %s: %w; last output:\n%s", strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// sbinPath is path with the sbin directories debootstrap needs (chroot,
// ldconfig, ...) added when missing.
func sbinPath(path string) string {
	have := map[string]bool{}
	for _, d := range filepath.SplitList(path) {
		have[d] = true
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !have[d] {
			if path != "" {
				path += ":"
			}
			path += d
		}
	}
	return path
}

// tailWriter keeps the last max bytes written, for error messages.
type tailWriter struct {
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return string(t.buf) }

// scrubRootfs removes from a fresh rootfs what differs between two runs of
// debootstrap and is of no use in an image.
func scrubRootfs(root string) error {
	at := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	// Directories whose contents go, the directories themselves stay
	// (apt, dpkg and the logging tools expect them).
	for _, d := range []string{"var/lib/apt/lists", "tmp"} {
		if err := removeContents(at(d)); err != nil {
			return err
		}
	}
	// Only files go here: the directory tree is what the packages own.
	for _, d := range []string{"var/log", "var/cache/apt"} {
		if err := removeFiles(at(d)); err != nil {
			return err
		}
	}
	var remove []string
	for _, pat := range []string{"var/lib/dpkg/*-old", "var/cache/debconf/*-old"} {
		m, err := filepath.Glob(at(pat))
		if err != nil {
			return err
		}
		remove = append(remove, m...)
	}
	remove = append(remove, at("var/cache/ldconfig/aux-cache"), at("etc/machine-id"), at("var/lib/dbus/machine-id"))
	for _, p := range remove {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// debootstrap copies these from the host; runtimes mount their own
	// over them, so they stay, empty.
	for _, p := range []string{"etc/hostname", "etc/resolv.conf"} {
		if err := truncate(at(p)); err != nil {
			return err
		}
	}
	for _, p := range []string{"etc/shadow", "etc/shadow-"} {
		if err := clearShadowDates(at(p)); err != nil {
			return err
		}
	}
	return nil
}

func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func removeFiles(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return os.Remove(p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// truncate empties the file at p if it exists; a symlink (resolv.conf often
// is one) is left alone, as it does not point into the host.
func truncate(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Truncate(p, 0)
}

// clearShadowDates empties the "last password change" field of each
// /etc/shadow entry, which shadow's tools set to the day of the build.
// An empty field turns password aging off, which is right for an image.
func clearShadowDates(p string) error {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) >= 3 {
			f[2] = ""
			lines[i] = strings.Join(f, ":")
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.WriteFile(p, []byte(strings.Join(lines, "\n")), fi.Mode().Perm())
}

// removeTree removes dir, first unmounting anything debootstrap left
// mounted below it (proc, sys, dev/pts when it was killed), so that the
// removal never reaches into those file systems.
func removeTree(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return os.RemoveAll(dir)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	f, err := os.Open("/proc/self/mountinfo")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
