package cas

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

// flipInPlace flips one byte of a stored file through its inode, as a user
// editing a lego-out hardlink after chmod u+w does; keepMtime puts the old
// mtime back, so only the ctime tells.
func flipInPlace(t *testing.T, p string, keepMtime bool) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, st.Size()/2)
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if keepMtime {
		if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckDetectsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, p string)
	}{
		{"in place", func(t *testing.T, p string) { flipInPlace(t, p, false) }},
		{"in place, mtime put back", func(t *testing.T, p string) { flipInPlace(t, p, true) }},
		{"replaced", func(t *testing.T, p string) {
			b := readFile(t, p)
			b[len(b)/2] ^= 0x20
			tmp := p + ".new"
			if err := os.WriteFile(tmp, b, 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, p string) {
			os.Chmod(p, 0o644)
			if err := os.Truncate(p, 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"appended", func(t *testing.T, p string) {
			os.Chmod(p, 0o644)
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("x"))
			f.Close()
		}},
	} {
		for _, exec := range []bool{false, true} {
			name := tc.name
			if exec {
				name += ", executable copy"
			}
			t.Run(name, func(t *testing.T) {
				s := newDisk(t)
				b := pattern(3000, 9)
				d := mustPut(t, s, b)
				p, err := s.BlobPath(d, exec)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Check(d, exec); err != nil || s.Rehashed() != 0 {
					t.Fatalf("sound blob: %v, %d hashed; want nil without hashing", err, s.Rehashed())
				}
				tc.damage(t, p)
				// Another process, reading the record from disk, must see it too.
				other := openDisk(t, s.Dir())
				if err := other.Check(d, exec); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Check = %v, want ErrCorrupt", err)
				}
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("corrupt file not evicted: %v", err)
				}
				// Storing the bytes again heals it.
				mustPut(t, s, b)
				if err := other.Check(d, exec); err != nil {
					t.Errorf("after Put: %v", err)
				}
			})
		}
	}
}

// A chmod through a link (chmod u+w in lego-out) with no write moves only
// the ctime: the blob is hashed once, kept, and made the store's and
// read-only again.
func TestCheckMetadataOnlyChange(t *testing.T) {
	s := newDisk(t)
	d := mustPut(t, s, []byte("kept bytes"))
	p, _ := s.BlobPath(d, false)
	backdate(t, p, time.Hour) // a utimes is a metadata change too
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		// As an action run as nobody could have left it.
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(d, false); err != nil || s.Rehashed() != 1 {
		t.Fatalf("Check = %v after %d hashes; want nil after 1", err, s.Rehashed())
	}
	st, _ := os.Stat(p)
	if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o444 || int(sys.Uid) != os.Getuid() {
		t.Errorf("mode %o owner %d after Check, want 444 and %d", st.Mode().Perm(), sys.Uid, os.Getuid())
	}
	if err := s.Check(d, false); err != nil || s.Rehashed() != 1 {
		t.Errorf("second Check = %v after %d hashes; want no more hashing", err, s.Rehashed())
	}
}

// What the store writes, and a blob linked outside its tmp/ (lego-out),
// is checked by stat alone, in this process and in the next.
func TestCheckTrustsRecordedFiles(t *testing.T) {
	s := newDisk(t)
	d1 := mustPut(t, s, []byte("put"))
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, pattern(5000, 1), 0o644)
	d2, err := s.PutFile(src)
	if err != nil {
		t.Fatal(err)
	}
	work, _ := s.TempDir("exec-")
	out := filepath.Join(work, "out")
	os.WriteFile(out, pattern(7000, 2), 0o644)
	d3, err := s.IngestFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*repb.Digest{d1, d2, d3} {
		if err := s.Link(d, false, filepath.Join(t.TempDir(), "lego-out", "f")); err != nil {
			t.Fatal(err)
		}
		if err := s.Link(d, true, filepath.Join(t.TempDir(), "lego-out", "x")); err != nil {
			t.Fatal(err)
		}
	}
	other := openDisk(t, s.Dir())
	for _, d := range []*repb.Digest{d1, d2, d3} {
		for _, exec := range []bool{false, true} {
			if err := other.Check(d, exec); err != nil {
				t.Errorf("Check(%s, %v) = %v", Key(d), exec, err)
			}
		}
	}
	if n := other.Rehashed(); n != 0 {
		t.Errorf("%d files hashed; want none", n)
	}
}

