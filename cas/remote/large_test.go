package remote_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/internal/testenv"
)

const (
	largeSize = 2 << 30   // a checkpoint-sized output
	maxRSS    = 300 << 20 // what lego may hold while moving it
)

// A 2 GiB blob goes up and comes back through ByteStream while the
// process's peak resident memory stays under 300 MiB. It runs in a child
// process so that the peak is this transfer's alone.
func TestLargeBlobRoundTripBoundedMemory(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLargeBlobChild$", "-test.v")
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

// TestLargeBlobChild is the child of the test above; it does nothing
// when run on its own.
func TestLargeBlobChild(t *testing.T) {
	addr := os.Getenv("LEGO_LARGE_BLOB_SERVER")
	if addr == "" {
		return
	}
	dir := os.Getenv("LEGO_LARGE_BLOB_DIR")
	src, dst := testenv.Store(t), testenv.Store(t)
	path := filepath.Join(dir, "checkpoint.bin")
	writeLarge(t, path, largeSize)
	d, err := src.IngestFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	ctx := context.Background()
	if n, size, err := c.Upload(ctx, src, []*repb.Digest{d}); err != nil || n != 1 || size != largeSize {
		t.Fatalf("upload: %d blobs, %d bytes, %v", n, size, err)
	}
	if err := c.Download(ctx, dst, []*repb.Digest{d}); err != nil {
		t.Fatal(err)
	}
	if !dst.Has(d) {
		t.Fatal("the blob did not arrive")
	}
	t.Logf("\npeak-rss-bytes %d\n", peakRSS(t))
}

// writeLarge writes n bytes that do not repeat at any short period.
func writeLarge(t *testing.T, path string, n int64) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var word [8]byte
	for i := int64(0); i < n/8; i++ {
		binary.LittleEndian.PutUint64(word[:], uint64(i)*0x9E3779B97F4A7C15)
		w.Write(word[:])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// peakRSS reads the process's high-water resident set size.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
