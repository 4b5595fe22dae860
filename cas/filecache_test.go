package cas

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// writeOld writes a file and dates it back past the racy window.
func writeOld(t testing.TB, path string, b []byte, perm os.FileMode, ago time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
	backdate(t, path, ago)
}

func digestOK(t testing.TB, c *FileCache, path string, want []byte) bool {
	t.Helper()
	d, exec, err := c.Digest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d, DigestOf(want)) {
		t.Fatalf("Digest(%s) = %v, want %v", path, d, DigestOf(want))
	}
	return exec
}

func TestFileCache(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		change    func(t *testing.T, p string) []byte // returns the new content
		reHashed  bool
		cacheable bool // whether the second result is recorded
	}{
		{"unchanged", func(t *testing.T, p string) []byte { return []byte("hello") }, false, true},
		{"same size new content new mtime", func(t *testing.T, p string) []byte {
			writeOld(t, p, []byte("jello"), 0o644, 30*time.Minute)
			return []byte("jello")
		}, true, true},
		{"touched", func(t *testing.T, p string) []byte {
			backdate(t, p, 10*time.Minute)
			return []byte("hello")
		}, true, true},
		{"chmod (ctime)", func(t *testing.T, p string) []byte {
			os.Chmod(p, 0o600)
			return []byte("hello")
		}, true, true},
		{"replaced, same size and mtime (inode)", func(t *testing.T, p string) []byte {
			st, _ := os.Stat(p)
			tmp := p + ".new"
			os.WriteFile(tmp, []byte("HELLO"), 0o644)
			os.Chtimes(tmp, st.ModTime(), st.ModTime())
			os.Rename(tmp, p)
			return []byte("HELLO")
		}, true, true},
		{"rewritten just now (racy)", func(t *testing.T, p string) []byte {
			os.WriteFile(p, []byte("fresh!"), 0o644)
			return []byte("fresh!")
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			writeOld(t, p, []byte("hello"), 0o644, time.Hour)
			c, _ := OpenFileCache(filepath.Join(dir, tc.name+".cache"))
			digestOK(t, c, p, []byte("hello"))
			digestOK(t, c, p, []byte("hello"))
			if c.Hashed() != 1 {
				t.Fatalf("Hashed = %d after two lookups of an old file, want 1", c.Hashed())
			}
			want := tc.change(t, p)
			digestOK(t, c, p, want)
			if got := c.Hashed() == 2; got != tc.reHashed {
				t.Errorf("re-hashed = %v, want %v", got, tc.reHashed)
			}
			before := c.Hashed()
			digestOK(t, c, p, want)
			if got := c.Hashed() == before; got != tc.cacheable {
				t.Errorf("third lookup cached = %v, want %v", got, tc.cacheable)
			}
		})
	}
}

func TestFileCacheRacyNotRecorded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new")
	os.WriteFile(p, []byte("just written"), 0o644)
	c, _ := OpenFileCache(filepath.Join(t.TempDir(), "cache"))
	for i := 1; i <= 3; i++ {
		digestOK(t, c, p, []byte("just written"))
		if c.Hashed() != i {
			t.Fatalf("lookup %d: Hashed = %d; a racily recent file must not be cached", i, c.Hashed())
		}
	}
	// A future mtime (clock skew) is no safer.
	future := time.Now().Add(time.Hour)
	os.Chtimes(p, future, future)
	digestOK(t, c, p, []byte("just written"))
	digestOK(t, c, p, []byte("just written"))
	if c.Hashed() != 5 {
		t.Errorf("future mtime cached: Hashed = %d", c.Hashed())
	}
}

