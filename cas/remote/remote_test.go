package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

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
	remote.NewCache(c, a, true, warn).Store(ctx, key, res)
	srv.Corrupt(t, out.Hash)

	cb := remote.NewCache(c, b, true, warn)
	if r := cb.Lookup(ctx, key, true); r != nil || b.Has(out) {
		t.Fatalf("a result with a corrupt blob was a hit (stored: %v)", b.Has(out))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "corrupt") {
		t.Errorf("warnings: %q", warnings)
	}
	b.Put(blob(10000, 9)) // the local rebuild
	cb.Store(ctx, key, res)
	if r := remote.NewCache(c, testenv.Store(t), true, warn).Lookup(ctx, key, true); r == nil {
		t.Errorf("after the repair upload the result is still not served intact")
	}
}

// A server that goes away turns the tier off with one warning; lookups
// then miss and stores do nothing, without errors.
func TestCacheOutageWarnsOnce(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	c := dial(t, srv.Addr)
	ctx := context.Background()
	store := testenv.Store(t)
	var mu sync.Mutex
	var warnings []string
	cache := remote.NewCache(c, store, true, func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() })
	key := cas.DigestOf([]byte("k"))
	if cache.Lookup(ctx, key, true) != nil || !cache.Up() {
		t.Fatal("a miss on a live server")
	}
	srv.Kill()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := cas.DigestOf([]byte(fmt.Sprint(i)))
			if cache.Lookup(ctx, k, true) != nil {
				t.Error("a hit from a dead server")
			}
			out, _ := store.Put([]byte(fmt.Sprint("out", i)))
			cache.Store(ctx, k, &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "o", Digest: out}}})
		}()
	}
	wg.Wait()
	if cache.Up() || len(warnings) != 1 || !strings.Contains(warnings[0], "unavailable") {
		t.Errorf("up %v, warnings %q", cache.Up(), warnings)
	}
}
