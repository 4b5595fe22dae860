package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapWS is a workspace whose upper → count → final chain shows change
// pruning (count's output is a byte count), and whose glob target shows a
// listed directory as a read of analysis.
func snapWS(t *testing.T) string {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": `workspace(name = "snap")` + "\n",
		"p/BUILD": `
genrule(name = "upper", srcs = ["a.txt"], outs = ["upper.out"], cmd = "tr a-z A-Z < $< > $@")
genrule(name = "count", srcs = [":upper"], outs = ["count.out"], cmd = "wc -c < $< > $@")
genrule(name = "final", srcs = [":count", "b.txt"], outs = ["final.out"], cmd = "cat $(SRCS) > $@")
genrule(name = "all", srcs = glob(["data/*.txt"]), outs = ["all.out"], cmd = "cat $(SRCS) > $@")
`,
		"p/a.txt":      "hello\n",
		"p/b.txt":      "b\n",
		"p/data/1.txt": "one\n",
	})
	return root
}

// snapBuild builds //... with the snapshot's decision shown, and returns
// the run and that decision.
func snapBuild(t *testing.T, root, cache string, extra ...string) (result, string) {
	t.Helper()
	cmd := append([]string{"build", "//...", "--cache_dir=" + cache}, extra...)
	os.Setenv("LEGO_DEBUG_SNAPSHOT", "1")
	defer os.Unsetenv("LEGO_DEBUG_SNAPSHOT")
	r := mustLego(t, root, cmd...)
	for _, l := range strings.Split(r.stderr, "\n") {
		if s, ok := strings.CutPrefix(l, "DEBUG: snapshot: "); ok {
			s, _, _ = strings.Cut(s, " (rehashed ") // which file moved
			return r, s
		}
	}
	t.Fatalf("no snapshot decision in:\n%s", r.stderr)
	return r, ""
}

func snapOut(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "lego-out/p", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rewriteKeepingTimes writes content of the same size into path and puts
// its mtime back (touch -r): only the ctime and the bytes tell.
func rewriteKeepingTimes(t *testing.T, path, content string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(content)) != st.Size() {
		t.Fatalf("%q is not %d bytes", content, st.Size())
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.Stat(path); !now.ModTime().Equal(st.ModTime()) || now.Size() != st.Size() {
		t.Fatal("size and mtime not preserved")
	}
}

func TestSnapshotNullAndIncrementalBuilds(t *testing.T) {
	root, cache := snapWS(t), t.TempDir()
	if r, why := snapBuild(t, root, cache); why != "no snapshot" {
		t.Fatalf("first build: snapshot %q\n%s", why, r.stderr)
	}
	r, why := snapBuild(t, root, cache)
	if _, ran, cached := counts(t, r); why != "used" || ran != 0 || cached != 4 {
		t.Fatalf("null build: snapshot %q, %d ran, %d cached\n%s", why, ran, cached, r.stderr)
	}

	// The same size and mtime: ctime and then the digest tell. upper
	// reruns, count reruns and makes the same bytes, final does not.
	rewriteKeepingTimes(t, filepath.Join(root, "p/a.txt"), "world\n")
	r, why = snapBuild(t, root, cache, "--progress=lines")
	if _, ran, _ := counts(t, r); why != "used" || ran != 2 {
		t.Fatalf("after a same-size edit: snapshot %q, %d ran, want 2 (upper, count)\n%s", why, ran, r.stderr)
	}
	if got := snapOut(t, root, "upper.out"); got != "WORLD\n" {
		t.Fatalf("upper.out = %q", got)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, " ran ") && strings.Contains(l, "//p:final") {
			t.Errorf("final reran though its inputs kept their bytes:\n%s", r.stderr)
		}
	}
	if ex := mustLego(t, root, "explain", "//p:upper"); !strings.Contains(ex.stdout, "input changed: p/a.txt") {
		t.Fatalf("explain after a build from the snapshot:\n%s", ex.stdout)
	}

	// An output deleted or edited in lego-out is put back.
	os.Remove(filepath.Join(root, "lego-out/p/final.out"))
	r, why = snapBuild(t, root, cache)
	if _, ran, _ := counts(t, r); why != "used" || ran != 0 || snapOut(t, root, "final.out") != "6\nb\n" {
		t.Fatalf("deleted output: snapshot %q, %d ran, final.out %q\n%s", why, ran, snapOut(t, root, "final.out"), r.stderr)
	}

	// A new file in a globbed directory: analysis runs again.
	writeFiles(t, root, map[string]string{"p/data/2.txt": "two\n"})
	r, why = snapBuild(t, root, cache)
	if _, ran, _ := counts(t, r); !strings.Contains(why, "changed") || ran != 1 || snapOut(t, root, "all.out") != "one\ntwo\n" {
		t.Fatalf("new globbed file: snapshot %q, %d ran, all.out %q\n%s", why, ran, snapOut(t, root, "all.out"), r.stderr)
	}
	// A BUILD edit, likewise.
	build, _ := os.ReadFile(filepath.Join(root, "p/BUILD"))
	writeFiles(t, root, map[string]string{"p/BUILD": strings.Replace(string(build), "tr a-z A-Z < $<", "rev < $< | tr a-z A-Z", 1)})
	r, why = snapBuild(t, root, cache)
	if _, ran, _ := counts(t, r); !strings.Contains(why, "changed") || ran != 2 || snapOut(t, root, "upper.out") != "DLROW\n" {
		t.Fatalf("BUILD edit: snapshot %q, %d ran, upper.out %q\n%s", why, ran, snapOut(t, root, "upper.out"), r.stderr)
	}
	if _, why = snapBuild(t, root, cache); why != "used" {
		t.Fatalf("null build after the BUILD edit: snapshot %q", why)
	}
}