// Records cut short or scrambled are skipped, the ones after them kept.
func TestRecordSurvivesDamage(t *testing.T) {
	k1, k2 := keyOf(strings.Repeat("ab", 32), kindBlob), keyOf(strings.Repeat("cd", 32), kindExec)
	v1, v2 := Version{ino: 1, size: 2, mtime: 3, ctime: 4}, Version{ino: 5, size: 6, mtime: 7, ctime: 8}
	r1, r2 := encodeRecord(nil, k1, v1), encodeRecord(nil, k2, v2)
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"whole", append(bytes.Clone(r1), r2...), 2},
		{"torn first", append(bytes.Clone(r1[:30]), r2...), 1},
		{"garbage first", append(bytes.Repeat([]byte{7}, recSize), r2...), 1},
		{"torn tail", append(bytes.Clone(r1), r2[:40]...), 1},
	} {
		m := map[recKey]Version{}
		n := decodeRecords(tc.b, m)
		if len(m) != tc.want {
			t.Errorf("%s: %d records, want %d", tc.name, len(m), tc.want)
		}
		if tc.want == 2 && (m[k1] != v1 || m[k2] != v2) {
			t.Errorf("%s: %v", tc.name, m)
		}
		if tc.name == "torn tail" && n != recSize {
			t.Errorf("torn tail: consumed %d bytes, want %d (the rest may be an append under way)", n, recSize)
		}
	}

	// A record file of garbage costs hashing, nothing else.
	s := newDisk(t)
	d := mustPut(t, s, []byte("blob"))
	for i := 0; i < recShards; i++ {
		os.WriteFile(filepath.Join(s.Dir(), recDir, string("0123456789abcdef"[i])), bytes.Repeat([]byte{0xee}, 500), 0o644)
	}
	other := openDisk(t, s.Dir())
	if err := other.Check(d, false); err != nil || other.Rehashed() != 1 {
		t.Errorf("Check = %v after %d hashes; want nil after 1", err, other.Rehashed())
	}
}

// An output another uid wrote (an action run as nobody) becomes the
// store's: owned by lego's uid, read-only, so its writer can neither chmod
// nor write it again.
func TestIngestTakesOverForeignFile(t *testing.T) {
	s := newDisk(t)
	work, _ := s.TempDir("exec-")
	out := filepath.Join(work, "out")
	b := pattern(4096, 4)
	if err := os.WriteFile(out, b, 0o666); err != nil {
		t.Fatal(err)
	}
	foreign := os.Getuid() == 0
	if foreign {
		if err := os.Chown(out, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.IngestFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.BlobPath(d, false)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != os.Getuid() || int(sys.Gid) != os.Getgid() || st.Mode().Perm() != 0o444 {
		t.Errorf("blob owned by %d:%d mode %o (foreign source: %v); want %d:%d 444",
			sys.Uid, sys.Gid, st.Mode().Perm(), foreign, os.Getuid(), os.Getgid())
	}
	if !bytes.Equal(readFile(t, p), b) {
		t.Error("content changed")
	}
}

func TestActionResultDamage(t *testing.T) {
	s := newDisk(t)
	out := mustPut(t, s, []byte("out"))
	r := &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "o", Digest: out, IsExecutable: true}}, StdoutDigest: DigestOf(nil)}
	key := actionKey("a")
	p := s.acPath(key.Hash)
	write := func(b []byte) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutActionResult(bg, key, r, Here); err != nil {
		t.Fatal(err)
	}
	// The index would answer with the genuine result: the file's damage
	// shows where it does not.
	indexOff(t, s.Dir())
	s = openDisk(t, s.Dir())
	good := readFile(t, p)
	for i := range good {
		for _, damaged := range [][]byte{
			good[:i],
			func() []byte { c := bytes.Clone(good); c[i] ^= 1; return c }(),
		} {
			write(damaged)
			if got, _, err := s.GetActionResult(bg, key); got != nil || err != nil {
				t.Fatalf("entry damaged at byte %d served: %v, %v", i, got, err)
			}
		}
	}
	write(append(bytes.Clone(good), 0))
	if got, _, _ := s.GetActionResult(bg, key); got != nil {
		t.Fatal("entry with a byte appended served")
	}

	// An entry of the format before checksums is read and rewritten.
	legacy, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	write(legacy)
	if got, l, err := s.GetActionResult(bg, key); !proto.Equal(got, r) || l != OnDisk || err != nil {
		t.Fatalf("legacy entry: %v, %v, %v", got, l, err)
	}
	if !bytes.Equal(readFile(t, p), good) {
		t.Error("legacy entry not rewritten with a checksum")
	}
	// One not as lego wrote it (here: cut at a field boundary) is not.
	write(legacy[:len(legacy)-2-len(r.StdoutDigest.Hash)-4])
	if got, _, _ := s.GetActionResult(bg, key); got != nil {
		t.Errorf("damaged legacy entry served: %v", got)
	}
}

