package cas

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestPutFile(t *testing.T) {
	s := newDisk(t)
	for _, n := range []int{0, 10, 3 << 20} {
		src := filepath.Join(t.TempDir(), "src")
		b := pattern(n, 5)
		os.WriteFile(src, b, 0o640)
		d, err := s.PutFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(d, DigestOf(b)) {
			t.Fatalf("PutFile digest %v, want %v", d, DigestOf(b))
		}
		if got := readFile(t, src); !bytes.Equal(got, b) || mode(t, src) != 0o640 {
			t.Error("PutFile changed the original")
		}
		p, err := s.BlobPath(d, false)
		if err != nil || inode(t, p) == inode(t, src) || mode(t, p) != 0o444 {
			t.Errorf("blob %s: err %v, mode %o; want a 0444 copy", p, err, mode(t, p))
		}
		// Again, with the blob present.
		if d2, err := s.PutFile(src); err != nil || !proto.Equal(d2, d) {
			t.Errorf("second PutFile: %v %v", d2, err)
		}
	}
	if _, err := s.PutFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("PutFile of a missing file succeeded")
	}
	if left := entries(t, filepath.Join(s.Dir(), "tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestIngestFile(t *testing.T) {
	s := newDisk(t)
	work, err := s.TempDir("exec-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out")
	b := pattern(1<<20, 6)
	os.WriteFile(out, b, 0o755)
	ino := inode(t, out)
	d, err := s.IngestFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d, DigestOf(b)) {
		t.Fatalf("digest %v", d)
	}
	if _, err := os.Lstat(out); !os.IsNotExist(err) {
		t.Error("source still exists after IngestFile")
	}
	p, _ := s.BlobPath(d, false)
	if inode(t, p) != ino {
		t.Error("IngestFile copied instead of renaming on the same filesystem")
	}
	if m := mode(t, p); m != 0o444 {
		t.Errorf("ingested blob mode %o, want 444", m)
	}

	// Already stored: the source is just dropped.
	os.WriteFile(out, b, 0o644)
	if d2, err := s.IngestFile(out); err != nil || !proto.Equal(d2, d) || inode(t, p) != ino {
		t.Errorf("re-ingest: %v %v", d2, err)
	}
	if _, err := os.Lstat(out); !os.IsNotExist(err) {
		t.Error("duplicate source not removed")
	}

	// A symlink is stored by content; the link goes, its target stays.
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("via link"), 0o644)
	link := filepath.Join(work, "link")
	os.Symlink(target, link)
	if d3, err := s.IngestFile(link); err != nil || !proto.Equal(d3, DigestOf([]byte("via link"))) {
		t.Errorf("ingest symlink: %v %v", d3, err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Error("symlink not removed")
	}
	if _, err := os.Stat(target); err != nil {
		t.Error("symlink target removed")
	}
	if _, err := s.IngestFile(filepath.Join(work, "missing")); err == nil {
		t.Error("IngestFile of a missing file succeeded")
	}
}

func TestBlobPathExecutable(t *testing.T) {
	s := newDisk(t)
	b := []byte("#!/bin/sh\necho hi\n")
	d := mustPut(t, s, b)
	p, err := s.BlobPath(d, false)
	if err != nil || p != filepath.Join(s.Dir(), "cas", d.Hash[:2], d.Hash) || mode(t, p) != 0o444 {
		t.Fatalf("BlobPath(false) = %q, %v", p, err)
	}
	x, err := s.BlobPath(d, true)
	if err != nil || x != filepath.Join(s.Dir(), "cas-x", d.Hash[:2], d.Hash) {
		t.Fatalf("BlobPath(true) = %q, %v", x, err)
	}
	if m := mode(t, x); m != 0o555 {
		t.Errorf("executable variant mode %o, want 555", m)
	}
	if m := mode(t, p); m != 0o444 {
		t.Errorf("blob mode changed to %o", m)
	}
	if !bytes.Equal(readFile(t, x), b) || inode(t, x) == inode(t, p) {
		t.Error("executable variant must be a separate copy of the blob")
	}
	ino := inode(t, x)
	if x2, _ := s.BlobPath(d, true); x2 != x || inode(t, x2) != ino {
		t.Error("executable variant recreated")
	}
	// The empty blob always has a path.
	e, err := s.BlobPath(DigestOf(nil), false)
	os.Remove(e)
	if e2, err2 := s.BlobPath(DigestOf(nil), true); err != nil || err2 != nil || mode(t, e2) != 0o555 {
		t.Errorf("empty blob path: %v %v", err, err2)
	}
}

