package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/internal/testenv"
)

func dial(t testing.TB, addr string) *remote.Client {
	t.Helper()
	c, err := remote.Dial(remote.Options{Target: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// blob makes n bytes that differ with seed.
func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>9)
	}
	return b
}

// Small blobs travel in batches, blobs over the batch limit through
// ByteStream; both arrive verified in a second store.
func TestUploadDownloadRoundTrip(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	if _, err := c.Capabilities(ctx); err != nil {
		t.Fatal(err)
	}
	src, dst := testenv.Store(t), testenv.Store(t)
	var ds []*repb.Digest
	for i, n := range []int{1, 100, 5000, 3 << 20, 9<<20 + 17} {
		d, err := src.Put(blob(n, byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	missing, err := c.FindMissing(ctx, ds)
	if err != nil || len(missing) != len(ds) {
		t.Fatalf("before upload: %d of %d missing, %v", len(missing), len(ds), err)
	}
	n, size, err := c.Upload(ctx, src, ds)
	if err != nil || n != len(ds) {
		t.Fatalf("uploaded %d blobs (%d bytes): %v", n, size, err)
	}
	if n, _, err := c.Upload(ctx, src, ds); err != nil || n != 0 {
		t.Errorf("second upload sent %d blobs: %v", n, err)
	}
	if err := c.Download(ctx, dst, ds); err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		a, _ := src.Get(d)
		b, err := dst.Get(d)
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("blob %d (%d bytes): %v", i, d.SizeBytes, err)
		}
	}
	absent := cas.DigestOf([]byte("never uploaded"))
	if err := c.Download(ctx, dst, []*repb.Digest{absent}); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("download of an absent blob: %v", err)
	}
}

func TestActionCache(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	store := testenv.Store(t)
	key := cas.DigestOf([]byte("an action"))
	if r, err := c.GetActionResult(ctx, key); r != nil || err != nil {
		t.Fatalf("empty cache: %v, %v", r, err)
	}
	out, _ := store.Put([]byte("output"))
	res := &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "out", Digest: out}}}
	if _, _, err := c.Upload(ctx, store, []*repb.Digest{out}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateActionResult(ctx, key, res); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetActionResult(ctx, key)
	if err != nil || got == nil || got.OutputFiles[0].Digest.Hash != out.Hash {
		t.Fatalf("got %v, %v", got, err)
	}
}

// A blob the server serves with other bytes is rejected, batch-read or
// streamed, and never reaches the local store.
func TestCorruptRemoteBlobRejected(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	src := testenv.Store(t)
	for _, n := range []int{4096, 5 << 20} {
		d, _ := src.Put(blob(n, 3))
		if _, _, err := c.Upload(ctx, src, []*repb.Digest{d}); err != nil {
			t.Fatal(err)
		}
		srv.Corrupt(t, d.Hash)
		dst := testenv.Store(t)
		err := c.Download(ctx, dst, []*repb.Digest{d})
		if !errors.Is(err, cas.ErrCorrupt) {
			t.Errorf("%d bytes: download of a corrupt blob: %v", n, err)
		}
		if dst.Has(d) {
			t.Errorf("%d bytes: the corrupt blob was stored", n)
		}
	}
}

// The cache tier: a result with a corrupt output is a miss, and storing
// the result rebuilt locally sends its blobs again, which repairs the
// server's copy.
func TestCacheRejectsAndRepairsCorruptResult(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	a, b := testenv.Store(t), testenv.Store(t)
	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }
	key := cas.DigestOf([]byte("action"))
	out, _ := a.Put(blob(10000, 9))
	res := &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "out", Digest: out}}}
	opts := remote.TierOptions{Upload: true, Warn: warn}
	if err := remote.NewTier(c, a, opts).PutActionResult(ctx, key, res, cas.Here); err != nil {
		t.Fatal(err)
	}
	srv.Corrupt(t, out.Hash)

	cb := remote.NewTier(c, b, opts)
	if r, _, _ := cb.GetActionResult(ctx, key); r != nil || b.Has(out) {
		t.Fatalf("a result with a corrupt blob was a hit (stored: %v)", b.Has(out))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "corrupt") {
		t.Errorf("warnings: %q", warnings)
	}
	b.Put(blob(10000, 9)) // the local rebuild
	if err := cb.PutActionResult(ctx, key, res, cas.Here); err != nil {
		t.Fatal(err)
	}
	if r, l, _ := remote.NewTier(c, testenv.Store(t), opts).GetActionResult(ctx, key); r == nil || l != cas.Remote {
		t.Errorf("after the repair upload the result is still not served intact")
	}
}

