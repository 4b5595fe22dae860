package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/legobuild/lego/cas"
)

// The snapshot codec writes each field of Action and File by name: a new
// field must be added to encodeGraph and decodeGraph, or a graph restored
// from a snapshot would silently lack it.
func TestSnapshotCoversAction(t *testing.T) {
	known := map[reflect.Type][]string{
		reflect.TypeOf(Action{}): {"Owner", "Mnemonic", "Args", "Env", "Inputs", "Outputs", "Resources", "Timeout",
			"Tools", "HostPaths", "AsRoot", "Platform", "Image", "Network", "SecretEnv", "LayerOutput", "Progress",
			"Tally", "IsWrite", "Content", "id", "body"},
		reflect.TypeOf(File{}):      {"Path", "Owner", "Source", "Dir", "Executable", "producer"},
		reflect.TypeOf(Resources{}): {"CPU", "Memory", "GPUs", "GPUMemory", "GPUModel"},
	}
	for typ, names := range known {
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); !slices.Contains(names, f.Name) {
				t.Errorf("%s.%s is not in the build snapshot (snapgraph.go)", typ.Name(), f.Name)
			}
		}
	}
}

// labels are w's targets, in the order a //... build lists them.
func (w *ws) labels() []Label {
	var out []Label
	for _, n := range slices.Sorted(slices.Values(w.order)) {
		out = append(out, Label{"p", n})
	}
	return out
}

// snapshotOf builds w with a snapshot spec and reads the snapshot back.
func snapshotOf(t *testing.T, w *ws, key SnapshotKey) (*Snapshot, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snap")
	_, err := w.build(func(o *Options) {
		o.Snapshot = &SnapshotSpec{Path: path, Key: key, Labels: w.labels()}
	})
	if err != nil {
		t.Fatal(err)
	}
	s, why := ReadSnapshot(path, key, w.root)
	if s == nil {
		t.Fatalf("snapshot not read back: %s", why)
	}
	return s, path
}

func TestSnapshotRoundTripsTheGraph(t *testing.T) {
	w := chain(t)
	key := SnapshotKey{Root: w.root, Patterns: []string{"//..."}, Flags: []string{"define="}}
	s, path := snapshotOf(t, w, key)
	var orig *Graph
	w.withGraph(func(g *Graph, _ []*Target, _ Options) error { orig = g; return nil })
	g, targets := s.Graph()
	if len(targets) != 4 || targets[0].Label != (Label{"p", "count"}) || len(g.Actions) != len(orig.Actions) {
		t.Fatalf("restored %d targets, %d actions; want 4 and %d", len(targets), len(g.Actions), len(orig.Actions))
	}
	strip := func(a *Action) Action {
		c := *a
		c.Inputs, c.Outputs = nil, nil
		return c
	}
	for _, a := range g.Actions {
		if err := g.complete(a); err != nil {
			t.Fatal(err)
		}
	}
	paths := func(fs []*File) (out []string) {
		for _, f := range fs {
			out = append(out, f.Path)
			if f.producer != nil {
				out = append(out, "by "+f.producer.Describe())
			}
		}
		return out
	}
	for i, a := range orig.Actions {
		b := g.Actions[i]
		if !reflect.DeepEqual(strip(a), strip(b)) || !reflect.DeepEqual(paths(a.Inputs), paths(b.Inputs)) || !reflect.DeepEqual(paths(a.Outputs), paths(b.Outputs)) {
			t.Errorf("action %d:\n got %+v\nwant %+v", i, b, a)
		}
	}
	if attrs := g.attrText(g.Targets[Label{"p", "count"}]); attrs["cmd"] != FormatAttr(orig.Targets[Label{"p", "count"}].Attrs["cmd"]) || len(attrs) != 3 {
		t.Errorf("restored attrs %v", attrs)
	}

	// Another key, and every kind of damage, read as no snapshot.
	if s, _ := ReadSnapshot(path, SnapshotKey{Root: w.root, Patterns: []string{"//..."}, Flags: []string{"define=x=1"}}, w.root); s != nil {
		t.Error("a snapshot was read for other flags")
	}
	good, _ := os.ReadFile(path)
	for i := 0; i < len(good); i += max(1, len(good)/97) {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x10
		os.WriteFile(path, bad, 0o644)
		if s, _ := ReadSnapshot(path, key, w.root); s != nil {
			t.Fatalf("a snapshot with byte %d flipped was read", i)
		}
	}
}

