package remote_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/internal/testenv"
)

const (
	largeSize = 2 << 30   // a checkpoint-sized output
	maxRSS    = 300 << 20 // what lego may hold while moving it
)

// A 2 GiB blob goes up and comes back through ByteStream while the
// process's peak resident memory stays under 300 MiB. It runs in a child
// process (see TestMain) so that the peak is this transfer's alone.
func TestLargeBlobRoundTripBoundedMemory(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LEGO_LARGE_BLOB_SERVER="+srv.Addr, "LEGO_LARGE_BLOB_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak int64 = -1
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "peak-rss-bytes "); ok {
			peak, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if peak < 0 {
		t.Fatalf("child did not report its peak RSS:\n%s", out)
	}
	t.Logf("peak RSS moving %d MiB: %d MiB", largeSize>>20, peak>>20)
	if peak >= maxRSS {
		t.Errorf("peak RSS %d MiB, want under %d MiB", peak>>20, maxRSS>>20)
	}
}

// TestMain runs the child of TestLargeBlobRoundTripBoundedMemory when the
// test binary is started as one.
func TestMain(m *testing.M) {
	if addr := os.Getenv("LEGO_LARGE_BLOB_SERVER"); addr != "" {
		if err := largeBlobChild(addr, os.Getenv("LEGO_LARGE_BLOB_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// largeBlobChild writes a large blob, uploads it, downloads it into a
// second store and prints its peak RSS.
func largeBlobChild(addr, dir string) error {
	src, err := cas.Open(filepath.Join(dir, "src"))
	if err != nil {
		return err
	}
	dst, err := cas.Open(filepath.Join(dir, "dst"))
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "checkpoint.bin")
	if err := writeLarge(path, largeSize); err != nil {
		return err
	}
	d, err := src.IngestFile(path)
	if err != nil {
		return err
	}
	c, err := remote.Dial(remote.Options{Target: addr})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	if n, size, err := c.Upload(ctx, src, []*repb.Digest{d}); err != nil || n != 1 || size != largeSize {
		return fmt.Errorf("upload: %d blobs, %d bytes, %v", n, size, err)
	}
	if err := c.Download(ctx, dst, []*repb.Digest{d}); err != nil {
		return err
	}
	if !dst.Has(d) {
		return fmt.Errorf("the blob did not arrive")
	}
	peak, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Printf("peak-rss-bytes %d\n", peak)
	return nil
}

// writeLarge writes n bytes that do not repeat at any short period.
func writeLarge(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var word [8]byte
	for i := int64(0); i < n/8; i++ {
		binary.LittleEndian.PutUint64(word[:], uint64(i)*0x9E3779B97F4A7C15)
		w.Write(word[:])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// peakRSS reads the process's high-water resident set size.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
