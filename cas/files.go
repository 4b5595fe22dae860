package cas

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
)

// bufPool holds copy buffers: io.Copy's 32 KiB default costs many more
// syscalls on multi-GB files, and a fresh 1 MiB buffer per file is garbage.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashCopy copies src to dst (when dst is not nil) while hashing it.
func hashCopy(dst io.Writer, src io.Reader) (hash string, n int64, err error) {
	h := sha256.New()
	w := io.Writer(h)
	if dst != nil {
		w = io.MultiWriter(dst, h)
	}
	bp := bufPool.Get().(*[]byte)
	n, err = io.CopyBuffer(w, src, *bp)
	bufPool.Put(bp)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// copyToTemp copies src into a new temp file in dir, hashing it, and
// gives the temp file mode perm. The caller renames or removes it.
func copyToTemp(src io.Reader, dir, pattern string, perm os.FileMode) (tmp, hash string, n int64, err error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", "", 0, err
	}
	tmp = f.Name()
	hash, n, err = hashCopy(f, src)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", "", 0, err
	}
	return tmp, hash, n, nil
}

// PutFile stores a copy of the file at path (following symlinks); the
// original is left alone. Hashing and copying are one pass, so the stored
// bytes are exactly the hashed ones even if the file changes meanwhile.
func (s *Disk) PutFile(path string) (*repb.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return s.putFrom(f, path)
}

// putFrom stores a copy of what f reads; the copy is the store's own file.
func (s *Disk) putFrom(f *os.File, path string) (*repb.Digest, error) {
	tmp, hash, n, err := copyToTemp(f, s.tmpDir, "put-", 0o444)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	d := &repb.Digest{Hash: hash, SizeBytes: n}
	if s.present(d) {
		os.Remove(tmp)
		return d, nil
	}
	if err := renameIntoPlace(tmp, s.blobPath(hash)); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	s.stored(hash, kindBlob, s.blobPath(hash))
	return d, nil
}

// IngestFile moves the file at path into the store: on the same
// filesystem it is renamed, never copied, so multi-GB outputs cost one
// hashing pass. The file's inode becomes the blob, owned by the store's
// owner and mode 0444: other hardlinks to it must not be written
// afterwards. A file another uid owns (an action run as nobody) is taken
// over before it is hashed, so its writer can no longer chmod or write
// it; where it cannot be (lego is not root) it is copied. A symlink or
// other non-regular file, or a file on another filesystem, is copied and
// then removed.
func (s *Disk) IngestFile(path string) (*repb.Digest, error) {
	lst, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !lst.Mode().IsRegular() {
		return s.ingestByCopy(path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	foreign := int(st.Uid) != storeUID
	if foreign {
		if !takeOver(f, kindBlob) {
			d, err := s.putFrom(f, path)
			if err != nil {
				return nil, err
			}
			return d, os.Remove(path)
		}
	}
	hash, n, err := hashCopy(nil, f)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", path, err)
	}
	d := &repb.Digest{Hash: hash, SizeBytes: n}
	final := s.blobPath(hash)
	if (st.Nlink > 1 && (sameInode(final, &st) || sameInode(s.casxPath(hash), &st))) || s.present(d) {
		// Not chmodded: the file may be a hardlink of a stored blob or of
		// its 0555 variant (an action that linked an input).
		return d, os.Remove(path)
	}
	// The blob must be read-only before it gets a blob name.
	if !foreign && !takeOver(f, kindBlob) {
		return nil, fmt.Errorf("ingest %s: cannot make it read-only", path)
	}
	if err := renameIntoPlace(path, final); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return s.ingestByCopy(path)
		}
		return nil, err
	}
	s.stored(hash, kindBlob, final)
	return d, nil
}

func (s *Disk) ingestByCopy(path string) (*repb.Digest, error) {
	d, err := s.PutFile(path)
	if err != nil {
		return nil, err
	}
	return d, os.Remove(path)
}

// BlobPath returns the path of the stored blob: the 0444 blob itself, or
// for executable a 0555 copy made on first request (a hardlink cannot
// differ in mode). The file must not be modified. It is not hashed: a
// build checks its blobs (Check) before it links them.
func (s *Disk) BlobPath(d *repb.Digest, executable bool) (string, error) {
	p, _, err := s.blobFile(d, executable)
	return p, err
}

// blobFile is BlobPath, with the stat of the file.
func (s *Disk) blobFile(d *repb.Digest, executable bool) (string, Version, error) {
	if err := check(d); err != nil {
		return "", Version{}, err
	}
	var st unix.Stat_t
	if executable {
		xp := s.casxPath(d.Hash)
		if statFile(xp, d.SizeBytes, &st) {
			return xp, versionOf(&st), nil
		}
	}
	p := s.blobPath(d.Hash)
	if !statFile(p, d.SizeBytes, &st) {
		if !isEmpty(d) {
			return "", Version{}, fmt.Errorf("%w: %s", ErrNotFound, Key(d))
		}
		// Someone removed the empty blob; it is free to recreate.
		if err := s.ensureEmpty(); err != nil {
			return "", Version{}, err
		}
	}
	if !executable {
		return p, versionOf(&st), nil
	}
	xp, err := s.makeExecutable(d, p)
	if err != nil || !statFile(xp, d.SizeBytes, &st) {
		return xp, Version{}, err
	}
	return xp, versionOf(&st), nil
}

