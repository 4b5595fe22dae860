package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/legobuild/lego/cas"
)

// verifyWS: up reads a source, rev reads up's bytes; --define pipe='| cat'
// changes rev's command, so it runs again and reads up from the store.
func verifyWS(t *testing.T) (root, cache string) {
	root, cache = t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "workspace(name = \"v\")\n",
		"p/a.txt":   "hello\n",
		"p/BUILD": `genrule(name = "up", srcs = ["a.txt"], outs = ["up.out"], cmd = "tr a-z A-Z < $(SRCS) > $@")
genrule(name = "rev", srcs = [":up"], outs = ["rev.out"], cmd = "rev $(SRCS) " + config("pipe", default = "") + " > $@")
`,
	})
	mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	return root, cache
}

func readOut(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "lego-out", "p", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A user who makes an output writable and edits it in place has written
// the store's blob (lego-out holds hardlinks): the next build says so,
// rebuilds it, and what reads it gets the real bytes.
func TestEditedOutputRestored(t *testing.T) {
	root, cache := verifyWS(t)
	p := filepath.Join(root, "lego-out", "p", "up.out")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("J"), 0) // HELLO -> JELLO, same size
	f.Close()

	r := mustLego(t, root, "build", "//...", "--cache_dir="+cache, "--define", "pipe=| cat")
	if !strings.Contains(r.stderr, "WARNING: //p:up: cached output lego-out/p/up.out was corrupt") {
		t.Errorf("no warning naming //p:up:\n%s", r.stderr)
	}
	if _, ran, _ := counts(t, r); ran != 2 {
		t.Errorf("ran %d actions, want 2 (up again, rev with its new command)\n%s", ran, r.stderr)
	}
	if got := readOut(t, root, "up.out"); got != "HELLO\n" {
		t.Errorf("up.out = %q, want it restored", got)
	}
	if got := readOut(t, root, "rev.out"); got != "OLLEH\n" {
		t.Errorf("rev.out = %q: rev read the edited bytes", got)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("up.out: %v, mode %v; want read-only", err, st.Mode())
	}
	verifyStore(t, cache)
}

// lego verify re-hashes everything: it finds the rot a stat cannot see,
// evicts it, names it and exits 3; the next build rebuilds it.
func TestVerifyCommand(t *testing.T) {
	root, cache := verifyWS(t)
	if r := lego(t, root, "verify", "--cache_dir="+cache); r.code != 0 || !strings.Contains(r.stdout, "all sound") {
		t.Fatalf("verify of a sound cache: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d := cas.DigestOf([]byte("HELLO\n"))
	blob := filepath.Join(cache, "cas", d.Hash[:2], d.Hash)
	st, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, []byte("HELLX\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(blob, st.ModTime(), st.ModTime())
	var entry string
	filepath.Walk(filepath.Join(cache, "ac"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && entry == "" {
			entry = p
		}
		return err
	})
	if err := os.WriteFile(entry, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := lego(t, root, "verify", "--cache_dir="+cache)
	rel := func(p string) string { s, _ := filepath.Rel(cache, p); return s }
	if r.code != 3 || !strings.Contains(r.stdout, "evicted 1 corrupt blob file(s) and 1 damaged action result(s)") ||
		!strings.Contains(r.stdout, rel(blob)+": content hashes to") || !strings.Contains(r.stdout, rel(entry)+": damaged action result") {
		t.Fatalf("verify of a damaged cache: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("corrupt blob not evicted: %v", err)
	}
	if r := lego(t, root, "gc", "--verify", "--cache_dir="+cache); r.code != 0 || !strings.Contains(r.stdout, "all sound") {
		t.Errorf("gc --verify after the eviction: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mustLego(t, root, "build", "//...", "--cache_dir="+cache, "--define", "pipe=| cat")
	if got := readOut(t, root, "rev.out"); got != "OLLEH\n" {
		t.Errorf("rev.out = %q after verify and a build", got)
	}
	if got := readOut(t, root, "up.out"); got != "HELLO\n" {
		t.Errorf("up.out = %q after verify and a build", got)
	}
	verifyStore(t, cache)
}
