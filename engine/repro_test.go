package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors/local"
)

// shOut declares a target like sh, with the output named out.
func (w *ws) shOut(name string, srcs []string, out, cmd string) {
	w.sh(name, srcs, cmd)
	d := w.decl[name]
	d[2] = out
	w.decl[name] = d
}

// repro re-executes every declared target into a new scratch store, which
// the test may inspect.
func (w *ws) repro() (*ReproReport, *cas.Disk, error) {
	w.t.Helper()
	scratch, err := cas.Open(filepath.Join(w.t.TempDir(), "scratch"))
	if err != nil {
		w.t.Fatal(err)
	}
	var rep *ReproReport
	err = w.withGraph(func(g *Graph, targets []*Target, o Options) error {
		o.Executor = local.New(scratch, w.local)
		var err error
		rep, err = Repro(context.Background(), g, targets, o, scratch)
		return err
	})
	return rep, scratch, err
}

// snapshot maps every file under the store's blobs and action cache and
// the workspace's lego-out to its inode, mode and content hash.
func snapshot(t *testing.T, w *ws) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range []string{filepath.Join(w.cache, "cas"), filepath.Join(w.cache, "cas-x"), filepath.Join(w.cache, "ac"), filepath.Join(w.root, OutDir)} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			out[p] = fmt.Sprintf("%d %v %s", st.Sys().(*syscall.Stat_t).Ino, st.Mode(), hex.EncodeToString(h[:]))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestReproFindsNondeterministicAction(t *testing.T) {
	w := newWS(t)
	os.MkdirAll(filepath.Join(w.root, "p"), 0o755)
	w.file("a.txt", "hello\n")
	w.sh("upper", []string{"a.txt"}, "tr a-z A-Z < $SRCS > $OUT")
	// A directory with a stable file and two random ones: the first by
	// relative path is sub/t, though a walk of the tree meets z first.
	w.shOut("noise", []string{"upper"}, "noise.d/",
		"mkdir -p $OUT/sub; cp $SRCS $OUT/a; head -c 16 /dev/urandom > $OUT/sub/t; head -c 16 /dev/urandom > $OUT/z")
	// Identical only if it gets noise's cached outputs again.
	w.sh("sum", []string{"noise"}, "cat $SRCS/sub/t $SRCS/z | sha256sum > $OUT")

	if _, _, err := w.repro(); err == nil || !strings.Contains(err.Error(), "no cached result") {
		t.Fatalf("repro before any build: %v", err)
	}
	w.ran("//p:noise", "//p:sum", "//p:upper")
	before := snapshot(t, w)

	rep, scratch, err := w.repro()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reexecuted != 3 || rep.Identical != 2 || rep.Differ != 1 || rep.Failed != 0 ||
		!reflect.DeepEqual(rep.DifferTargets, []string{"//p:noise"}) {
		t.Fatalf("report %+v", rep)
	}
	status := map[string]*ReproAction{}
	for _, r := range rep.Actions {
		status[r.Label] = r
	}
	for _, l := range []string{"//p:upper", "//p:sum"} {
		if r := status[l]; r == nil || r.Status != ReproIdentical || r.File != "" {
			t.Errorf("%s: %+v, want identical", l, r)
		}
	}
	n := status["//p:noise"]
	if n.Status != ReproDiffers || n.File != "lego-out/p/noise.d/sub/t" || n.CachedDigest == "" || n.RerunDigest == "" || n.CachedDigest == n.RerunDigest {
		t.Fatalf("noise: %+v, want differs at lego-out/p/noise.d/sub/t with both digests", n)
	}

	// The re-executed output went to the scratch store only, and nothing
	// of the main store or lego-out changed.
	hash, _, _ := strings.Cut(n.RerunDigest, "/")
	d := &repb.Digest{Hash: hash, SizeBytes: 16}
	if !scratch.Has(d) {
		t.Error("the re-executed output is not in the scratch store")
	}
	if after := snapshot(t, w); !reflect.DeepEqual(before, after) {
		for p, v := range after {
			if before[p] != v {
				t.Errorf("%s changed or appeared", p)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%s disappeared", p)
			}
		}
	}
	w.ran() // still fully cached
}

func TestReproReportsFailedReexecution(t *testing.T) {
	w := newWS(t)
	w.local.Unsandboxed = true
	mark := filepath.Join(t.TempDir(), "ran-once")
	w.sh("once", nil, "test -e "+mark+" && { echo second run >&2; exit 4; }; touch "+mark+"; echo ok > $OUT")
	w.sh("fine", nil, "echo fine > $OUT")
	w.ran("//p:fine", "//p:once")
	rep, _, err := w.repro()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reexecuted != 2 || rep.Identical != 1 || rep.Failed != 1 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Actions {
		if r.Label == "//p:once" && (r.Status != ReproFailed || !strings.Contains(r.Error, "exit code 4") || !strings.Contains(r.Error, "second run")) {
			t.Errorf("once: %+v", r)
		}
	}
}

// An action that writes to its input through the hard link on its
// re-execution must not leave a corrupt blob in the main store.
func TestReproDropsInputCorruptedThroughLink(t *testing.T) {
	w := newWS(t)
	w.local.Unsandboxed = true
	os.MkdirAll(filepath.Join(w.root, "p"), 0o755)
	w.file("a.txt", "hello\n")
	mark := filepath.Join(t.TempDir(), "ran-once")
	w.sh("spoil", []string{"a.txt"}, "test -e "+mark+" && { chmod u+w $SRCS; echo spoiled >> $SRCS; }; touch "+mark+"; tr a-z A-Z < $SRCS > $OUT")
	w.ran("//p:spoil")
	rep, _, err := w.repro()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || !strings.Contains(rep.Actions[0].Error, "modified input") {
		t.Fatalf("report %+v", rep.Actions[0])
	}
	err = filepath.WalkDir(filepath.Join(w.cache, "cas"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if h := sha256.Sum256(b); err == nil && hex.EncodeToString(h[:]) != d.Name() {
			t.Errorf("corrupt blob %s left in the main store", d.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.out("spoil"); got != "HELLO\n" {
		t.Errorf("spoil.out = %q", got)
	}
}
