// Package testenv starts the real components that tests need: containerd
// on a private socket, and Debian images made by debootstrap. Nothing here
// is a double: a missing component fails the test with what to install.
package testenv

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	ctrd "github.com/containerd/containerd"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/rules/oci/layout"
)

// EnvContainerd names a containerd socket that the test command started
// (scripts/test.sh); without it, each test binary starts its own.
const EnvContainerd = "LEGO_TEST_CONTAINERD"

// Containerd returns the socket of a running containerd and a function
// that stops it if this call started it.
func Containerd() (addr string, stop func(), err error) {
	if a := os.Getenv(EnvContainerd); a != "" {
		return a, func() {}, ping(a)
	}
	return StartContainerd()
}

// StartContainerd starts containerd with its root, state and socket under
// a new temporary directory, and waits until it answers.
func StartContainerd() (addr string, stop func(), err error) {
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "", nil, fmt.Errorf("%s is not installed: run ./scripts/test.sh, or apt-get install containerd runc", bin)
		}
	}
	dir, err := os.MkdirTemp("", "lego-ctrd-")
	if err != nil {
		return "", nil, err
	}
	addr = filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		return "", nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		// Shims of killed containers may hold mounts: unmount before removing.
		unmountUnder(dir)
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err = ping(addr); err == nil {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("containerd did not start: %v (log in %s)", err, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ping(addr string) error {
	if _, err := os.Stat(addr); err != nil {
		return err
	}
	c, err := ctrd.New(addr, ctrd.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- { // deepest (latest) first
		f := strings.Fields(lines[i])
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}

// DebianImage returns a bookworm minbase image with the given packages,
// made by debootstrap once per machine (kept under the system temp dir,
// built under a file lock so that test binaries running at once share
// it) and copied into store.
func DebianImage(store *cas.Disk, packages ...string) (layout.Result, error) {
	base := filepath.Join(os.TempDir(), "lego-test-images")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return layout.Result{}, err
	}
	name := "bookworm"
	for _, p := range packages {
		name += "-" + p
	}
	dir := filepath.Join(base, name)
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return layout.Result{}, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return layout.Result{}, err
	}
	res, err := layout.ReadManifest(dir)
	if err != nil {
		os.RemoveAll(dir)
		tmp := dir + ".tmp"
		os.RemoveAll(tmp)
		if res, err = layout.Debian(context.Background(), tmp, layout.DebianOptions{Suite: "bookworm", Packages: packages, TempDir: base}); err != nil {
			return layout.Result{}, fmt.Errorf("debootstrap: %w", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return layout.Result{}, err
		}
	}
	return res, IngestLayout(store, dir)
}

// IngestLayout puts every blob of an OCI layout into store.
func IngestLayout(store *cas.Disk, dir string) error {
	return filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		_, err = store.PutFile(p)
		return err
	})
}

// File is an input file for InputRoot.
type File struct {
	Content string
	Exec    bool
}

// InputRoot stores files (keyed by slash path) and their REAPI Directory
// messages in s, and returns the root digest and the directories by
// cas.Key, as executors.Request.Dirs wants them.
func InputRoot(s *cas.Disk, files map[string]File) (*repb.Digest, map[string]*repb.Directory, error) {
	type dir struct {
		files map[string]File
		dirs  map[string]*dir
	}
	newDir := func() *dir { return &dir{files: map[string]File{}, dirs: map[string]*dir{}} }
	root := newDir()
	for p, f := range files {
		parts := strings.Split(p, "/")
		d := root
		for _, name := range parts[:len(parts)-1] {
			if d.dirs[name] == nil {
				d.dirs[name] = newDir()
			}
			d = d.dirs[name]
		}
		d.files[parts[len(parts)-1]] = f
	}
	all := map[string]*repb.Directory{}
	var put func(d *dir) (*repb.Digest, error)
	put = func(d *dir) (*repb.Digest, error) {
		msg := &repb.Directory{}
		for _, name := range slices.Sorted(maps.Keys(d.files)) {
			f := d.files[name]
			dg, err := s.Put([]byte(f.Content))
			if err != nil {
				return nil, err
			}
			msg.Files = append(msg.Files, &repb.FileNode{Name: name, Digest: dg, IsExecutable: f.Exec})
		}
		for _, name := range slices.Sorted(maps.Keys(d.dirs)) {
			dg, err := put(d.dirs[name])
			if err != nil {
				return nil, err
			}
			msg.Directories = append(msg.Directories, &repb.DirectoryNode{Name: name, Digest: dg})
		}
		dg, err := s.PutProto(msg)
		if err != nil {
			return nil, err
		}
		all[cas.Key(dg)] = msg
		return dg, nil
	}
	dg, err := put(root)
	return dg, all, err
}

// Store opens an empty CAS in a temporary directory of the test.
func Store(tb testing.TB) *cas.Disk {
	tb.Helper()
	s, err := cas.Open(filepath.Join(tb.TempDir(), "cas"))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// WriteFiles writes files (slash path -> content) under root, making
// directories as needed.
func WriteFiles(tb testing.TB, root string, files map[string]string) {
	tb.Helper()
	for p, body := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// Replier listens on a loopback port and answers every connection with
// reply: a host service that a sandboxed or networkless action must not
// reach. It returns the port.
func Replier(t testing.TB, reply string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
