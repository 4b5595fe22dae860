package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

// tree maps every path under dir to its type, mode and content hash.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		v := info.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			v += " " + hex.EncodeToString(h[:])
		}
		out[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t testing.TB, before, after map[string]string) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		for p, v := range after {
			if before[p] != v {
				t.Errorf("%s: %q, was %q", p, v, before[p])
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%s disappeared", p)
			}
		}
	}
}

func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") { // a directory
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenWritesMarker(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "new", "cache"), t.TempDir()} {
		s := openDisk(t, dir)
		b := readFile(t, filepath.Join(dir, MarkerFile))
		if !strings.Contains(string(b), fmt.Sprintf("\nformat %d\n", markerFormat)) {
			t.Errorf("marker %q has no format line", b)
		}
		d := mustPut(t, s, []byte("kept"))
		if got, err := openDisk(t, dir).Get(d); err != nil || string(got) != "kept" {
			t.Errorf("reopened store: %q %v", got, err)
		}
		if got := entries(t, dir); len(got) != 7 {
			t.Errorf("store holds %v; want the layout and the marker only", got)
		}
	}
}

func TestOpenAdoptsOlderStore(t *testing.T) {
	// As a lego before the marker left it, with a blob in it.
	dir := t.TempDir()
	body := []byte("old blob")
	d := DigestOf(body)
	writeTree(t, dir, map[string]string{
		"cas/" + d.Hash[:2] + "/" + d.Hash: string(body),
		"ac/":                              "", "tmp/exec-1/": "", "usage/": "", "cas-x/": "", "filecache/f": "x",
		"lock": "", "gcgen": "0123",
	})
	s := openDisk(t, dir)
	if got, err := s.Get(d); err != nil || string(got) != string(body) {
		t.Errorf("blob of the older store: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, MarkerFile)); err != nil {
		t.Errorf("older store not marked: %v", err)
	}
	// What Expunge leaves (the lock file) is a store too.
	if err := Expunge(dir); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); !reflect.DeepEqual(got, []string{"lock"}) {
		t.Errorf("after Expunge: %v", got)
	}
	openDisk(t, dir)
}

func TestOpenRefusesForeignDirectory(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"workspace":  {"WORKSPACE": "", "BUILD": "genrule()", "src/a.txt": "data"},
		"home":       {".bashrc": "x", "notes/": ""},
		"only tmp/":  {"tmp/mine.txt": "mine"},
		"file cas":   {"cas": "not a dir", "ac/": ""},
		"one more":   {"cas/": "", "ac/": "", "important.db": "x"},
		"no marker?": {"LEGO_CACHE.bak": "format 1\n"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, files)
			before := tree(t, dir)
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), dir+" is not a lego cache") {
				t.Fatalf("Open: %v", err)
			}
			sameTree(t, before, tree(t, dir))
			err = Expunge(dir)
			if err == nil || !strings.Contains(err.Error(), "refusing to delete anything: "+dir+" is not a lego cache") {
				t.Fatalf("Expunge: %v", err)
			}
			sameTree(t, before, tree(t, dir))
		})
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"WORKSPACE": "", "BUILD": "", "c/d": ""})
	_, err := Open(dir)
	if want := dir + " is not a lego cache: it has no LEGO_CACHE file and holds BUILD, WORKSPACE, c: use an empty or new directory"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Open: %v; want it to name what the directory holds", err)
	}
}

func TestOpenRefusesOtherFormat(t *testing.T) {
	for _, marker := range []string{"lego\nformat 2\n", "format x\n", "something else\n"} {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{MarkerFile: marker})
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, MarkerFile)) {
			t.Errorf("Open with marker %q: %v", marker, err)
		}
		if err := Expunge(dir); err == nil {
			t.Errorf("Expunge with marker %q succeeded", marker)
		}
	}
}

// Builds started together on a new cache all open it.
func TestOpenConcurrentNewStore(t *testing.T) {
	for range 20 {
		dir := filepath.Join(t.TempDir(), "c")
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = Open(dir)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestExpunge(t *testing.T) {
	s := newDisk(t)
	dir := s.Dir()
	d := mustPut(t, s, []byte("blob"))
	if err := s.PutActionResult(bg, d, &repb.ActionResult{ExitCode: 3}, Here); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TempDir("exec-"); err != nil {
		t.Fatal(err)
	}
	// Not lego's: kept.
	writeTree(t, dir, map[string]string{"notes.txt": "mine"})
	if err := Expunge(dir); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); !reflect.DeepEqual(got, []string{"lock", "notes.txt"}) {
		t.Errorf("after Expunge: %v", got)
	}
	// Nothing to delete: no error.
	if err := Expunge(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("Expunge of a missing directory: %v", err)
	}
	empty := t.TempDir()
	if err := Expunge(empty); err != nil || len(entries(t, empty)) != 0 {
		t.Errorf("Expunge of an empty directory: %v, left %v", err, entries(t, empty))
	}
	if err := Expunge(""); err == nil {
		t.Error("Expunge(\"\") succeeded")
	}
}
