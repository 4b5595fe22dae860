package cas

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

func TestOpenLayout(t *testing.T) {
	s := newDisk(t)
	for _, sub := range []string{"cas", "cas-x", "ac", "tmp", "usage"} {
		if st, err := os.Stat(filepath.Join(s.Dir(), sub)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	if !filepath.IsAbs(s.Dir()) {
		t.Errorf("Dir() = %q, want absolute", s.Dir())
	}
	// Reopening an existing store works.
	openDisk(t, s.Dir())
}

func TestRoundTrip(t *testing.T) {
	m := newMemDisk(t)
	s := m.disk
	for _, n := range []int{0, 1, 1000, memBlobMax, memBlobMax + 1, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := pattern(n, byte(n))
			d := mustPut(t, s, b)
			if !proto.Equal(d, DigestOf(b)) {
				t.Fatalf("Put digest %v, want %v", d, DigestOf(b))
			}
			p := filepath.Join(s.Dir(), "cas", d.Hash[:2], d.Hash)
			if got := readFile(t, p); !bytes.Equal(got, b) {
				t.Fatalf("blob file content differs")
			}
			if m := mode(t, p); m != 0o444 {
				t.Errorf("blob mode %o, want 444", m)
			}
			if !s.Has(d) {
				t.Error("Has = false after Put")
			}
			// Past the racy window, small blobs come from memory: read
			// several times, modifying what is returned.
			backdate(t, p, time.Hour)
			for i := 0; i < 3; i++ {
				got, err := m.Get(d)
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("Get #%d: %v, equal=%v", i, err, bytes.Equal(got, b))
				}
				for j := range got {
					got[j] ^= 0xff
				}
				m.wait()
			}
			if _, err := s.Put(b); err != nil {
				t.Errorf("second Put: %v", err)
			}
		})
	}
}

func TestPutProtoGetProto(t *testing.T) {
	s := newDisk(t)
	cmd := &repb.Command{Arguments: []string{"echo", "hi"}, EnvironmentVariables: []*repb.Command_EnvironmentVariable{{Name: "A", Value: "1"}}}
	d, err := s.PutProto(cmd)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cmd)
	if !proto.Equal(d, DigestOf(b)) {
		t.Errorf("PutProto digest %v, want deterministic encoding's %v", d, DigestOf(b))
	}
	got := &repb.Command{}
	if err := s.GetProto(d, got); err != nil || !proto.Equal(got, cmd) {
		t.Errorf("GetProto = %v, %v", got, err)
	}
}

func TestGetMissing(t *testing.T) {
	s := newDisk(t)
	d := mustPut(t, s, []byte("hello"))
	for _, tc := range []struct {
		name string
		d    *repb.Digest
		want error
	}{
		{"absent", DigestOf([]byte("absent")), ErrNotFound},
		{"wrong size", &repb.Digest{Hash: d.Hash, SizeBytes: 6}, ErrNotFound},
		{"invalid", &repb.Digest{Hash: "zz", SizeBytes: 1}, ErrInvalidDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Get(tc.d); !errors.Is(err, tc.want) {
				t.Errorf("Get error %v, want %v", err, tc.want)
			}
			if s.Has(tc.d) {
				t.Error("Has = true")
			}
			if _, err := s.BlobPath(tc.d, false); !errors.Is(err, tc.want) {
				t.Errorf("BlobPath error %v, want %v", err, tc.want)
			}
		})
	}
	if !s.Has(d) {
		t.Error("a wrong-size lookup must not remove the sound blob")
	}
	if got, err := s.Get(DigestOf(nil)); err != nil || len(got) != 0 || !s.Has(DigestOf(nil)) {
		t.Errorf("empty blob: %q, %v", got, err)
	}
}

func TestCorruption(t *testing.T) {
	for _, size := range []int{100, memBlobMax + 10} {
		for _, tc := range []struct {
			name    string
			garbage func(b []byte) []byte
		}{
			{"same size", func(b []byte) []byte { return bytes.Repeat([]byte{'x'}, len(b)) }},
			{"flipped byte", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }},
			{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
			{"longer", func(b []byte) []byte { return append(bytes.Clone(b), "junk"...) }},
			{"empty", func([]byte) []byte { return nil }},
		} {
			t.Run(fmt.Sprintf("%d/%s", size, tc.name), func(t *testing.T) {
				m := newMemDisk(t)
				s := m.disk
				b := pattern(size, 3)
				d := mustPut(t, s, b)
				p, _ := s.BlobPath(d, false)
				// Let the memory layer hold the good bytes first: it must
				// notice the file changed underneath.
				backdate(t, p, time.Hour)
				if _, err := m.Get(d); err != nil {
					t.Fatal(err)
				}
				m.wait()
				overwrite(t, p, tc.garbage(b))
				_, err := m.Get(d)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Get error %v, want ErrCorrupt", err)
				}
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("corrupt blob not removed: %v", err)
				}
				if s.Has(d) {
					t.Error("Has = true after removal")
				}
				if _, err := m.Get(d); !errors.Is(err, ErrNotFound) {
					t.Errorf("second Get error %v, want ErrNotFound", err)
				}
				// Putting the content again heals the store.
				mustPut(t, s, b)
				if got, err := m.Get(d); err != nil || !bytes.Equal(got, b) {
					t.Errorf("after re-Put: %v", err)
				}
			})
		}
	}
}