func TestVerify(t *testing.T) {
	s := newDisk(t)
	good := mustPut(t, s, pattern(2000, 1))
	bad := mustPut(t, s, pattern(2000, 2))
	xbad := mustPut(t, s, pattern(2000, 3))
	xp, _ := s.BlobPath(xbad, true)
	bp, _ := s.BlobPath(bad, false)
	s.PutActionResult(bg, actionKey("ok"), &repb.ActionResult{StdoutDigest: good}, Here)
	s.PutActionResult(bg, actionKey("bad"), &repb.ActionResult{StdoutDigest: good}, Here)
	ap := s.acPath(actionKey("bad").Hash)
	os.WriteFile(ap, readFile(t, ap)[:10], 0o644)
	// Bit rot moves no stat: only verify finds it.
	flipInPlace(t, bp, true)
	flipInPlace(t, xp, false)

	unlock, err := s.LockExclusive()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	st, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range st.Evicted {
		got = append(got, e.Path)
	}
	want := []string{s.rel(bp), s.rel(xp), s.rel(ap)}
	if strings.Join(got, " ") != strings.Join(want, " ") || st.Blobs != 3 || st.ExecCopies != 1 || st.Actions != 2 {
		t.Fatalf("Verify = %+v; want evicted %v of 3 blobs, 1 copy, 2 results", st, want)
	}
	for _, p := range want {
		if _, err := os.Lstat(filepath.Join(s.Dir(), p)); !os.IsNotExist(err) {
			t.Errorf("%s not removed", p)
		}
	}
	again, err := s.Verify()
	if err != nil || len(again.Evicted) != 0 || again.Blobs != 2 || again.ExecCopies != 0 {
		t.Errorf("second Verify = %+v, %v; want clean, 2 blobs", again, err)
	}
	// The rewritten record vouches for what is left.
	other := openDisk(t, s.Dir())
	if err := other.Check(good, false); err != nil || other.Rehashed() != 0 {
		t.Errorf("after Verify: Check = %v, %d hashed", err, other.Rehashed())
	}
}

// A shard mostly of dead records is rewritten when read, keeping the live
// ones.
func TestRecordCompacts(t *testing.T) {
	s := newDisk(t)
	d := mustPut(t, s, []byte("live"))
	k := keyOf(d.Hash, kindBlob)
	p := s.shardPath(k)
	live := readFile(t, p)
	var b []byte
	for i := 0; len(b) <= recCompactMin; i++ {
		b = encodeRecord(b, k, Version{ino: uint64(i)})
	}
	if err := os.WriteFile(p, append(b, live...), 0o644); err != nil {
		t.Fatal(err)
	}
	other := openDisk(t, s.Dir())
	if err := other.Check(d, false); err != nil || other.Rehashed() != 0 {
		t.Fatalf("Check = %v, %d hashed; want the live record used", err, other.Rehashed())
	}
	if st, err := os.Stat(p); err != nil || st.Size() != recSize {
		t.Errorf("shard after reading: %v, %d bytes; want one record", err, st.Size())
	}
	// What is appended after a rewrite is seen by the process that rewrote.
	d2 := mustPut(t, openDisk(t, s.Dir()), []byte("live too"))
	if err := other.Check(d2, false); err != nil || other.Rehashed() != 0 {
		t.Errorf("Check of a blob another process stored = %v, %d hashed", err, other.Rehashed())
	}
}

// A writer of bytes already stored keeps the stored inode when it is sound,
// even when its stat moved (an exec root's link and unlink): lego-out's
// links to it stay links, a checkpoint stays one copy.
func TestWritersKeepSoundBlob(t *testing.T) {
	s := newDisk(t)
	b := pattern(9000, 5)
	d := mustPut(t, s, b)
	p, _ := s.BlobPath(d, false)
	ino := inode(t, p)
	work, _ := s.TempDir("exec-")
	if err := s.Link(d, false, filepath.Join(work, "in")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(work)
	out := filepath.Join(t.TempDir(), "out")
	os.WriteFile(out, b, 0o644)
	if _, err := s.PutFile(out); err != nil {
		t.Fatal(err)
	}
	work, _ = s.TempDir("exec-")
	os.WriteFile(filepath.Join(work, "out"), b, 0o644)
	if _, err := s.IngestFile(filepath.Join(work, "out")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(b); err != nil {
		t.Fatal(err)
	}
	if inode(t, p) != ino {
		t.Error("a sound stored blob was replaced")
	}
	// A damaged one is replaced.
	flipInPlace(t, p, false)
	if _, err := s.Put(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, p), b) {
		t.Error("a damaged stored blob was kept")
	}
}
