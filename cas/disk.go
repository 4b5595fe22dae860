package cas

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Disk is the on-disk store. Layout under Dir():
//
//	cas/<2 hex>/<hash>    blobs, 0444
//	cas-x/<2 hex>/<hash>  executable copies of blobs, 0555
//	ac/<2 hex>/<hash>     serialized ActionResults keyed by action digest
//	acindex/<hex>         the same results, packed in 16 logs (acindex.go)
//	tmp/                  temp files; <pid>-<n>/: a process's exec roots (tmp.go)
//	usage/                usage journals (RecordUse) read by GC
//	lock                  flock: builds shared, gc exclusive
//	gcgen                 changed by every GC, so other processes drop memory caches
//	LEGO_CACHE            the marker: this directory is a store (marker.go)
//
// A Disk is safe for concurrent use, and several Disks (processes) may
// share one directory: every write is a rename of a complete temp file.
type Disk struct {
	dir, casDir, casxDir, acDir, tmpDir, usageDir string

	// gen is the Generation a memory layer above tags its entries with:
	// bumped when a GC (this process's or another's) removed entries.
	gen atomic.Uint64

	mu        sync.Mutex
	seenGCGen string // content of dir/gcgen when gen was last synced
	journal   string // this Disk's usage journal file, created lazily

	rec      record       // the verification record (record.go)
	acx      acIndex      // the action-cache index (acindex.go)
	rehashed atomic.Int64 // files Check had to hash
	proc     procTmp      // this Disk's directory in tmp/, created lazily
}