func TestSnapshotIgnoredWhenDamagedOrForeign(t *testing.T) {
	root, cache := snapWS(t), t.TempDir()
	snapBuild(t, root, cache)
	snaps, _ := filepath.Glob(filepath.Join(root, "lego-out/.lego/snapshots/*"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots: %v", snaps)
	}
	good, err := os.ReadFile(snaps[0])
	if err != nil {
		t.Fatal(err)
	}
	// While the snapshot is unusable, an edit is still built.
	edits := []string{"jello\n", "mello\n", "cello\n", "yello\n"}
	for i, damage := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b },
		func(b []byte) []byte { return b[:len(b)/3] },
		func(b []byte) []byte { return append(b, 0) },
		func([]byte) []byte { return nil },
	} {
		if err := os.WriteFile(snaps[0], damage(append([]byte(nil), good...)), 0o644); err != nil {
			t.Fatal(err)
		}
		rewriteKeepingTimes(t, filepath.Join(root, "p/a.txt"), edits[i])
		r, why := snapBuild(t, root, cache)
		if why == "used" {
			t.Fatalf("damage %d: the snapshot was used\n%s", i, r.stderr)
		}
		if got, want := snapOut(t, root, "upper.out"), strings.ToUpper(edits[i]); got != want {
			t.Fatalf("damage %d (%s): upper.out = %q, want %q", i, why, got, want)
		}
		good, _ = os.ReadFile(snaps[0]) // the build left a sound one
	}
	if _, why := snapBuild(t, root, cache); why != "used" {
		t.Fatalf("the rebuilt snapshot: %q", why)
	}

	// Other flags: another key, so the snapshot of these is not read,
	// and a --define reaches the BUILD file.
	writeFiles(t, root, map[string]string{"q/BUILD": `genrule(name = "d", outs = ["d.out"], cmd = "echo " + config("word", "plain") + " > $@")`})
	snapBuild(t, root, cache)
	r, why := snapBuild(t, root, cache, "--define", "word=fancy")
	if why != "no snapshot" {
		t.Fatalf("--define: snapshot %q\n%s", why, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "lego-out/q/d.out")); string(b) != "fancy\n" {
		t.Fatalf("d.out = %q", b)
	}
	if _, why := snapBuild(t, root, cache); why != "used" {
		t.Fatalf("back to the first flags: snapshot %q", why)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "lego-out/q/d.out")); string(b) != "plain\n" {
		t.Fatalf("d.out = %q after the first flags again", b)
	}

	// Another lego binary: its own key.
	other := filepath.Join(t.TempDir(), "lego")
	b, err := os.ReadFile(legoBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o755); err != nil {
		t.Fatal(err)
	}
	saved := legoBin
	legoBin = other
	defer func() { legoBin = saved }()
	if r, why := snapBuild(t, root, cache); why != "no snapshot" {
		t.Fatalf("another binary: snapshot %q\n%s", why, r.stderr)
	}
}
