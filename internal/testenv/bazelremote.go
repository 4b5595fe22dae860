package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BazelRemoteVersion is the REAPI cache server the tests run against.
const BazelRemoteVersion = "v2.6.2"

// EnvBazelRemote names a bazel-remote binary to use instead of building one.
const EnvBazelRemote = "LEGO_TEST_BAZEL_REMOTE"

// BazelRemoteBinary returns the path of a bazel-remote binary, building
// it from the Go module proxy once per machine (under a file lock, so test
// binaries running at once share it). `go install …@v2.6.2` fails on the
// proxy's deprecation lookup; `go get` into a scratch module and `go
// build` work (DESIGN.md, pitfalls).
func BazelRemoteBinary() (string, error) {
	if p := os.Getenv(EnvBazelRemote); p != "" {
		return p, nil
	}
	dir := filepath.Join(os.TempDir(), "lego-test-tools", "bazel-remote-"+BazelRemoteVersion)
	bin := filepath.Join(dir, "bazel-remote")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	mod := "module legotools\n\ngo 1.26.0\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", err
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	for _, args := range [][]string{
		{"get", "github.com/buchgr/bazel-remote/v2@" + BazelRemoteVersion},
		{"build", "-o", bin + ".tmp", "github.com/buchgr/bazel-remote/v2"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building bazel-remote (go %s): %v\n%s", args[0], err, out)
		}
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// BazelRemote is a bazel-remote server on loopback with its disk cache in
// a temporary directory.
type BazelRemote struct {
	// Addr is the gRPC address as lego takes it: grpc://127.0.0.1:port.
	Addr string
	// Dir is the server's disk cache: blobs are stored uncompressed under
	// Dir/cas.v2, so a test can corrupt one in place.
	Dir string
	cmd *exec.Cmd
	log string
}

// StartBazelRemote starts bazel-remote and stops it when the test ends.
// The test fails if it cannot be built or started.
func StartBazelRemote(tb testing.TB) *BazelRemote {
	tb.Helper()
	bin, err := BazelRemoteBinary()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	grpcPort, httpPort := freePort(tb), freePort(tb)
	logPath := filepath.Join(dir, "bazel-remote.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "--dir", filepath.Join(dir, "cache"), "--max_size", "20",
		"--storage_mode", "uncompressed",
		"--grpc_address", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--http_address", fmt.Sprintf("127.0.0.1:%d", httpPort))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	b := &BazelRemote{Addr: fmt.Sprintf("grpc://127.0.0.1:%d", grpcPort), Dir: filepath.Join(dir, "cache"), cmd: cmd, log: logPath}
	tb.Cleanup(func() { b.Kill(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", grpcPort), time.Second)
		if err == nil {
			c.Close()
			return b
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			tb.Fatalf("bazel-remote did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (b *BazelRemote) Kill() {
	if b.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	_ = b.cmd.Wait()
}

// Log returns what the server has written so far.
func (b *BazelRemote) Log() string {
	out, _ := os.ReadFile(b.log)
	return string(out)
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Corrupt flips one byte of the server's stored copy of the blob with
// this hash, keeping its size, as a failing disk would.
func (b *BazelRemote) Corrupt(tb testing.TB, hash string) {
	tb.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(b.Dir, "cas.v2"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), hash) {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		tb.Fatalf("bazel-remote's copies of %s: %v", hash, found)
	}
	data, err := os.ReadFile(found[0])
	if err != nil {
		tb.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	os.Chmod(found[0], 0o644)
	if err := os.WriteFile(found[0], data, 0o644); err != nil {
		tb.Fatal(err)
	}
}
