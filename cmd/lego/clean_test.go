package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
)

// legoHome runs lego in dir with $HOME set to home.
func legoHome(t *testing.T, dir, home string, args ...string) result {
	t.Helper()
	cmd := exec.Command(legoBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{o.String(), e.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// clean --expunge deletes a cache, and nothing that is not one: before,
// --cache_dir=. inside a workspace deleted the workspace.
func TestCleanExpungeDeletesOnlyACache(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "ws")
	copyTree(t, "../../examples/basics", root)
	writeFiles(t, root, map[string]string{"mine/keep.bin": "unrelated data", "sub/nested/WORKSPACE": "", "sub/nested/x": "x"})
	home := filepath.Join(parent, "home")
	writeFiles(t, home, map[string]string{".bashrc": "# mine"})
	cache := filepath.Join(parent, "cache")
	if r := legoHome(t, root, home, "build", "//...", "--cache_dir="+cache); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	blobs := verifyStore(t, cache)
	ws, hm := treeState(t, root), treeState(t, home)
	for _, tc := range []struct {
		dir, cacheDir, want string
	}{
		{root, ".", "refusing to delete --cache_dir=" + root + ": it is a workspace root (it holds WORKSPACE)"},
		{filepath.Join(root, "mine"), "..", "refusing to delete --cache_dir=" + root + ": it is a workspace root"},
		{root, "..", "refusing to delete --cache_dir=" + parent + ": it holds the workspace " + root},
		{root, "sub/nested", "refusing to delete --cache_dir=" + filepath.Join(root, "sub/nested") + ": it is a workspace root"},
		{root, home, "refusing to delete --cache_dir=" + home + ": it is the home directory"},
		{root, "mine", "refusing to delete anything: " + filepath.Join(root, "mine") + " is not a lego cache: it has no LEGO_CACHE file and holds keep.bin"},
		{root, "", `invalid value "" for flag -cache_dir: empty`},
	} {
		r := legoHome(t, tc.dir, home, "clean", "--expunge", "--cache_dir="+tc.cacheDir)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("clean --expunge --cache_dir=%s in %s: exit %d\n%s\nwant %q", tc.cacheDir, tc.dir, r.code, r.stderr, tc.want)
		}
		// Refused before anything is deleted, lego-out included.
		if after := treeState(t, root); !reflect.DeepEqual(after, ws) {
			t.Fatalf("clean --expunge --cache_dir=%s changed the workspace: %d files before, %d after", tc.cacheDir, len(ws), len(after))
		}
	}
	if !reflect.DeepEqual(treeState(t, home), hm) {
		t.Error("clean --expunge changed $HOME")
	}
	if verifyStore(t, cache) != blobs {
		t.Error("a refused clean --expunge changed the cache")
	}

	// The cache itself: its entries go, and lego-out.
	writeFiles(t, cache, map[string]string{"README": "not lego's"})
	if r := legoHome(t, root, home, "clean", "--expunge", "--cache_dir="+cache); r.code != 0 {
		t.Fatalf("clean --expunge of the cache: %s", r.stderr)
	}
	if got := entries(t, cache); !reflect.DeepEqual(got, []string{"README", "lock"}) {
		t.Errorf("cache after clean --expunge: %v", got)
	}
	if _, err := os.Stat(filepath.Join(root, engine.OutDir)); !os.IsNotExist(err) {
		t.Errorf("clean --expunge left lego-out: %v", err)
	}
	ws2 := treeState(t, root)
	for p, v := range ws {
		if !strings.Contains(p, "/"+engine.OutDir+"/") && ws2[p] != v {
			t.Errorf("clean --expunge changed %s", p)
		}
	}
}

func TestCheckExpunge(t *testing.T) {
	root := t.TempDir()
	for dir, want := range map[string]string{
		"/":                      "refusing to delete --cache_dir=/: it is the filesystem root",
		"/.":                     "refusing to delete --cache_dir=/: it is the filesystem root",
		filepath.Dir(root):       "it holds the workspace " + root,
		root:                     "it holds the workspace " + root,
		"":                       "--cache_dir is empty",
		filepath.Join(root, "c"): "",
	} {
		err := checkExpunge(dir, root)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("checkExpunge(%q): %v, want %q", dir, err, want)
		}
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// .legorc mistakes are reported at their file and line; flags of common
// lines that a command does not take are left out for it.
func TestLegorcErrorsAndCommon(t *testing.T) {
	root := exampleWS(t)
	cache := t.TempDir()
	rc := filepath.Join(root, ".legorc")
	writeFiles(t, root, map[string]string{".legorc": "# defaults\ncommon --cache_dir=" + cache + " --keep_going -j 2\nquery --output=label\n"})
	// query takes --cache_dir but neither --keep_going nor -j.
	if r := lego(t, root, "query", "//..."); r.code != 0 || !strings.Contains(r.stdout, "//data:") {
		t.Fatalf("query with common build flags: exit %d\n%s", r.code, r.stderr)
	}
	mustLego(t, root, "build", "//...")
	if verifyStore(t, cache) == 0 {
		t.Error("the common line's --cache_dir was not used")
	}
	for _, tc := range []struct{ rc, cmd, want string }{
		{"common --keep_going\nbuild --jobs=many\n", "build", rc + `:2: invalid value "many" for flag --jobs: parse error`},
		{"\n\nquery --keep_going\n", "query", rc + ":3: unknown flag --keep_going for lego query"},
		{"build --keep_going\nbuild --define=" + strings.Repeat("x", 70<<10) + "\n", "build", rc + ":2: line longer than 64 KiB"},
		{"build --cache_dir=\n", "build", rc + `:1: invalid value "" for flag --cache_dir: empty`},
		{"clean //x\n", "clean", rc + `:1: "//x" is not a flag`},
		{"repro --report_json\n", "repro", rc + ":1: flag --report_json needs a value"},
		{"build --jobs=x\n", "repro", rc + `:1: invalid value "x" for flag --jobs`},
	} {
		writeFiles(t, root, map[string]string{".legorc": tc.rc})
		r := lego(t, root, tc.cmd, "//...")
		if r.code != 1 || !strings.Contains(r.stderr, "ERROR: "+tc.want) {
			t.Errorf(".legorc %.40q, lego %s: exit %d\n%s\nwant %q", tc.rc, tc.cmd, r.code, r.stderr, tc.want)
		}
	}
	// A store's Open is what refuses a cache_dir that is not one.
	writeFiles(t, root, map[string]string{".legorc": "build --cache_dir=.\n"})
	if r := lego(t, root, "build", "//..."); r.code != 1 || !strings.Contains(r.stderr, root+" is not a lego cache") {
		t.Errorf("build with the workspace as the cache: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, cas.MarkerFile)); !os.IsNotExist(err) {
		t.Errorf("the workspace was made a store: %v", err)
	}
}