// A build given the prior check keys and runs only the actions whose
// inputs changed, and stops where a rerun made the same bytes.
func TestPriorRunsOnlyWhatChanged(t *testing.T) {
	w := newWS(t)
	os.MkdirAll(filepath.Join(w.root, "p"), 0o755)
	w.file("in.txt", "abc\n")
	w.sh("a", []string{"in.txt"}, "tr a-z A-Z < $SRCS > $OUT")
	w.sh("b", []string{"a"}, "wc -c < $SRCS > $OUT")
	w.file("extra.txt", "e\n")
	w.sh("c", []string{"b", "extra.txt"}, "cat $SRCS $SRCS > $OUT")
	key := SnapshotKey{Root: w.root}
	s, path := snapshotOf(t, w, key)
	build := func() *Summary {
		t.Helper()
		files, _ := cas.OpenFileCache(filepath.Join(w.cache, "files"))
		p := s.Check(files)
		if p == nil {
			t.Fatal("check refused the snapshot")
		}
		g, targets := s.Graph()
		var sum *Summary
		w.withGraph(func(_ *Graph, _ []*Target, o Options) error {
			o.Prior, o.Snapshot = p, &SnapshotSpec{Path: path, Key: key, Labels: w.labels()}
			var err error
			if sum, err = Build(context.Background(), g, targets, o); err != nil {
				t.Fatal(err)
			}
			return nil
		})
		var why string
		if s, why = ReadSnapshot(path, key, w.root); s == nil {
			t.Fatal(why)
		}
		return sum
	}
	if sum := build(); sum.Executed != 0 || sum.Cached != 3 {
		t.Fatalf("null build from the snapshot: %+v", sum)
	}
	w.file("in.txt", "xyz\n")
	if sum := build(); !reflect.DeepEqual(sum.Ran, []string{"//p:a Sh p/a.out", "//p:b Sh p/b.out"}) {
		t.Fatalf("after an edit ran %v, want a and b (b made the same count)", sum.Ran)
	}
	if got := w.out("a"); got != "XYZ\n" {
		t.Fatalf("a.out = %q", got)
	}
	// An output changed in lego-out is no longer taken as it is.
	os.Remove(filepath.Join(w.root, "lego-out/p/c.out"))
	os.WriteFile(filepath.Join(w.root, "lego-out/p/c.out"), []byte("tampered"), 0o644)
	if sum := build(); sum.Executed != 0 || w.out("c") != "4\ne\n4\ne\n" {
		t.Fatalf("tampered output: %d executed, c.out %q", sum.Executed, w.out("c"))
	}
	// b is taken as it is in lego-out while c runs again: the store lost
	// b's blob (an evicted copy, no GC), so it is stored again from there.
	sum := sha256.Sum256([]byte(w.out("b")))
	h := hex.EncodeToString(sum[:])
	if err := os.Remove(filepath.Join(w.cache, "cas", h[:2], h)); err != nil {
		t.Fatal(err)
	}
	w.file("extra.txt", "f\n")
	if sum := build(); !reflect.DeepEqual(sum.Ran, []string{"//p:c Sh p/c.out"}) || w.out("c") != "4\nf\n4\nf\n" {
		t.Fatalf("after the store lost b: ran %v, c.out %q", sum.Ran, w.out("c"))
	}
}

