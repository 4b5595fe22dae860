package engine

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/legobuild/lego/cas"
)

// warnings collects the warning events of builds.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Event(e *Event) {
	if e.Type == EvWarning {
		w.mu.Lock()
		w.msgs = append(w.msgs, e.Label+": "+e.Message)
		w.mu.Unlock()
	}
}

// verifyWS is chain with a reader of upper's bytes (rev), which a test
// makes run again by changing its command: what it reads from the store
// must be upper's true output.
func verifyWS(t *testing.T) *ws {
	w := chain(t)
	w.sh("rev", []string{"upper"}, "rev $SRCS > $OUT")
	w.ran("//p:count", "//p:report", "//p:rev", "//p:side", "//p:upper")
	return w
}

// buildWarned builds and returns the warnings.
func (w *ws) buildWarned() (*Summary, []string) {
	w.t.Helper()
	var ws warnings
	sum, err := w.build(func(o *Options) { o.Listener = &ws })
	if err != nil {
		w.t.Fatalf("build: %v", err)
	}
	return sum, ws.msgs
}

// blobFile is the store's file of the blob with content b.
func (w *ws) blobFile(b string) string {
	w.t.Helper()
	d := cas.DigestOf([]byte(b))
	return filepath.Join(w.cache, "cas", d.Hash[:2], d.Hash)
}

func ranNames(sum *Summary) string {
	var got []string
	for _, r := range sum.Ran {
		got = append(got, strings.Fields(r)[0])
	}
	return strings.Join(got, " ")
}

// A cached output whose blob was damaged is found on the next build:
// evicted, warned about on its target, built again, and never handed to
// the actions that read it.
func TestCorruptHitRebuilt(t *testing.T) {
	flip := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[1] ^= 0x20 // HELLO -> HeLLO: same size
		os.Chmod(p, 0o644)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(b[1:2], 1)
		f.Close()
	}
	for _, tc := range []struct {
		name   string
		damage func(w *ws)
		warn   bool
	}{
		{"lego-out edited in place", func(w *ws) {
			flip(filepath.Join(w.root, OutDir, "p", "upper.out"))
		}, true},
		{"blob flipped in place, mtime put back", func(w *ws) {
			p := w.blobFile("HELLO\n")
			st, _ := os.Stat(p)
			flip(p)
			os.Chtimes(p, st.ModTime(), st.ModTime())
		}, true},
		{"blob replaced", func(w *ws) {
			p := w.blobFile("HELLO\n")
			os.WriteFile(p+".new", []byte("HeLLO\n"), 0o444)
			os.Rename(p+".new", p)
		}, true},
		{"blob truncated", func(w *ws) {
			p := w.blobFile("HELLO\n")
			os.Chmod(p, 0o644)
			os.Truncate(p, 3)
		}, true},
		{"blob appended to", func(w *ws) {
			p := w.blobFile("HELLO\n")
			os.Chmod(p, 0o644)
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("more\n")
			f.Close()
		}, true},
		{"blob deleted", func(w *ws) { os.Remove(w.blobFile("HELLO\n")) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := verifyWS(t)
			tc.damage(w)
			w.sh("rev", []string{"upper"}, "rev $SRCS | cat > $OUT")
			sum, warns := w.buildWarned()
			if got := ranNames(sum); got != "//p:rev //p:upper" {
				t.Errorf("ran %q, want //p:rev //p:upper", got)
			}
			if got := w.out("upper"); got != "HELLO\n" {
				t.Errorf("upper.out = %q after the rebuild", got)
			}
			if got := w.out("rev"); got != "OLLEH\n" {
				t.Errorf("rev.out = %q: it read a damaged input", got)
			}
			p := filepath.Join(w.root, OutDir, "p", "upper.out")
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o444 {
				t.Errorf("lego-out/p/upper.out: %v, mode %v; want 0444", err, st.Mode())
			}
			if b, err := os.ReadFile(w.blobFile("HELLO\n")); err != nil || string(b) != "HELLO\n" {
				t.Errorf("blob after the rebuild: %q, %v", b, err)
			}
			joined := strings.Join(warns, "\n")
			if tc.warn && (len(warns) != 1 || !strings.HasPrefix(joined, "//p:upper: cached output lego-out/p/upper.out was corrupt")) {
				t.Errorf("warnings %q; want one on //p:upper", warns)
			}
			if !tc.warn && len(warns) != 0 {
				t.Errorf("warnings %q; want none for a missing blob", warns)
			}
			// And then the cache is whole again.
			if sum, warns := w.buildWarned(); len(sum.Ran) != 0 || len(warns) != 0 {
				t.Errorf("next build ran %v, warned %q", sum.Ran, warns)
			}
		})
	}
}