func TestFileCacheExecutableAndSymlink(t *testing.T) {
	dir := t.TempDir()
	x := filepath.Join(dir, "tool")
	writeOld(t, x, []byte("#!/bin/sh"), 0o751, time.Hour)
	c, _ := OpenFileCache(filepath.Join(dir, "cache"))
	if !digestOK(t, c, x, []byte("#!/bin/sh")) {
		t.Error("executable = false for mode 0751")
	}
	os.Chmod(x, 0o644)
	if digestOK(t, c, x, []byte("#!/bin/sh")) {
		t.Error("executable = true after chmod 0644")
	}
	link := filepath.Join(dir, "link")
	os.Symlink(x, link)
	digestOK(t, c, link, []byte("#!/bin/sh"))

	for _, bad := range []string{"relative/path", dir, filepath.Join(dir, "missing")} {
		if _, _, err := c.Digest(bad); err == nil {
			t.Errorf("Digest(%q) succeeded", bad)
		}
	}
}

func TestFileCachePersistence(t *testing.T) {
	dir := t.TempDir()
	cachePath := filepath.Join(dir, "sub", "files.cache")
	var paths []string
	for i := 0; i < 50; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		writeOld(t, p, []byte(p), 0o644, time.Hour)
		paths = append(paths, p)
	}
	c, err := OpenFileCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		digestOK(t, c, p, []byte(p))
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, cachePath)
	if err := c.Save(); err != nil || inode(t, cachePath) != ino {
		t.Errorf("unchanged cache rewritten (%v)", err)
	}

	c2, err := OpenFileCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		digestOK(t, c2, p, []byte(p))
	}
	if c2.Hashed() != 0 {
		t.Errorf("reloaded cache hashed %d files, want 0", c2.Hashed())
	}
	// Only what changed is hashed after a reload.
	writeOld(t, paths[0], []byte("changed"), 0o644, 2*time.Hour)
	c3, _ := OpenFileCache(cachePath)
	for _, p := range paths[1:] {
		digestOK(t, c3, p, []byte(p))
	}
	digestOK(t, c3, paths[0], []byte("changed"))
	if c3.Hashed() != 1 {
		t.Errorf("Hashed = %d, want 1", c3.Hashed())
	}
	if left := entries(t, filepath.Dir(cachePath)); len(left) != 1 {
		t.Errorf("temp files left beside the cache: %v", left)
	}
}

func TestFileCacheCorruptFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	writeOld(t, p, []byte("content"), 0o644, time.Hour)
	good := filepath.Join(dir, "good")
	c, _ := OpenFileCache(good)
	digestOK(t, c, p, []byte("content"))
	c.Save()
	data := readFile(t, good)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("this is not a cache file at all")},
		{"truncated", data[:len(data)-7]},
		{"bit flip", func() []byte { b := append([]byte(nil), data...); b[len(b)/2] ^= 4; return b }()},
		{"bad magic", append([]byte("XXXXXXXX"), data[8:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := filepath.Join(dir, tc.name)
			os.WriteFile(cp, tc.data, 0o644)
			c, err := OpenFileCache(cp)
			if err != nil || c == nil {
				t.Fatalf("OpenFileCache: %v", err)
			}
			digestOK(t, c, p, []byte("content"))
			if c.Hashed() != 1 {
				t.Errorf("corrupt cache used: Hashed = %d", c.Hashed())
			}
		})
	}
	if c, err := OpenFileCache(filepath.Join(dir, "missing")); err != nil || c == nil {
		t.Errorf("missing cache file: %v", err)
	}
}

func TestFileCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 20; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		writeOld(t, p, []byte(p), 0o644, time.Hour)
		paths = append(paths, p)
	}
	c, _ := OpenFileCache(filepath.Join(dir, "cache"))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 5; r++ {
				for _, p := range paths {
					d, _, err := c.Digest(p)
					if err != nil || !proto.Equal(d, DigestOf([]byte(p))) {
						t.Errorf("Digest(%s) = %v, %v", p, d, err)
					}
				}
				if err := c.Save(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if c.Hashed() < len(paths) || c.Hashed() > 8*len(paths) {
		t.Errorf("Hashed = %d", c.Hashed())
	}
}