// The history log: records are found again by id after builds that ran
// other actions, the last line wins, and the older one-array file is read
// once and replaced.
func TestHistoryLog(t *testing.T) {
	dir := t.TempDir()
	legacy := `[{"label":"//p:a","mnemonic":"Sh","output":"lego-out/p/a.out","key":"k1","args":["x"]}]`
	os.WriteFile(filepath.Join(dir, "actions.json"), []byte(legacy), 0o644)
	h := OpenHistory(dir)
	h.record(&ActionRecord{Label: "//p:a", Mnemonic: "Sh", Output: "lego-out/p/a.out", Key: "k2", Args: []string{"y"}})
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "actions.json")); !os.IsNotExist(err) {
		t.Errorf("the old history file was kept: %v", err)
	}
	if r := h.ran[0]; len(r.Reasons) != 1 || r.Reasons[0] != "command line changed" {
		t.Errorf("reasons against the old file's record: %v", r.Reasons)
	}
	for i, args := range []string{"z", "w"} {
		h = OpenHistory(dir)
		h.record(&ActionRecord{Label: "//p:b", Mnemonic: "Sh", Output: "lego-out/p/b.out", Key: "b" + args})
		h.record(&ActionRecord{Label: "//p:a", Mnemonic: "Sh", Output: "lego-out/p/a.out", Key: args, Args: []string{args}})
		if err := h.Save(); err != nil {
			t.Fatal(err)
		}
		if i == 1 && (len(h.ran[0].Reasons) != 1 || h.ran[0].Reasons[0] != "command line changed") {
			t.Errorf("second append: reasons %v", h.ran[0].Reasons)
		}
	}
	h = OpenHistory(dir)
	h.mu.Lock()
	r := h.previous("//p:a lego-out/p/a.out")
	h.mu.Unlock()
	if r == nil || r.Key != "w" {
		t.Fatalf("latest record of a: %+v", r)
	}
}

// BenchmarkSnapshot reads a snapshot of a 10,000-action chain (each action
// reads its predecessor and a source, as bench's chain shape), checks it
// against the files and, as a build after an edit does, decodes its graph.
func BenchmarkSnapshot(b *testing.B) {
	root := b.TempDir()
	os.MkdirAll(filepath.Join(root, "p"), 0o755)
	const n = 10000
	pk := &Package{Name: "p", BuildFile: "p/BUILD", Targets: map[string]*Target{}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("t%d", i)
		src := fmt.Sprintf("s%d.txt", i)
		os.WriteFile(filepath.Join(root, "p", src), []byte(name), 0o644)
		srcs := []Label{{"p", src}}
		if i > 0 {
			srcs = append(srcs, Label{"p", fmt.Sprintf("t%d", i-1)})
		}
		pk.Targets[name] = &Target{Label: Label{"p", name}, Rule: shRule{}, Pos: "p/BUILD:1:1",
			Attrs: map[string]any{"srcs": srcs, "cmd": "cat $SRCS > $OUT", "out": name + ".out"}}
		pk.Order = append(pk.Order, name)
	}
	l := &memLoader{root: root, pkgs: map[string]*Package{"p": pk}}
	labels, _ := l.Expand(Pattern{Recursive: true})
	g, err := Analyze(l, labels)
	if err != nil {
		b.Fatal(err)
	}
	var sources []fileState
	acts := make([]actState, len(g.Actions))
	for i, a := range g.Actions {
		for _, f := range a.Inputs {
			if f.producer == nil {
				fp, _ := cas.Stat(filepath.Join(root, f.Path))
				sources = append(sources, fileState{path: f.Path, hash: strings.Repeat("a", 64), size: fp.Size, fp: fp})
			}
		}
		out := filepath.Join(root, a.Outputs[0].Path)
		os.MkdirAll(filepath.Dir(out), 0o755)
		os.WriteFile(out, []byte("x"), 0o644)
		fp, _ := cas.Stat(out)
		acts[i] = actState{known: true, owner: a.Owner.String(), mnem: a.Mnemonic, desc: a.Describe(), key: strings.Repeat("b", 64),
			keySize: 140, outs: []outState{{path: a.Outputs[0].Path, hash: strings.Repeat("c", 64), size: 1, fp: fp}}}
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].path < sources[j].path })
	key := SnapshotKey{Root: root}
	path := filepath.Join(root, "snap")
	if err := writeSnapshot(path, encodeSnapshot(key.hash(), "", "", "", nil, labels, g, nil, sources, nil, acts)); err != nil {
		b.Fatal(err)
	}
	files, _ := cas.OpenFileCache(filepath.Join(root, "files"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, why := ReadSnapshot(path, key, root)
		if s == nil {
			b.Fatal(why)
		}
		if p := s.Check(files); p == nil || !p.Settled() {
			b.Fatal("not settled")
		}
		if g, _ := s.Graph(); g == nil {
			b.Fatal("no graph")
		}
	}
}