// A server that goes away turns the tier off with one warning; lookups
// then miss and stores keep the local copy only, without errors.
func TestCacheOutageWarnsOnce(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	store := testenv.Store(t)
	var mu sync.Mutex
	var warnings []string
	cache := remote.NewTier(c, store, remote.TierOptions{Upload: true, Warn: func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() }})
	key := cas.DigestOf([]byte("k"))
	if r, _, err := cache.GetActionResult(ctx, key); r != nil || err != nil || !cache.Up() {
		t.Fatal("a miss on a live server")
	}
	srv.Kill()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := cas.DigestOf([]byte(fmt.Sprint(i)))
			if r, _, err := cache.GetActionResult(ctx, k); r != nil || err != nil {
				t.Error("a hit from a dead server", err)
			}
			out, _ := store.Put([]byte(fmt.Sprint("out", i)))
			if err := cache.PutActionResult(ctx, k, &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "o", Digest: out}}}, cas.Here); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if cache.Up() || len(warnings) != 1 || !strings.Contains(warnings[0], "unavailable") {
		t.Errorf("up %v, warnings %q", cache.Up(), warnings)
	}
}

// The layers stacked as a build opens them: memory over a tier whose Disk
// is over a real bazel-remote. A result stored in one workspace is found
// by another on the server, then in its memory, then (a new process) on
// its disk; a lazy stack leaves the files on the server until a link.
// sameOutputs compares results less the metadata servers add.
func sameOutputs(a, b *repb.ActionResult) bool {
	return a != nil && len(a.OutputFiles) == 1 && proto.Equal(a.OutputFiles[0], b.OutputFiles[0])
}

func TestStackHitsAtEachLevel(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	stack := func(d *cas.Disk, lazy bool) *cas.Memory {
		m, err := cas.NewMemory(remote.NewTier(c, d, remote.TierOptions{Upload: true, Lazy: lazy}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	key := cas.DigestOf([]byte("action at each level"))
	a := testenv.Store(t)
	out, _ := a.Put(blob(3000, 5))
	res := &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "out", Digest: out}}, StdoutDigest: cas.DigestOf(nil)}
	if err := stack(a, false).PutActionResult(ctx, key, res, cas.Here); err != nil {
		t.Fatal(err)
	}

	b := testenv.Store(t)
	mb := stack(b, false)
	if r, l, err := mb.GetActionResult(ctx, key); err != nil || l != cas.Remote || !sameOutputs(r, res) {
		t.Fatalf("first lookup in a new workspace: %v %v %v, want the server's result", r, l, err)
	}
	if !b.Has(out) {
		t.Error("a remote hit did not bring its output to the disk")
	}
	l := cas.Miss
	for i := 0; i < 1000 && l != cas.InMemory; i++ {
		// Memory takes what it keeps through a buffer.
		time.Sleep(time.Millisecond)
		_, l, _ = mb.GetActionResult(ctx, key)
	}
	if l != cas.InMemory {
		t.Errorf("repeated lookup: %v, want memory", l)
	}
	if r, l, err := stack(b, false).GetActionResult(ctx, key); err != nil || l != cas.OnDisk || !sameOutputs(r, res) {
		t.Errorf("lookup of a new process: %v %v %v, want the disk's result", r, l, err)
	}

	lz := testenv.Store(t)
	ml := stack(lz, true)
	if _, l, err := ml.GetActionResult(ctx, key); err != nil || l != cas.Remote {
		t.Fatalf("lazy lookup: %v %v", l, err)
	}
	if lz.Has(out) || ml.Has(out) {
		t.Fatalf("lazy hit: the output is on the disk (%v, %v); want it left on the server", lz.Has(out), ml.Has(out))
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := ml.Link(out, false, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, blob(3000, 5)) || !lz.Has(out) {
		t.Errorf("link of a lazy output: %d bytes, on disk %v", len(got), lz.Has(out))
	}
}

// A result a remote executor made is cached on its server already: the
// tier records it locally and sends nothing, even when its outputs are
// here (an early cutoff), since servers may refuse client writes.
func TestRemotelyMadeResultNotUploaded(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	d := testenv.Store(t)
	tier := remote.NewTier(c, d, remote.TierOptions{Upload: true})
	out, _ := d.Put(blob(2000, 7))
	res := &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "out", Digest: out}}}
	key := cas.DigestOf([]byte("ran remotely"))
	if err := tier.PutActionResult(ctx, key, res, cas.Remotely); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := d.GetActionResult(ctx, key); r == nil {
		t.Error("the result was not recorded locally")
	}
	if r, err := c.GetActionResult(ctx, key); r != nil || err != nil {
		t.Errorf("the result was uploaded: %v %v", r, err)
	}
	if missing, err := c.FindMissing(ctx, []*repb.Digest{out}); err != nil || len(missing) != 1 {
		t.Errorf("the output was uploaded: missing %v, %v", missing, err)
	}
	// The same result made here is uploaded.
	if err := tier.PutActionResult(ctx, key, res, cas.Here); err != nil {
		t.Fatal(err)
	}
	if r, err := c.GetActionResult(ctx, key); r == nil || err != nil {
		t.Errorf("a result made here was not uploaded: %v", err)
	}
}