// Open opens (creating if needed) the store rooted at dir. A non-empty
// directory that is not a store is refused. What killed processes left in
// tmp/ is removed.
func Open(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := claim(abs); err != nil {
		return nil, err
	}
	s := &Disk{
		dir:      abs,
		casDir:   filepath.Join(abs, "cas"),
		casxDir:  filepath.Join(abs, "cas-x"),
		acDir:    filepath.Join(abs, "ac"),
		tmpDir:   filepath.Join(abs, "tmp"),
		usageDir: filepath.Join(abs, "usage"),
	}
	for _, d := range []string{s.casDir, s.casxDir, s.acDir, s.tmpDir, s.usageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s.sweepTmp()
	s.seenGCGen = s.readGCGen()
	// BlobPath and Link need a file even for the empty blob.
	if err := s.ensureEmpty(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's absolute root directory.
func (s *Disk) Dir() string { return s.dir }

func (s *Disk) blobPath(h string) string { return s.casDir + "/" + h[:2] + "/" + h }
func (s *Disk) casxPath(h string) string { return s.casxDir + "/" + h[:2] + "/" + h }
func (s *Disk) acPath(h string) string   { return s.acDir + "/" + h[:2] + "/" + h }

// statSize reports whether path is a regular file of the given size.
// unix.Stat spares the FileInfo allocation of os.Stat on this hot path.
func statSize(path string, size int64) bool {
	var st unix.Stat_t
	return statFile(path, size, &st)
}

// statFile is statSize, leaving the stat in st.
func statFile(path string, size int64, st *unix.Stat_t) bool {
	if err := unix.Stat(path, st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == size
}

// Has reports whether the blob is stored and sound (Check).
func (s *Disk) Has(d *repb.Digest) bool {
	return s.Check(d, false) == nil
}

// Put stores b and returns its digest.
func (s *Disk) Put(b []byte) (*repb.Digest, error) {
	d := DigestOf(b)
	if s.present(d) {
		return d, nil
	}
	p := s.blobPath(d.Hash)
	if err := s.writeAtomic(p, b, 0o444); err != nil {
		return nil, err
	}
	s.stored(d.Hash, kindBlob, p)
	return d, nil
}

// PutProto stores the deterministic encoding of m.
func (s *Disk) PutProto(m proto.Message) (*repb.Digest, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	return s.Put(b)
}

// Get returns the blob's content, verified against d. Errors wrap
// ErrNotFound or ErrCorrupt (the corrupt file is then deleted).
func (s *Disk) Get(d *repb.Digest) ([]byte, error) {
	b, _, err := s.GetVersion(d)
	return b, err
}

// GetProto reads the blob d and unmarshals it into m.
func (s *Disk) GetProto(d *repb.Digest, m proto.Message) error {
	b, err := s.Get(d)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("blob %s: %w", Key(d), err)
	}
	return nil
}

// GetVersion is Get, with the Version of the file that was read (zero
// for the empty blob, which has no file to change).
func (s *Disk) GetVersion(d *repb.Digest) (b []byte, v Version, err error) {
	if err := check(d); err != nil {
		return nil, v, err
	}
	if isEmpty(d) {
		return []byte{}, v, nil
	}
	p := s.blobPath(d.Hash)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, v, fmt.Errorf("%w: %s", ErrNotFound, Key(d))
		}
		return nil, v, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, v, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if b, err = readAll(f, st.Size); err != nil {
		return nil, v, fmt.Errorf("read %s: %w", Key(d), err)
	}
	sum := sha256.Sum256(b)
	if !sumMatches(sum[:], d.Hash) {
		s.removeBlob(d.Hash)
		return nil, v, fmt.Errorf("%w: %s: content hashes to %x; removed", ErrCorrupt, Key(d), sum)
	}
	if int64(len(b)) != d.SizeBytes {
		// The file is sound; the caller's digest names no stored blob.
		return nil, v, fmt.Errorf("%w: %s (stored blob has %d bytes)", ErrNotFound, Key(d), len(b))
	}
	return b, versionOf(&st), nil
}

// BlobVersion implements Versioned with one stat: a blob is never
// rewritten in place, so a changed identity means it was removed (by
// another process's GC) or written through a hardlink.
func (s *Disk) BlobVersion(d *repb.Digest) (Version, bool) {
	if isEmpty(d) {
		return Version{}, true
	}
	var st unix.Stat_t
	if unix.Stat(s.blobPath(d.Hash), &st) != nil {
		return Version{}, false
	}
	return versionOf(&st), true
}

// Generation implements Versioned.
func (s *Disk) Generation() uint64 { return s.gen.Load() }

// Fetch implements Store: a Disk has nothing below it, so the blobs must
// be here already.
func (s *Disk) Fetch(_ context.Context, ds []*repb.Digest) error {
	var missing []*repb.Digest
	for _, d := range ds {
		if !s.Has(d) {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		return missingError(missing)
	}
	return nil
}

// readAll reads f to EOF, not just size bytes (a grown file is corrupt
// too), in one allocation when size is right.
func readAll(f *os.File, size int64) ([]byte, error) {
	b := make([]byte, 0, size+1)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func versionOf(st *unix.Stat_t) Version {
	return Version{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// removeBlob deletes a blob and its executable variant.
func (s *Disk) removeBlob(h string) {
	os.Remove(s.blobPath(h))
	os.Remove(s.casxPath(h))
}

// writeAtomic writes data to a temp file in tmp/ and renames it to final,
// so a reader (or a process killed mid-write) never leaves a partial file
// under a blob name.
func (s *Disk) writeAtomic(final string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(s.tmpDir, "w-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameIntoPlace(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// renameIntoPlace renames tmp to final, creating final's shard directory
// on first use. Replacing an existing blob is harmless: the content is the
// same, and a concurrent writer of the same blob succeeds either way.
func renameIntoPlace(tmp, final string) error {
	err := os.Rename(tmp, final)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		if merr := os.MkdirAll(filepath.Dir(final), 0o755); merr != nil {
			return merr
		}
		err = os.Rename(tmp, final)
	}
	return err
}

func (s *Disk) ensureEmpty() error {
	if statSize(s.blobPath(emptyHash), 0) {
		return nil
	}
	return s.writeAtomic(s.blobPath(emptyHash), nil, 0o444)
}

// RemoveAll removes path like os.RemoveAll, first making directories
// writable: action exec roots may hold read-only directories that would
// otherwise make removal fail for a non-root user.
func RemoveAll(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