func TestBlobPathExecutableCorrupt(t *testing.T) {
	s := newDisk(t)
	d := mustPut(t, s, []byte("good content"))
	p, _ := s.BlobPath(d, false)
	overwrite(t, p, []byte("bad content!"))
	if _, err := s.BlobPath(d, true); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("BlobPath(exec) of a corrupt blob: %v, want ErrCorrupt", err)
	}
	if s.Has(d) {
		t.Error("corrupt blob kept")
	}
}

func TestLink(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exec  bool
		setup func(t *testing.T, s *Disk, dst string) // prepares dst
	}{
		{"new in missing dirs", false, func(*testing.T, *Disk, string) {}},
		{"executable", true, func(*testing.T, *Disk, string) {}},
		{"replaces file", false, func(t *testing.T, _ *Disk, dst string) {
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.WriteFile(dst, []byte("old content"), 0o644)
		}},
		{"replaces read-only file", true, func(t *testing.T, _ *Disk, dst string) {
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.WriteFile(dst, []byte("old"), 0o444)
		}},
		{"replaces symlink", false, func(t *testing.T, _ *Disk, dst string) {
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.Symlink("/nonexistent", dst)
		}},
		{"replaces other blob", false, func(t *testing.T, s *Disk, dst string) {
			s.Link(mustPut(t, s, []byte("other")), false, dst)
		}},
		{"already linked", false, func(t *testing.T, s *Disk, dst string) {
			s.Link(DigestOf([]byte("payload")), false, dst)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newDisk(t)
			d := mustPut(t, s, []byte("payload"))
			dst := filepath.Join(t.TempDir(), "out", "a", "b", "file")
			tc.setup(t, s, dst)
			if err := s.Link(d, tc.exec, dst); err != nil {
				t.Fatal(err)
			}
			src, _ := s.BlobPath(d, tc.exec)
			if inode(t, dst) != inode(t, src) {
				t.Error("dst is not a hardlink of the blob")
			}
			if got := readFile(t, dst); string(got) != "payload" {
				t.Errorf("dst content %q", got)
			}
			if want := map[bool]os.FileMode{false: 0o444, true: 0o555}[tc.exec]; mode(t, dst) != want {
				t.Errorf("dst mode %o, want %o", mode(t, dst), want)
			}
			if got := entries(t, filepath.Dir(dst)); len(got) != 1 {
				t.Errorf("dst dir holds %v, want only the file", got)
			}
		})
	}
	s := newDisk(t)
	if err := s.Link(DigestOf([]byte("absent")), false, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Link of absent blob: %v", err)
	}
}

// The copy fallback (other filesystem, link limit) replaces dst with an
// independent copy carrying the blob's mode.
func TestCopyReplace(t *testing.T) {
	s := newDisk(t)
	d := mustPut(t, s, []byte("payload"))
	x, _ := s.BlobPath(d, true)
	dst := filepath.Join(t.TempDir(), "dst")
	os.WriteFile(dst, []byte("old"), 0o644)
	if err := copyReplace(x, dst); err != nil {
		t.Fatal(err)
	}
	if string(readFile(t, dst)) != "payload" || mode(t, dst) != 0o555 || inode(t, dst) == inode(t, x) {
		t.Error("copyReplace did not make a 0555 copy")
	}
	if got := entries(t, filepath.Dir(dst)); len(got) != 1 {
		t.Errorf("leftovers: %v", got)
	}
}

// An action output that is a hardlink of an executable input (a cas-x
// inode) must not lose its execute bits when ingested.
func TestIngestHardlinkOfVariant(t *testing.T) {
	s := newDisk(t)
	d := mustPut(t, s, []byte("#!/bin/sh\n"))
	x, _ := s.BlobPath(d, true)
	work, _ := s.TempDir("exec-")
	out := filepath.Join(work, "out")
	if err := os.Link(x, out); err != nil {
		t.Fatal(err)
	}
	if got, err := s.IngestFile(out); err != nil || !proto.Equal(got, d) {
		t.Fatalf("IngestFile: %v %v", got, err)
	}
	if m := mode(t, x); m != 0o555 {
		t.Errorf("executable variant mode changed to %o", m)
	}
}
