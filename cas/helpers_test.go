package cas

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

func newDisk(t testing.TB) *Disk {
	t.Helper()
	return openDisk(t, filepath.Join(t.TempDir(), "lego"))
}

func openDisk(t testing.TB, dir string) *Disk {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bg is the context of the tests' store calls.
var bg = context.Background()

// memDisk is a Memory over a Disk, as a build opens them.
type memDisk struct {
	*Memory
	disk *Disk
}

func newMemDisk(t testing.TB) *memDisk {
	t.Helper()
	return memOver(t, newDisk(t))
}

func memOver(t testing.TB, d *Disk) *memDisk {
	t.Helper()
	m, err := NewMemory(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &memDisk{m, d}
}

func mustPut(t testing.TB, s *Disk, b []byte) *repb.Digest {
	t.Helper()
	d, err := s.Put(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// backdate sets a file's mtime (and atime) to ago before now.
func backdate(t testing.TB, path string, ago time.Duration) {
	t.Helper()
	when := time.Now().Add(-ago)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func inode(t testing.TB, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// overwrite replaces a read-only file's content in place (same inode), as
// a process writing through a hardlink would.
func overwrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func entries(t testing.TB, dir string) []string {
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

// Hashed returns how many files were hashed since open.
func (c *FileCache) Hashed() int { return int(c.hashed.Load()) }

// wait lets the memory layer's buffered writes land.
func (m *Memory) wait() {
	m.acMem.Wait()
	m.blobMem.Wait()
}

// Rehashed returns how many files Check hashed since open.
func (s *Disk) Rehashed() int { return int(s.rehashed.Load()) }