func sameInode(p string, st *unix.Stat_t) bool {
	var o unix.Stat_t
	return unix.Stat(p, &o) == nil && o.Ino == st.Ino && o.Dev == st.Dev
}

// makeExecutable copies blob p to the cas-x variant, verifying the bytes
// on the way so that a corrupt blob is not propagated.
func (s *Disk) makeExecutable(d *repb.Digest, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s", ErrNotFound, Key(d))
		}
		return "", err
	}
	tmp, hash, n, err := copyToTemp(f, s.tmpDir, "x-", 0o555)
	f.Close()
	if err != nil {
		return "", err
	}
	if hash != d.Hash || n != d.SizeBytes {
		os.Remove(tmp)
		s.removeBlob(d.Hash)
		return "", fmt.Errorf("%w: %s: content hashes to %s; removed", ErrCorrupt, Key(d), hash)
	}
	xp := s.casxPath(d.Hash)
	if err := renameIntoPlace(tmp, xp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	s.stored(d.Hash, kindExec, xp)
	return xp, nil
}

// Link materializes the blob at dst as a hardlink (a copy across
// filesystems or past the link limit), creating dst's parent directories.
// An existing dst is replaced atomically; one that already is the blob is
// left as is.
func (s *Disk) Link(d *repb.Digest, executable bool, dst string) error {
	src, v, err := s.blobFile(d, executable)
	if err != nil {
		return err
	}
	if err := link(src, dst); err != nil {
		return err
	}
	s.linked(d, executable, src, v, dst)
	return nil
}

func link(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err = os.Link(src, dst); err == nil {
			return nil
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return replaceWithLink(src, dst)
	}
	if canCopyInstead(err) {
		return copyReplace(src, dst)
	}
	return err
}

// linked records the blob file src again after Link gave it another name
// outside the store's tmp/: a link moves the inode's ctime, and lego-out
// keeps its links, so the next build would hash it for nothing. It does
// so only when the file had its recorded stat v just before and only the
// ctime moved since. Exec roots are left out: removing them moves the
// ctime again.
func (s *Disk) linked(d *repb.Digest, executable bool, src string, v Version, dst string) {
	if strings.HasPrefix(dst, s.tmpDir+string(os.PathSeparator)) || isEmpty(d) {
		return
	}
	kind := kindBlob
	if executable {
		kind = kindExec
	}
	k := keyOf(d.Hash, kind)
	if src != s.pathOf(d.Hash, kind) || !s.recorded(k, v) {
		return
	}
	var st unix.Stat_t
	if unix.Stat(src, &st) != nil {
		return
	}
	now := versionOf(&st)
	if now != v && now.ino == v.ino && now.size == v.size && now.mtime == v.mtime {
		s.remember(k, now, true)
	}
}

// canCopyInstead tells link errors that a copy works around: another
// filesystem, too many links to the inode, or no hardlinks on this fs.
func canCopyInstead(err error) bool {
	return errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EMLINK) ||
		errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP)
}

// replaceWithLink links src beside dst and renames it over dst, so dst is
// never missing or partial.
func replaceWithLink(src, dst string) error {
	dstInfo, err := os.Lstat(dst)
	if err != nil {
		return err
	}
	if srcInfo, err := os.Stat(src); err == nil && os.SameFile(srcInfo, dstInfo) {
		return nil // rename of two links to one inode would be a no-op anyway
	}
	tmp := tempName(dst)
	if err := os.Link(src, tmp); err != nil {
		if canCopyInstead(err) {
			return copyReplace(src, dst)
		}
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// copyReplace copies src to a temp file beside dst and renames it over dst.
func copyReplace(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, _, _, err := copyToTemp(in, dir, "."+filepath.Base(dst)+".lego-tmp-", st.Mode().Perm())
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// tempName returns an unused-looking name beside path.
func tempName(path string) string {
	var r [8]byte
	rand.Read(r[:])
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lego-tmp-"+hex.EncodeToString(r[:]))
}

// PutStream stores the bytes read from r as blob d, verifying them on the
// way: a stream whose content does not hash to d (a corrupt remote copy)
// is rejected with ErrCorrupt and nothing is stored. The bytes go straight
// to a temp file, so a multi-GB blob is never held in memory.
func (s *Disk) PutStream(d *repb.Digest, r io.Reader) error {
	if err := check(d); err != nil {
		return err
	}
	tmp, hash, n, err := copyToTemp(r, s.tmpDir, "stream-", 0o444)
	if err != nil {
		return err
	}
	if hash != d.Hash || n != d.SizeBytes {
		os.Remove(tmp)
		return fmt.Errorf("%w: %s: received %d bytes hashing to %s", ErrCorrupt, Key(d), n, hash)
	}
	if err := renameIntoPlace(tmp, s.blobPath(d.Hash)); err != nil {
		os.Remove(tmp)
		return err
	}
	s.stored(d.Hash, kindBlob, s.blobPath(d.Hash))
	return nil
}
