package cas

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

// gcWorld is a store with entries of known ages. In LRU order:
//
//	unref   blob, used by nothing, mtime 72h ago
//	acOld   action, mtime 48h ago             -> outOld (and shared)
//	outOld  blob, last use = acOld's
//	acMid   action, mtime 24h ago             -> outMid
//	outMid  blob
//	acNew   action, mtime 48h ago, RecordUse now -> outNew, shared, tree
//	outNew, shared, tree, inTree: blobs, last use = acNew's
type gcWorld struct {
	s     *Disk
	items map[string]*repb.Digest // name -> digest (action key or blob)
	order []string                // names, least recently used first
	sizes map[string]int64        // bytes each name holds on disk
}

func newGCWorld(t *testing.T) *gcWorld {
	s := newDisk(t)
	w := &gcWorld{s: s, items: map[string]*repb.Digest{}, sizes: map[string]int64{}}
	blob := func(name string, n int, seed byte) *repb.Digest {
		d := mustPut(t, s, pattern(n, seed))
		p, _ := s.BlobPath(d, false)
		backdate(t, p, 72*time.Hour)
		w.items[name], w.sizes[name] = d, int64(n)
		return d
	}
	ac := func(name string, r *repb.ActionResult, age time.Duration) {
		key := actionKey(name)
		if err := s.PutActionResult(bg, key, r, Here); err != nil {
			t.Fatal(err)
		}
		p := s.acPath(key.Hash)
		backdate(t, p, age)
		st, _ := os.Stat(p)
		w.items[name], w.sizes[name] = key, st.Size()
	}
	blob("unref", 1001, 1)
	outOld := blob("outOld", 1002, 2)
	outMid := blob("outMid", 1003, 3)
	outNew := blob("outNew", 1004, 4)
	shared := blob("shared", 1005, 5)
	inTree := blob("inTree", 1006, 6)
	// An executable variant is counted and removed with its blob.
	x, _ := s.BlobPath(outNew, true)
	w.sizes["outNew"] += 1004
	backdate(t, x, 72*time.Hour)
	tree := &repb.Tree{Root: &repb.Directory{Files: []*repb.FileNode{{Name: "f", Digest: inTree}}}}
	treeD, _ := s.PutProto(tree)
	tp, _ := s.BlobPath(treeD, false)
	backdate(t, tp, 72*time.Hour)
	w.items["tree"], w.sizes["tree"] = treeD, treeD.SizeBytes

	ac("acOld", &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "o", Digest: outOld}, {Path: "s", Digest: shared}}}, 48*time.Hour)
	ac("acMid", &repb.ActionResult{StdoutDigest: outMid}, 24*time.Hour)
	ac("acNew", &repb.ActionResult{
		OutputFiles:       []*repb.OutputFile{{Path: "o", Digest: outNew}},
		StderrDigest:      shared,
		OutputDirectories: []*repb.OutputDirectory{{Path: "d", TreeDigest: treeD}},
	}, 48*time.Hour)
	if err := s.RecordUse([]*repb.Digest{actionKey("acNew"), actionKey("unknown")}); err != nil {
		t.Fatal(err)
	}
	// Ties (acNew and its blobs) go action first, then by hash.
	tied := []string{"outNew", "shared", "tree", "inTree"}
	sort.Slice(tied, func(i, j int) bool { return w.items[tied[i]].Hash < w.items[tied[j]].Hash })
	w.order = append([]string{"unref", "acOld", "outOld", "acMid", "outMid", "acNew"}, tied...)
	return w
}

func (w *gcWorld) present(name string) bool {
	d := w.items[name]
	if name[:2] == "ac" {
		r, _, _ := openDiskNoCleanup(w.s.Dir()).GetActionResult(bg, d)
		return r != nil
	}
	return w.s.Has(d)
}

func openDiskNoCleanup(dir string) *Disk {
	s, err := Open(dir)
	if err != nil {
		panic(err)
	}
	return s
}