func TestGetProtoCorrupt(t *testing.T) {
	s := newDisk(t)
	d, _ := s.PutProto(&repb.Directory{Files: []*repb.FileNode{{Name: "a"}}})
	p, _ := s.BlobPath(d, false)
	overwrite(t, p, []byte("not the proto"))
	if err := s.GetProto(d, &repb.Directory{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GetProto error %v, want ErrCorrupt", err)
	}
}

// Two Disks on one directory stand in for two processes.
func TestConcurrentPut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lego")
	stores := []*Disk{openDisk(t, dir), openDisk(t, dir)}
	const workers, blobs = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*blobs*2)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := stores[w%2]
			for i := 0; i < blobs; i++ {
				same := pattern(50_000, 1) // every worker writes this one
				mine := pattern(1000+i, byte(w))
				for _, b := range [][]byte{same, mine} {
					d, err := s.Put(b)
					if err != nil {
						errs <- err
						continue
					}
					if got, err := s.Get(d); err != nil || !bytes.Equal(got, b) {
						errs <- fmt.Errorf("Get after Put: %v", err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if left := entries(t, filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

// A reader polling while a large blob is written never sees it partially.
func TestPutAtomicVisibility(t *testing.T) {
	s := newDisk(t)
	reader := openDisk(t, s.Dir())
	b := pattern(8<<20, 9)
	d := DigestOf(b)
	done := make(chan struct{})
	var seen, bad int
	go func() {
		defer close(done)
		for {
			if reader.Has(d) {
				seen++
				p, err := reader.BlobPath(d, false)
				if err != nil {
					bad++
					return
				}
				if got, err := os.ReadFile(p); err != nil || len(got) != len(b) {
					bad++
				}
				return
			}
			if st, err := os.Stat(filepath.Join(s.Dir(), "cas", d.Hash[:2], d.Hash)); err == nil && st.Size() != int64(len(b)) {
				bad++
				return
			}
		}
	}()
	mustPut(t, s, b)
	<-done
	if seen != 1 || bad != 0 {
		t.Errorf("seen=%d bad=%d", seen, bad)
	}
}

// A temp file left by a killed writer is never taken for a blob, and GC
// clears it once it is old.
func TestStaleTempInvisible(t *testing.T) {
	s := newDisk(t)
	b := pattern(5000, 4)
	d := DigestOf(b)
	stale := filepath.Join(s.Dir(), "tmp", "w-123")
	if err := os.WriteFile(stale, b[:2000], 0o444); err != nil {
		t.Fatal(err)
	}
	if s.Has(d) {
		t.Fatal("Has = true for a blob only in tmp/")
	}
	if _, err := s.Get(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get error %v", err)
	}
	if n, _ := s.Size(); n != 0 {
		t.Errorf("Size counts temp files: %d", n)
	}
	fresh := filepath.Join(s.Dir(), "tmp", "w-456")
	os.WriteFile(fresh, nil, 0o644)
	oldDir := filepath.Join(s.Dir(), "tmp", "exec-1")
	os.MkdirAll(filepath.Join(oldDir, "ro", "deep"), 0o755)
	os.WriteFile(filepath.Join(oldDir, "ro", "deep", "f"), []byte("x"), 0o444)
	os.Chmod(filepath.Join(oldDir, "ro", "deep"), 0o555)
	os.Chmod(filepath.Join(oldDir, "ro"), 0o555)
	backdate(t, stale, 2*time.Hour)
	backdate(t, oldDir, 2*time.Hour)
	if _, err := s.GC(1 << 40); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(s.Dir(), "tmp")); len(got) != 1 || got[0] != "w-456" {
		t.Errorf("tmp/ after GC = %v, want only the fresh file", got)
	}
}

func TestTempDir(t *testing.T) {
	s := newDisk(t)
	a, err := s.TempDir("exec-")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.TempDir("exec-")
	// Both in this process's directory under tmp/.
	proc := filepath.Dir(a)
	if a == b || filepath.Dir(b) != proc || filepath.Dir(proc) != filepath.Join(s.Dir(), "tmp") || !procDirName(filepath.Base(proc)) {
		t.Errorf("TempDir = %q, %q", a, b)
	}
	if m := mode(t, a); m != 0o700 {
		t.Errorf("TempDir mode %o, want 700", m)
	}
	var sa, sc syscall.Stat_t
	syscall.Stat(a, &sa)
	syscall.Stat(filepath.Join(s.Dir(), "cas"), &sc)
	if sa.Dev != sc.Dev {
		t.Error("TempDir is not on the blobs' filesystem")
	}
	// A read-only tree, as an action may leave, is still removable.
	os.MkdirAll(filepath.Join(a, "x", "y"), 0o755)
	os.WriteFile(filepath.Join(a, "x", "y", "f"), nil, 0o444)
	os.Chmod(filepath.Join(a, "x", "y"), 0o500)
	os.Chmod(filepath.Join(a, "x"), 0o500)
	if err := RemoveAll(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Errorf("RemoveAll left %s", a)
	}
}
