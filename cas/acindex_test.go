package cas

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

// indexOff makes Disks opened on dir from now on ignore the index, as
// after an older lego's GC: lookups read the entries' files.
func indexOff(t testing.TB, dir string) {
	t.Helper()
	p := filepath.Join(dir, acxDir, acxStamp)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("off"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shardKeys returns n action keys whose index shard is the hex digit sh.
func shardKeys(n int, sh byte) []*repb.Digest {
	var keys []*repb.Digest
	for i := 0; len(keys) < n; i++ {
		if k := actionKey(fmt.Sprint("shard ", i)); k.Hash[0] == sh {
			keys = append(keys, k)
		}
	}
	return keys
}

func resultOf(i int) *repb.ActionResult {
	return &repb.ActionResult{
		OutputFiles:  []*repb.OutputFile{{Path: fmt.Sprintf("out/%d", i), Digest: DigestOf([]byte(fmt.Sprint(i)))}},
		StdoutDigest: DigestOf(nil),
		ExitCode:     int32(i % 3),
	}
}

func mustPutAC(t testing.TB, s *Disk, key *repb.Digest, r *repb.ActionResult) {
	t.Helper()
	if err := s.PutActionResult(bg, key, r, Here); err != nil {
		t.Fatal(err)
	}
}

// dropEntry removes the entry's file under ac/: what is served then came
// from the index.
func dropEntry(t testing.TB, s *Disk, key *repb.Digest) {
	t.Helper()
	if err := os.Remove(s.acPath(key.Hash)); err != nil {
		t.Fatal(err)
	}
}

// wantAC fails unless s serves want for key (nil: a miss).
func wantAC(t testing.TB, s *Disk, key *repb.Digest, want *repb.ActionResult, what string) {
	t.Helper()
	got, l, err := s.GetActionResult(bg, key)
	switch {
	case err != nil:
		t.Errorf("%s: %v", what, err)
	case want == nil && (got != nil || l != Miss):
		t.Errorf("%s: served %v from %v; want a miss", what, got, l)
	case want != nil && (!proto.Equal(got, want) || l != OnDisk):
		t.Errorf("%s: got %v from %v; want %v", what, got, l, want)
	}
}

func TestIndexServes(t *testing.T) {
	s := newDisk(t)
	key := actionKey("a")
	mustPutAC(t, s, key, resultOf(1))
	dropEntry(t, s, key)
	wantAC(t, s, key, resultOf(1), "writer, entry file gone")
	wantAC(t, openDisk(t, s.Dir()), key, resultOf(1), "new Disk, entry file gone")
	// A replacement's record wins over the earlier one.
	mustPutAC(t, s, key, resultOf(2))
	dropEntry(t, s, key)
	wantAC(t, s, key, resultOf(2), "writer, replaced")
	wantAC(t, openDisk(t, s.Dir()), key, resultOf(2), "new Disk, replaced")
	wantAC(t, openDisk(t, s.Dir()), actionKey("none"), nil, "absent key")
}

// An entry read from its file is indexed, so the next build needs no file.
func TestIndexFillsFromFiles(t *testing.T) {
	s := newDisk(t)
	key := actionKey("old")
	mustPutAC(t, s, key, resultOf(4))
	os.RemoveAll(filepath.Join(s.Dir(), acxDir)) // as an older lego leaves the store
	wantAC(t, openDisk(t, s.Dir()), key, resultOf(4), "from the file")
	dropEntry(t, s, key)
	wantAC(t, openDisk(t, s.Dir()), key, resultOf(4), "after the file went")
}

// A Disk that read a shard sees what another appended to it since.
func TestIndexCatchUp(t *testing.T) {
	dir := newDisk(t).Dir()
	a, b := openDisk(t, dir), openDisk(t, dir)
	keys := shardKeys(3, 'c')
	mustPutAC(t, a, keys[0], resultOf(0))
	wantAC(t, b, keys[0], resultOf(0), "first")
	mustPutAC(t, a, keys[1], resultOf(1))
	mustPutAC(t, a, keys[2], resultOf(2))
	dropEntry(t, a, keys[1])
	dropEntry(t, a, keys[2])
	wantAC(t, b, keys[1], resultOf(1), "appended after the first read")
	wantAC(t, b, keys[2], resultOf(2), "appended after the first read")
}

// A record cut short by a crash is skipped, and those appended after it
// are served, to a Disk that read the cut tail before them too.
func TestIndexTornRecord(t *testing.T) {
	s := newDisk(t)
	keys := shardKeys(4, '5')
	mustPutAC(t, s, keys[0], resultOf(0))
	mustPutAC(t, s, keys[1], resultOf(1))
	p := s.indexPath(5)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	dropEntry(t, s, keys[1])
	early := openDisk(t, s.Dir())
	wantAC(t, early, keys[0], resultOf(0), "before the torn one")
	wantAC(t, early, keys[1], nil, "torn")

	after := openDisk(t, s.Dir())
	mustPutAC(t, after, keys[2], resultOf(2))
	mustPutAC(t, after, keys[3], resultOf(3))
	dropEntry(t, s, keys[2])
	dropEntry(t, s, keys[3])
	for _, d := range []*Disk{early, openDisk(t, s.Dir())} {
		wantAC(t, d, keys[0], resultOf(0), "before the torn one")
		wantAC(t, d, keys[1], nil, "torn")
		wantAC(t, d, keys[2], resultOf(2), "after the torn one")
		wantAC(t, d, keys[3], resultOf(3), "after the torn one")
	}
}

// A record with any byte changed is never served.
func TestIndexDamage(t *testing.T) {
	s := newDisk(t)
	key := actionKey("a")
	mustPutAC(t, s, key, resultOf(1))
	p, ep := s.indexPath(int(unhex(key.Hash[0]))), s.acPath(key.Hash)
	good, entry := readFile(t, p), readFile(t, ep)
	for i := range good {
		c := bytes.Clone(good)
		c[i] ^= 0x10
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(ep)
		wantAC(t, openDisk(t, s.Dir()), key, nil, fmt.Sprintf("byte %d changed, no file", i))
		// Served from the file, which then is indexed again.
		os.WriteFile(ep, entry, 0o644)
		wantAC(t, openDisk(t, s.Dir()), key, resultOf(1), fmt.Sprintf("byte %d changed", i))
	}
}

// Records decode whole or not at all, wherever the bytes stop; a short
// tail is consumed only once it is whole, and a cut record that others
// follow is skipped.
func TestDecodeIndex(t *testing.T) {
	var keys [3][32]byte
	var recs [][]byte
	var all []byte
	for i := range keys {
		keys[i][0] = byte(i + 1)
		body, _ := proto.MarshalOptions{Deterministic: true}.Marshal(resultOf(i))
		recs = append(recs, encodeIndexRecord(nil, &keys[i], body))
		all = append(all, recs[i]...)
	}
	for cut := 0; cut <= len(all); cut++ {
		m := map[[32]byte][]byte{}
		n := decodeIndex(all[:cut], m)
		whole, end := 0, 0
		for _, r := range recs {
			if end+len(r) > cut {
				break
			}
			whole, end = whole+1, end+len(r)
		}
		if len(m) != whole || n != end {
			t.Fatalf("cut at %d: %d records, %d bytes consumed; want %d, %d", cut, len(m), n, whole, end)
		}
		if decodeIndex(all[n:], m); len(m) != len(recs) {
			t.Fatalf("cut at %d, then read whole: %d records", cut, len(m))
		}
	}
	for k := 1; k < len(recs[1]); k++ {
		b := append(append(bytes.Clone(recs[0]), recs[1][:k]...), recs[2]...)
		m := map[[32]byte][]byte{}
		if n := decodeIndex(b, m); n != len(b) || len(m) != 2 || m[keys[1]] != nil {
			t.Fatalf("second record cut to %d bytes: %d consumed of %d, %d records", k, n, len(b), len(m))
		}
	}
}

// GC drops what it evicts from the index, for new Disks and for one that
// read it before, and keeps the rest; so does Verify.
func TestIndexFollowsGC(t *testing.T) {
	s := newDisk(t)
	old, kept, bad := actionKey("old"), actionKey("kept"), actionKey("bad")
	mustPutAC(t, s, old, resultOf(0))
	mustPutAC(t, s, kept, resultOf(1))
	backdate(t, s.acPath(old.Hash), 48*time.Hour)
	before := openDisk(t, s.Dir())
	wantAC(t, before, old, resultOf(0), "before GC")

	st, err := os.Stat(s.acPath(kept.Hash))
	if err != nil {
		t.Fatal(err)
	}
	if gs, err := s.GC(st.Size()); err != nil || gs.RemovedActions != 1 {
		t.Fatalf("GC = %+v, %v; want one result removed", gs, err)
	}
	unlock, err := before.LockShared()
	if err != nil {
		t.Fatal(err)
	}
	wantAC(t, before, old, nil, "evicted, Disk read before GC")
	unlock()
	dropEntry(t, s, kept)
	wantAC(t, openDisk(t, s.Dir()), old, nil, "evicted")
	wantAC(t, openDisk(t, s.Dir()), kept, resultOf(1), "kept, file gone since")

	// What Verify finds damaged goes; what has no file since GC too.
	fine := actionKey("fine")
	mustPutAC(t, s, bad, resultOf(2))
	mustPutAC(t, s, fine, resultOf(3))
	os.WriteFile(s.acPath(bad.Hash), []byte("\x00LA1 damaged"), 0o644)
	if vs, err := s.Verify(); err != nil || len(vs.Evicted) != 1 {
		t.Fatalf("Verify = %+v, %v; want one eviction", vs, err)
	}
	dropEntry(t, s, fine)
	wantAC(t, openDisk(t, s.Dir()), bad, nil, "evicted by Verify")
	wantAC(t, openDisk(t, s.Dir()), kept, nil, "no file at Verify")
	wantAC(t, openDisk(t, s.Dir()), fine, resultOf(3), "kept by Verify, file gone since")
}

// An index the store's gcgen does not match (an older lego collected the
// store) is not used, until a GC rewrites it; an empty one is taken up.
func TestIndexStamp(t *testing.T) {
	s := newDisk(t)
	a, b := actionKey("a"), actionKey("b")
	mustPutAC(t, s, a, resultOf(0))
	os.WriteFile(filepath.Join(s.Dir(), "gcgen"), []byte("0123456789abcdef"), 0o644) // no rewrite
	dropEntry(t, s, a)
	wantAC(t, openDisk(t, s.Dir()), a, nil, "index of before an older lego's GC")
	mustPutAC(t, openDisk(t, s.Dir()), b, resultOf(1))
	dropEntry(t, s, b)
	wantAC(t, openDisk(t, s.Dir()), b, nil, "appended to an index not in use")

	if _, err := s.GC(1 << 40); err != nil {
		t.Fatal(err)
	}
	mustPutAC(t, s, b, resultOf(1))
	dropEntry(t, s, b)
	wantAC(t, openDisk(t, s.Dir()), b, resultOf(1), "after GC rewrote the index")

	os.RemoveAll(filepath.Join(s.Dir(), acxDir))
	os.WriteFile(filepath.Join(s.Dir(), "gcgen"), []byte("fedcba9876543210"), 0o644)
	mustPutAC(t, openDisk(t, s.Dir()), a, resultOf(0))
	dropEntry(t, s, a)
	wantAC(t, openDisk(t, s.Dir()), a, resultOf(0), "an index begun in a store an older lego collected")
}

// An index that cannot be read or written costs the files' reads, never
// an error.
func TestIndexUnusable(t *testing.T) {
	s := newDisk(t)
	keys := shardKeys(2, '7')
	// A shard that is no file: reads and appends fail.
	if err := os.MkdirAll(s.indexPath(7), 0o755); err != nil {
		t.Fatal(err)
	}
	mustPutAC(t, s, keys[0], resultOf(0))
	wantAC(t, s, keys[0], resultOf(0), "shard not a file")
	wantAC(t, openDisk(t, s.Dir()), keys[0], resultOf(0), "shard not a file")

	// The index directory not one.
	os.RemoveAll(filepath.Join(s.Dir(), acxDir))
	os.WriteFile(filepath.Join(s.Dir(), acxDir), []byte("garbage"), 0o644)
	w := openDisk(t, s.Dir())
	mustPutAC(t, w, keys[1], resultOf(1))
	wantAC(t, w, keys[1], resultOf(1), "index not a directory")
	wantAC(t, openDisk(t, s.Dir()), keys[0], resultOf(0), "index not a directory")

	// A shard of garbage: records appended after it are found.
	os.Remove(filepath.Join(s.Dir(), acxDir))
	os.MkdirAll(filepath.Join(s.Dir(), acxDir), 0o755)
	os.WriteFile(s.indexPath(7), bytes.Repeat([]byte("\x00LX1garbage"), 100), 0o644)
	wantAC(t, openDisk(t, s.Dir()), keys[0], resultOf(0), "garbage shard")
	mustPutAC(t, openDisk(t, s.Dir()), keys[1], resultOf(1))
	dropEntry(t, s, keys[1])
	wantAC(t, openDisk(t, s.Dir()), keys[1], resultOf(1), "appended after garbage")
}

// Builds appending to one store at once each have every record read back
// whole.
func TestIndexConcurrentAppends(t *testing.T) {
	dir := newDisk(t).Dir()
	const writers, each = 8, 60
	key := func(w, i int) *repb.Digest { return actionKey(fmt.Sprint(w, "/", i)) }
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir)
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < each; i++ {
				if err := s.PutActionResult(bg, key(w, i), resultOf(w*each+i), Here); err != nil {
					t.Error(err)
					return
				}
				// Lookups catch up with the others' appends meanwhile.
				o := (w + 1) % writers
				if r, _, err := s.GetActionResult(bg, key(o, i)); err != nil || (r != nil && !proto.Equal(r, resultOf(o*each+i))) {
					t.Errorf("writer %d read %v, %v", w, r, err)
				}
			}
		}()
	}
	wg.Wait()
	s := openDisk(t, dir)
	if err := os.RemoveAll(s.acDir); err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			wantAC(t, s, key(w, i), resultOf(w*each+i), fmt.Sprint("writer ", w, " result ", i))
		}
	}
}