func TestGCLRUOrder(t *testing.T) {
	for k := 0; k <= 10; k++ {
		w := newGCWorld(t)
		if k > len(w.order) {
			break
		}
		t.Run(w.orderName(k), func(t *testing.T) {
			total, err := w.s.Size()
			if err != nil {
				t.Fatal(err)
			}
			var cut int64
			for _, n := range w.order[:k] {
				cut += w.sizes[n]
			}
			max := total - cut
			st, err := w.s.GC(max)
			if err != nil {
				t.Fatal(err)
			}
			after, _ := w.s.Size()
			if st.Before != total || st.After != after || after > max {
				t.Errorf("stats %+v, size before %d after %d, max %d", st, total, after, max)
			}
			var blobs, actions int
			for i, n := range w.order {
				gone := i < k
				if w.present(n) == gone {
					t.Errorf("%s present=%v, want %v", n, !gone, !gone)
				}
				if gone && n[:2] == "ac" {
					actions++
				} else if gone {
					blobs++
				}
			}
			if st.RemovedBlobs != blobs || st.RemovedActions != actions {
				t.Errorf("removed %d blobs %d actions, want %d %d", st.RemovedBlobs, st.RemovedActions, blobs, actions)
			}
			if x := w.s.casxPath(w.items["outNew"].Hash); w.present("outNew") {
				if _, err := os.Stat(x); err != nil {
					t.Error("executable variant of a kept blob removed")
				}
			} else if _, err := os.Stat(x); !os.IsNotExist(err) {
				t.Error("executable variant outlived its blob")
			}
		})
	}
}

func (w *gcWorld) orderName(k int) string {
	if k == 0 {
		return "none"
	}
	return "through_" + w.order[k-1]
}

// Everything goes at maxSize 0, but the empty blob stays usable.
func TestGCAll(t *testing.T) {
	w := newGCWorld(t)
	st, err := w.s.GC(0)
	if err != nil || st.After != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if n, _ := w.s.Size(); n != 0 {
		t.Errorf("Size after GC(0) = %d", n)
	}
	if _, err := w.s.BlobPath(DigestOf(nil), false); err != nil {
		t.Error(err)
	}
}

// GC folds the journals into one that still carries the uses of kept
// entries, so a second GC orders the same way.
func TestGCFoldsJournals(t *testing.T) {
	w := newGCWorld(t)
	w.s.RecordUse([]*repb.Digest{actionKey("acMid")})
	other := openDisk(t, w.s.Dir())
	other.RecordUse([]*repb.Digest{actionKey("acMid")})
	before, _, _ := w.s.readJournals()
	if n := len(entries(t, w.s.usageDir)); n != 2 {
		t.Fatalf("%d journals, want one per Disk", n)
	}
	if _, err := w.s.GC(1 << 40); err != nil {
		t.Fatal(err)
	}
	if n := len(entries(t, w.s.usageDir)); n != 1 {
		t.Errorf("%d journals after GC, want 1", n)
	}
	after, _, _ := w.s.readJournals()
	for _, name := range []string{"acNew", "acMid"} {
		h := w.items[name].Hash
		if after[h] != before[h] || after[h] == 0 {
			t.Errorf("%s: use %d after fold, %d before", name, after[h], before[h])
		}
	}
	if _, ok := after[actionKey("unknown").Hash]; ok {
		t.Error("use of a key with no entry kept")
	}
	// Recording after the fold still works (a fresh journal file).
	if err := w.s.RecordUse([]*repb.Digest{actionKey("acOld")}); err != nil {
		t.Fatal(err)
	}
	// Uses now run acNew < acMid < acOld: past the unreferenced blob,
	// acNew is the next to go.
	if _, err := w.s.GC(w.mustSize(t) - w.sizes["unref"] - 1); err != nil {
		t.Fatal(err)
	}
	if !w.present("acOld") || !w.present("acMid") || w.present("acNew") {
		t.Errorf("after re-use: acOld %v acMid %v acNew %v", w.present("acOld"), w.present("acMid"), w.present("acNew"))
	}
}

func (w *gcWorld) mustSize(t *testing.T) int64 {
	n, err := w.s.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGCRemovesCorruptActions(t *testing.T) {
	s := newDisk(t)
	key := actionKey("bad")
	p := s.acPath(key.Hash)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("\xff\xffjunk"), 0o644)
	st, err := s.GC(1 << 40)
	if err != nil || st.RemovedActions != 1 || st.Before != 6 || st.After != 0 {
		t.Errorf("%+v %v", st, err)
	}
}

// Journal records cut short (a killed process) are ignored, not misread.
func TestJournalTruncated(t *testing.T) {
	rec := appendRecord(nil, 5, [][32]byte{{1}, {2}})
	rec = appendRecord(rec, 7, [][32]byte{{3}})
	for cut := 0; cut <= len(rec); cut++ {
		var got []byte
		parseJournal(rec[:cut], func(when int64, h []byte) { got = append(got, h[0]) })
		want := 0
		switch {
		case cut == len(rec):
			want = 3
		case cut >= journalHeader+64+4:
			want = 2
		}
		if len(got) != want {
			t.Errorf("cut %d: %d hashes, want %d", cut, len(got), want)
		}
	}
}