// cutLastField drops the last top-level field of an action-cache entry's
// ActionResult, whatever the header before it: what is left is still a
// valid protobuf (here without its execution metadata).
func cutLastField(t *testing.T, b []byte) []byte {
	start := 0
	if len(b) > 0 && b[0] == 0 {
		start = 8 // the checksummed format's header
	}
	last := start
	for i := start; i < len(b); {
		_, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			t.Fatalf("entry does not parse at %d", i)
		}
		m := protowire.ConsumeFieldValue(0, typ, b[i+n:])
		if m < 0 {
			t.Fatalf("entry does not parse at %d", i)
		}
		last = i
		i += n + m
	}
	return b[:last]
}

// Damaged action-cache entries are misses: the actions run again and the
// build succeeds with the right outputs. While the packed index holds the
// entries intact (its records are checksummed), it serves them instead.
func TestActionCacheDamageRebuilt(t *testing.T) {
	for _, indexed := range []bool{false, true} {
		testActionCacheDamage(t, indexed)
	}
}

func testActionCacheDamage(t *testing.T, indexed bool) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"cut at a field boundary", func(b []byte) []byte { return cutLastField(t, b) }},
		{"cut mid-field", func(b []byte) []byte { return b[:len(b)*2/3] }},
		{"byte flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"garbage", func(b []byte) []byte { return []byte("\x12\xff\xff not an entry") }},
		{"empty", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := verifyWS(t)
			n := 0
			filepath.Walk(filepath.Join(w.cache, "ac"), func(p string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() {
					return err
				}
				b, _ := os.ReadFile(p)
				n++
				return os.WriteFile(p, tc.damage(b), 0o644)
			})
			if n != 5 {
				t.Fatalf("%d action-cache entries, want 5", n)
			}
			if indexed {
				w.ran()
				if w.out("report") != "total 6\n" || w.out("rev") != "OLLEH\n" {
					t.Errorf("outputs %q %q", w.out("report"), w.out("rev"))
				}
				return
			}
			if err := os.RemoveAll(filepath.Join(w.cache, "acindex")); err != nil {
				t.Fatal(err)
			}
			w.ran("//p:count", "//p:report", "//p:rev", "//p:side", "//p:upper")
			if w.out("report") != "total 6\n" || w.out("rev") != "OLLEH\n" {
				t.Errorf("outputs %q %q", w.out("report"), w.out("rev"))
			}
			w.ran()
		})
	}
}

// A null build leaves a tree output as it is: relinking its files would
// move their ctimes, and the store would hash them all on the next build.
func TestNullBuildKeepsTrees(t *testing.T) {
	w := newWS(t)
	w.shOut("tree", nil, "d/", "mkdir -p $OUT/sub && echo a > $OUT/a && echo b > $OUT/sub/b")
	w.ran("//p:tree")
	dir := filepath.Join(w.root, OutDir, "p", "d")
	ino := func() [2]uint64 {
		a, err1 := os.Stat(dir)
		b, err2 := os.Stat(filepath.Join(dir, "sub", "b"))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		return [2]uint64{a.Sys().(*syscall.Stat_t).Ino, uint64(b.Sys().(*syscall.Stat_t).Ctim.Nano())}
	}
	before := ino()
	w.ran()
	if after := ino(); after != before {
		t.Errorf("null build replaced the tree (dir inode, file ctime) %v -> %v", before, after)
	}
	// A tree changed by hand is still put right.
	os.WriteFile(filepath.Join(dir, "extra"), []byte("x"), 0o644)
	w.ran()
	if _, err := os.Stat(filepath.Join(dir, "extra")); !os.IsNotExist(err) {
		t.Errorf("extra file kept: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sub", "b")); err != nil || string(b) != "b\n" {
		t.Errorf("sub/b = %q, %v", b, err)
	}
}
