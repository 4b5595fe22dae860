package cas

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

const (
	// memBlobMax is the largest blob the memory layer keeps: protos
	// (Directory, Command, Tree) and small outputs are re-read often.
	memBlobMax = 64 << 10
	memACCost  = 64 << 20
	memBlobCos = 32 << 20
)

// Disk is the on-disk store. Layout under Dir():
//
//	cas/<2 hex>/<hash>    blobs, 0444
//	cas-x/<2 hex>/<hash>  executable copies of blobs, 0555
//	ac/<2 hex>/<hash>     serialized ActionResults keyed by action digest
//	tmp/                  temp files and action exec roots (same filesystem)
//	usage/                usage journals (RecordUse) read by GC
//	lock                  flock: builds shared, gc exclusive
//	gcgen                 changed by every GC, so other processes drop memory caches
//
// A Disk is safe for concurrent use, and several Disks (processes) may
// share one directory: every write is a rename of a complete temp file.
type Disk struct {
	dir, casDir, casxDir, acDir, tmpDir, usageDir string

	acMem   *ristretto.Cache[string, *acEntry]
	blobMem *ristretto.Cache[string, *blobEntry]
	// gen tags memory-layer entries; bumping it invalidates all of them at
	// once without ristretto's Clear, which is unsafe with concurrent Gets.
	gen atomic.Uint64

	mu        sync.Mutex
	seenGCGen string // content of dir/gcgen when gen was last synced
	journal   string // this Disk's usage journal file, created lazily

	closeOnce sync.Once
}

type acEntry struct {
	gen uint64
	r   *repb.ActionResult
}

type blobEntry struct {
	gen uint64
	b   []byte
	id  fileID // of the file b was read from
}

// Open opens (creating if needed) the store rooted at dir.
func Open(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
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
	s.seenGCGen = s.readGCGen()
	if s.acMem, err = ristretto.NewCache(&ristretto.Config[string, *acEntry]{
		NumCounters: 1 << 20, MaxCost: memACCost, BufferItems: 64, KeyToHash: hashKey,
	}); err != nil {
		return nil, err
	}
	if s.blobMem, err = ristretto.NewCache(&ristretto.Config[string, *blobEntry]{
		NumCounters: 1 << 18, MaxCost: memBlobCos, BufferItems: 64, KeyToHash: hashKey,
	}); err != nil {
		s.acMem.Close()
		return nil, err
	}
	// BlobPath and Link need a file even for the empty blob.
	if err := s.ensureEmpty(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// hashKey feeds ristretto the hex hash itself: it is already uniformly
// distributed, so parsing two 64-bit halves beats hashing the string.
func hashKey(k string) (uint64, uint64) {
	if len(k) < 32 {
		return 0, 0
	}
	a, _ := strconv.ParseUint(k[:16], 16, 64)
	b, _ := strconv.ParseUint(k[16:32], 16, 64)
	return a, b
}

// Dir returns the store's absolute root directory.
func (s *Disk) Dir() string { return s.dir }

// TempDir creates a fresh private directory under dir/tmp, on the same
// filesystem as the blobs so that outputs can be renamed into the store.
// The caller removes it (RemoveAll copes with read-only trees).
func (s *Disk) TempDir(prefix string) (string, error) {
	return os.MkdirTemp(s.tmpDir, prefix)
}

// Close releases the memory layer. The files stay.
func (s *Disk) Close() error {
	s.closeOnce.Do(func() {
		s.acMem.Close()
		s.blobMem.Close()
	})
	return nil
}

func (s *Disk) blobPath(h string) string { return s.casDir + "/" + h[:2] + "/" + h }
func (s *Disk) casxPath(h string) string { return s.casxDir + "/" + h[:2] + "/" + h }
func (s *Disk) acPath(h string) string   { return s.acDir + "/" + h[:2] + "/" + h }

// statSize reports whether path is a regular file of the given size.
// unix.Stat spares the FileInfo allocation of os.Stat on this hot path.
func statSize(path string, size int64) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == size
}

// Has reports whether the blob is stored with the right size.
func (s *Disk) Has(d *repb.Digest) bool {
	if check(d) != nil {
		return false
	}
	return statSize(s.blobPath(d.Hash), d.SizeBytes)
}

// Put stores b and returns its digest.
func (s *Disk) Put(b []byte) (*repb.Digest, error) {
	d := DigestOf(b)
	if statSize(s.blobPath(d.Hash), d.SizeBytes) {
		return d, nil
	}
	if err := s.writeAtomic(s.blobPath(d.Hash), b, 0o444); err != nil {
		return nil, err
	}
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
	b, shared, err := s.get(d)
	if shared {
		// The memory layer keeps b; the caller gets its own copy.
		b = bytes.Clone(b)
	}
	return b, err
}

// GetProto reads the blob d and unmarshals it into m.
func (s *Disk) GetProto(d *repb.Digest, m proto.Message) error {
	b, _, err := s.get(d)
	if err != nil {
		return err
	}
	// Unmarshal copies what it keeps, so a shared b is safe here.
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("blob %s: %w", Key(d), err)
	}
	return nil
}

// get returns the content of d; shared is true when b is also held by the
// memory layer and must not be modified.
//
// A memory hit still costs one stat: the file's identity (inode, mtime,
// ctime, size) must be unchanged. A blob is never rewritten in place, so a
// change means it was removed (by another process's GC) or written
// through a hardlink, and the file is then read and verified again.
func (s *Disk) get(d *repb.Digest) (b []byte, shared bool, err error) {
	if err := check(d); err != nil {
		return nil, false, err
	}
	if isEmpty(d) {
		return []byte{}, false, nil
	}
	p := s.blobPath(d.Hash)
	gen := s.gen.Load()
	small := d.SizeBytes <= memBlobMax
	if small {
		if e, ok := s.blobMem.Get(d.Hash); ok && e.gen == gen && int64(len(e.b)) == d.SizeBytes {
			var st unix.Stat_t
			if unix.Stat(p, &st) == nil && e.id == fileIDOf(&st) {
				return e.b, true, nil
			}
		}
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("%w: %s", ErrNotFound, Key(d))
		}
		return nil, false, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, false, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if b, err = readAll(f, st.Size); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", Key(d), err)
	}
	sum := sha256.Sum256(b)
	if !sumMatches(sum[:], d.Hash) {
		s.removeBlob(d.Hash)
		return nil, false, fmt.Errorf("%w: %s: content hashes to %x; removed", ErrCorrupt, Key(d), sum)
	}
	if int64(len(b)) != d.SizeBytes {
		// The file is sound; the caller's digest names no stored blob.
		return nil, false, fmt.Errorf("%w: %s (stored blob has %d bytes)", ErrNotFound, Key(d), len(b))
	}
	// As in FileCache, a file modified within racyWindow could change again
	// without moving its mtime, so it is not kept in memory yet.
	if small && time.Since(time.Unix(0, st.Mtim.Nano())) >= racyWindow {
		s.blobMem.Set(d.Hash, &blobEntry{gen: gen, b: b, id: fileIDOf(&st)}, int64(len(b)))
		return b, true, nil
	}
	return b, false, nil
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

// fileID is what identifies one version of a file without reading it.
type fileID struct {
	ino                uint64
	size, mtime, ctime int64
}

func fileIDOf(st *unix.Stat_t) fileID {
	return fileID{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// removeBlob deletes a blob and its executable variant.
func (s *Disk) removeBlob(h string) {
	os.Remove(s.blobPath(h))
	os.Remove(s.casxPath(h))
	s.blobMem.Del(h)
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
